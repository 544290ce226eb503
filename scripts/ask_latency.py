"""Warm ``Engine.ask`` latency of the checkout in the current folder, single questions and
follow-up turns, as one JSON line: to compare two commits in one sitting (issue 23's
"within 1.3x of the embedder issue's figure").

    git worktree add /tmp/before <commit>
    (cd /tmp/before && /path/to/.venv/bin/python /path/to/scripts/ask_latency.py)
    .venv/bin/python scripts/ask_latency.py

Run the two alternately, twice each: the machine's load moves between runs.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np


def timed(call: Callable[..., Any], *args: Any, **kwargs: Any) -> float:
    started = time.perf_counter()
    call(*args, **kwargs)
    return (time.perf_counter() - started) * 1000


def main() -> None:
    sys.path.insert(0, os.getcwd())  # the checkout in this folder, not the installed one
    os.environ["RAG_CHROMA_DIR"] = tempfile.mkdtemp(prefix="ask-latency-")
    from rag.config import Settings
    from rag.engine import Engine

    engine = Engine(Settings())
    engine.ingest()
    with open("eval/dev.jsonl", encoding="utf-8") as handle:
        questions = [json.loads(line)["question"] for line in handle if line.strip()]
    engine.ask(questions[0])  # warm-up
    single = [timed(engine.ask, q) for _ in range(3) for q in questions]
    turns = [timed(engine.ask, b, history=[(a, engine.ask(a).answer)])
             for a, b in itertools.pairwise(questions)]
    figures = {"code": os.getcwd(), "embedder": engine.embedder.name, "asks": len(single)}
    for name, samples in (("single", single), ("follow_up", turns)):
        figures[f"{name}_p50_ms"] = round(float(np.percentile(samples, 50)), 1)
        figures[f"{name}_p95_ms"] = round(float(np.percentile(samples, 95)), 1)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
