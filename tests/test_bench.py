"""Smoke test of ``rag bench``: every figure is produced and sane. No time is asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rag.config import PROJECT_ROOT

pytestmark = pytest.mark.slow
KEYS = ("ingest_tokens_per_s", "ingest_speedup_vs_llamaindex", "ingest_fraction_of_ceiling",
        "ask_warm_p50_ms", "ask_warm_p95_ms", "ask_cold_s")


def test_quick_bench_reports_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "rag.cli", "bench", "--quick", "--json", "--out", str(out),
         "--work", str(tmp_path / "work")],
        capture_output=True, text=True, timeout=600, cwd=PROJECT_ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert json.loads(out.read_text()) == result
    for key in KEYS:
        assert result[key] > 0, key
    assert result["ask_warm_p50_ms"] <= result["ask_warm_p95_ms"]
    assert 0 < result["ingest_fraction_of_ceiling"] < 1
    (point,) = result["scale"]
    assert point["chunks"] >= 300 and point["sentences"] > point["chunks"]
    assert point["peak_rss_mb"] > 50 and point["query_p95_ms"] > 0 and point["ingest_s"] > 0
    # both pipelines saw the same chunks
    sample = result["sample_ingest"]
    assert sample["chunks"] > 5 and sample["tokens"] > 1000


def test_bench_help_does_not_run_it() -> None:
    done = subprocess.run([sys.executable, "-m", "rag.cli", "bench", "--help"],
                          capture_output=True, text=True, timeout=60, cwd=PROJECT_ROOT)
    assert done.returncode == 0 and "--full" in done.stdout


def test_eval_help_is_the_eval_parser() -> None:
    done = subprocess.run([sys.executable, "-m", "rag.cli", "eval", "--help"],
                          capture_output=True, text=True, timeout=60, cwd=PROJECT_ROOT)
    assert done.returncode == 0 and "--min" in done.stdout
