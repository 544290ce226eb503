"""Answer latency: warm ``Engine.ask`` in this process, cold ``rag ask`` in a new one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from rag.config import PROJECT_ROOT
from rag.engine import Engine

DEV_SET = PROJECT_ROOT / "eval" / "dev.jsonl"
COLD_QUESTION = "What did Russia demand about 1997?"


def dev_questions() -> list[str]:
    with DEV_SET.open(encoding="utf-8") as handle:
        return [json.loads(line)["question"] for line in handle if line.strip()]


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    return {"p50_ms": float(np.percentile(samples_ms, 50)),
            "p95_ms": float(np.percentile(samples_ms, 95)), "n": len(samples_ms)}


def warm_ask(engine: Engine, questions: list[str], rounds: int = 1) -> dict[str, float]:
    """Latency of ``ask`` (retrieval + extractive answer) after a warm-up."""
    engine.ask(questions[0])
    samples = []
    for _ in range(rounds):
        for question in questions:
            started = time.perf_counter()
            engine.ask(question)
            samples.append((time.perf_counter() - started) * 1000)
    return percentiles(samples)


def query_embedding(engine: Engine, questions: list[str]) -> dict[str, float]:
    """The part of ``ask`` spent embedding the question (the embedder's share)."""
    samples = []
    for question in questions:
        started = time.perf_counter()
        engine.embedder.embed_queries([question])
        samples.append((time.perf_counter() - started) * 1000)
    return percentiles(samples)


def cold_ask(store_dir: Path, runs: int = 3) -> dict[str, float]:
    """Wall time of ``rag ask`` in a fresh interpreter: imports, model load, one answer."""
    env = {**os.environ, "RAG_CHROMA_DIR": str(store_dir)}
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "rag.cli", "ask", COLD_QUESTION, "--json"],
            env=env, capture_output=True, text=True, timeout=120, cwd=PROJECT_ROOT,
        )
        times.append(time.perf_counter() - started)
        if done.returncode != 0:
            raise RuntimeError(f"cold rag ask failed: {done.stderr.strip()[-300:]}")
    return {"median_s": float(np.median(times)), "min_s": min(times), "runs": runs}
