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
EVAL_GATE = --min hit@1=GATE_HIT1 --min top_cited=GATE_TOP --min top_cited_paraphrased=GATE_PARA \
	--max false_refusal_rate=GATE_FALSE --min near_topic_declined=GATE_NEAR \
	--min top_cited_follow_up=GATE_FOLLOW --min top_cited_topic_change=GATE_CHANGE \
	--min citation_recall=GATE_RECALL --min groundedness=0.95 --min expected_content=GATE_CONTENT

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
