# Quick start: `make run` (install + ingest the sample corpus + open the chat) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
PYTHON ?= python3
HOST ?= 127.0.0.1
PORT ?= 7860

.PHONY: install install-test run ingest ask serve test lint eval bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e .
	touch $@

install: $(VENV)/.installed

# Test extras: sentence-transformers (CPU torch pinned), llama.cpp, Playwright; Chromium from Debian.
$(VENV)/.installed-test: $(VENV)/.installed
	$(PIP) install -q -e '.[dev,st]'
	scripts/install-llamacpp.sh $(PIP)
	scripts/install-chromium.sh
	touch $@

install-test: $(VENV)/.installed-test

ingest: install
	$(VENV)/bin/rag ingest

run: ingest
	$(VENV)/bin/rag ask "What did Russia demand about 1997?"
	$(VENV)/bin/rag serve --host $(HOST) --port $(PORT)

test: install-test
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q

eval: ingest
	$(VENV)/bin/rag eval eval/dev.jsonl --out out/eval

bench: install
	$(VENV)/bin/rag bench

clean:
	rm -rf $(VENV) data out artifacts
