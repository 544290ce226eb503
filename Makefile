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

# The quality gate: the issue-11 test splits (single questions and conversations), with
# thresholds a little below the default (extractive) answerer's measured figures
# (docs/evaluation.md), so a regression fails CI. Tune on the dev splits, never on these.
EVAL_SET = eval/questions/single-test.jsonl eval/questions/turns-test.jsonl
EVAL_GATE = --min hit@1=0.70 --min top_cited=0.70 --min top_cited_paraphrased=0.62 \
	--max false_refusal_rate=0.08 --min near_topic_declined=0.05 \
	--min top_cited_follow_up=0.68 --min top_cited_topic_change=0.60 \
	--min citation_recall=0.85 --min groundedness=0.95 --min expected_content=0.71

test: install-test
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q
	rm -rf out/ci-eval
	RAG_CHROMA_DIR=out/ci-eval/chroma $(VENV)/bin/rag eval $(EVAL_SET) --out out/ci-eval \
		--ingest corpus $(EVAL_GATE)

eval: ingest
	$(VENV)/bin/rag eval $(EVAL_SET) --out out/eval $(EVAL_GATE)

bench: install
	$(VENV)/bin/rag bench

clean:
	rm -rf $(VENV) data out artifacts
