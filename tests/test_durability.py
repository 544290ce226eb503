"""Crash and concurrency safety of ingestion, on a real on-disk Chroma store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rag.config import DEFAULT_CORPUS, Settings
from rag.engine import Engine
from rag.ingest import IngestLocked, ingest_lock


def _synthetic_corpus(folder: Path, files: int) -> None:
    """Files made of real corpus sentences (shuffled per file), so chunking is realistic."""
    from rag.chunking import split_sentences

    sentences = [s for p in sorted(DEFAULT_CORPUS.glob("*.txt"))
                 for s in split_sentences(p.read_text(encoding="utf-8"))]
    folder.mkdir(parents=True)
    for i in range(files):
        rotated = sentences[i % len(sentences):] + sentences[: i % len(sentences)]
        (folder / f"doc_{i:03d}.txt").write_text(
            f"Dokument numer {i}.\n" + "\n".join(rotated[:12]), encoding="utf-8")


def _consistent(settings: Settings) -> Engine:
    """Assert the store invariants: unique ids, one version per file, manifest = records."""
    engine = Engine(settings)
    engine.store.open_readonly()
    records = engine.store.records()
    ids = [r.id for r in records]
    assert len(ids) == len(set(ids))
    per_file: dict[str, set[str]] = {}
    counts: dict[str, int] = {}
    for record in records:
        per_file.setdefault(record.meta.path, set()).add(record.meta.content_hash)
        counts[record.meta.path] = counts.get(record.meta.path, 0) + 1
    assert all(len(hashes) == 1 for hashes in per_file.values())
    for manifest in engine.store.files():
        assert counts.get(manifest.path) == manifest.sentences, manifest.path
    return engine


@pytest.mark.slow
def test_sigkill_mid_ingest_then_rerun_finishes_consistently(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    _synthetic_corpus(docs, 60)
    settings = Settings(chroma_dir=str(tmp_path / "chroma"))
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("RAG_")},
           "RAG_CHROMA_DIR": settings.chroma.dir}
    proc = subprocess.Popen([sys.executable, "-m", "rag.cli", "ingest", str(docs)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    manifest_db = Path(settings.chroma.dir) / "chroma.sqlite3"
    deadline = time.time() + 120
    while time.time() < deadline and not manifest_db.exists():
        time.sleep(0.2)
    time.sleep(4)  # well inside the ingest of 60 files (~0.5 s each)
    assert proc.poll() is None, "ingest finished before it could be killed: make the corpus bigger"
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    engine = _consistent(settings)
    done_before = len(engine.store.files())
    assert 0 <= done_before < 60

    report = Engine(settings).ingest([docs])
    assert len(report.unchanged) == done_before
    assert len(report.added) + len(report.updated) == 60 - done_before
    engine = _consistent(settings)
    assert len(engine.store.files()) == 60


def test_second_ingest_on_same_store_is_refused_clearly(tmp_path: Path) -> None:
    settings = Settings(chroma_dir=str(tmp_path / "chroma"))
    with ingest_lock(settings), pytest.raises(IngestLocked, match="another ingest is writing"):
        Engine(settings).ingest([DEFAULT_CORPUS / "003_f0b8fe8fdb47aa20.txt"])
    # once released, ingest works
    assert Engine(settings).ingest([DEFAULT_CORPUS / "003_f0b8fe8fdb47aa20.txt"]).added
