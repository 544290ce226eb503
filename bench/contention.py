"""``rag bench --contention``: questions answered while a large upload is ingested.

The app runs an upload's ingest in the background and keeps answering from the last
committed state (``rag.ui.live_engine``), with questions going before the ingest's
embedding calls (``rag.ui.query_first``). This drives the same objects in one
process, as ``rag serve`` builds them: one thread ingests a generated file of
``--contention-mb`` megabytes of distinct sentences while the main thread asks the
dev questions one after another; the same questions are asked first with nothing
ingesting, as the baseline of the same run.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rag.bench.latency import dev_questions, percentiles

from rag.config import DEFAULT_CORPUS, Settings
from rag.engine import Engine


def write_text_file(path: Path, megabytes: float) -> Path:
    """Distinct sentences (every one is embedded), about ``megabytes`` MB of UTF-8."""
    lines, size, i = [], 0, 0
    while size < megabytes * 1_000_000:
        line = (f"Report {i}: the {i}th glass orchard of Umbrel grew {i * 7 % 997} pears of "
                f"quartz colour in season {i % 13}, said keeper {i % 31} of the valley.")
        lines.append(line)
        size += len(line) + 1
        i += 1
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _ask_all(live: Any, questions: list[str], until: Callable[[], bool] | None) -> list[float]:
    """Milliseconds per question; with ``until``, keep cycling until it says stop."""
    samples: list[float] = []
    while True:
        for question in questions:
            started = time.perf_counter()
            with live.using() as engine:
                engine.ask(question)
            samples.append((time.perf_counter() - started) * 1000)
            if until is not None and until():
                return samples
        if until is None:
            return samples


def measure(settings: Settings, megabytes: float = 1.0,
            log: Callable[[str], None] = print) -> dict[str, Any]:
    """Baseline question latency, then the same questions during the ingest of one file."""
    from rag.ui.live_engine import LiveEngine
    from rag.ui.query_first import QueryFirst

    base = Engine(settings)
    engine = Engine(settings, embedder=QueryFirst(base.embedder))
    if not engine.status()["files"]:
        engine.ingest([DEFAULT_CORPUS])
    live = LiveEngine(engine)
    questions = dev_questions()[:20]
    engine.ask(questions[0])  # warm
    baseline = _ask_all(live, questions, None)
    with tempfile.TemporaryDirectory(prefix="rag-contention-") as tmp:
        big = write_text_file(Path(tmp) / "umbrel orchard.txt", megabytes)
        done = threading.Event()
        report: dict[str, Any] = {}

        def ingest() -> None:
            started = time.perf_counter()
            with live.writing() as writer:
                report["summary"] = writer.ingest([big]).summary()
            report["ingest_s"] = time.perf_counter() - started
            done.set()

        log(f"contention: ingesting {big.stat().st_size / 1e6:.2f} MB while asking")
        worker = threading.Thread(target=ingest, daemon=True)
        worker.start()
        during = _ask_all(live, questions, done.is_set)
        worker.join()
    return {"file_mb": megabytes, "baseline": percentiles(baseline),
            "during_ingest": {**percentiles(during), "max_ms": max(during)},
            "ingest_s": report.get("ingest_s"), "ingest_summary": report.get("summary")}


def render(result: dict[str, Any]) -> str:
    b, d = result["baseline"], result["during_ingest"]
    return (f"| questions | n | p50 ms | p95 ms | max ms |\n|---|---|---|---|---|\n"
            f"| nothing ingesting | {b['n']} | {b['p50_ms']:.0f} | {b['p95_ms']:.0f} | |\n"
            f"| while {result['file_mb']:g} MB ingests | {d['n']} | {d['p50_ms']:.0f} | "
            f"{d['p95_ms']:.0f} | {d['max_ms']:.0f} |\n\n"
            f"ingest: {result['ingest_s']:.1f} s ({result['ingest_summary']})")
