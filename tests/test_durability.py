"""Crash and concurrency safety of ingestion, on a real on-disk Chroma store."""

from __future__ import annotations

import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from rag.config import DEFAULT_CORPUS, Settings
from rag.engine import Engine
from rag.ingest import IngestLocked, ingest_lock
from tests.processes import clean_env


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
    env = clean_env(RAG_CHROMA_DIR=settings.chroma.dir)
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


def _snapshot(settings: Settings, embedder) -> tuple[dict, dict, list[str]]:
    """Everything a store holds that a clean run decides: records, manifests, journal."""
    store = Engine(settings, embedder=embedder).store
    store.open_readonly()
    records = {r.id: (r.text, r.meta) for r in store.records()}
    manifests = {m.path: replace(m, ingested_at=0.0) for m in store.files()}
    return records, manifests, store.pending()


def _edit_corpus(docs: Path) -> None:
    """Version 2 of the folder: two files edited, one removed, one added."""
    for name in ("doc_001.txt", "doc_003.txt"):
        path = docs / name
        path.write_text(path.read_text(encoding="utf-8") + "\nZmieniony akapit numer "
                        f"{name}, dopisany w drugiej wersji.\n", encoding="utf-8")
    (docs / "doc_004.txt").unlink()
    (docs / "doc_009.txt").write_text("Nowy plik w drugiej wersji. " + (docs / "doc_000.txt")
                                      .read_text(encoding="utf-8"), encoding="utf-8")


def _run_killed(argv: list[str], delay_s: float | None) -> tuple[bool, float]:
    """Run ``tests.crash_child`` and SIGKILL it ``delay_s`` after it is ready (None: let it
    finish); returns whether the kill landed before it finished, and the seconds it ran."""
    env = clean_env(PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    proc = subprocess.Popen([sys.executable, "-m", "tests.crash_child", *argv], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    started = time.perf_counter()
    if delay_s is None:
        assert proc.wait(timeout=600) == 0
        return False, time.perf_counter() - started
    time.sleep(delay_s)
    killed = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return killed, delay_s


@pytest.mark.slow
def test_sigkill_at_random_points_of_ingest_and_delete_leaves_no_difference(
        tmp_path: Path) -> None:
    """32 seeded trials: kill -9 anywhere in an ingest (edits, a removal, an addition, files
    written in several batches) or a delete of four files; the next ``ingest`` must leave the
    store exactly as a clean run does: same records, same manifests, empty journal."""
    from rag.embedding import make_embedder

    docs = tmp_path / "docs"
    _synthetic_corpus(docs, 8)
    embedder = make_embedder(Settings())
    base = Settings(chroma_dir=str(tmp_path / "base"))
    Engine(base, embedder=embedder).ingest([docs])
    _edit_corpus(docs)
    clean = Settings(chroma_dir=str(tmp_path / "clean"))
    shutil.copytree(base.chroma.dir, clean.chroma.dir)
    Engine(clean, embedder=embedder).ingest([docs], prune=True)
    expected = _snapshot(clean, embedder)
    assert expected[2] == [] and len(expected[1]) == 8

    def trial(n: int, op: str, delay: float | None) -> tuple[bool, bool, float]:
        settings = Settings(chroma_dir=str(tmp_path / f"trial{n}"))
        shutil.copytree(base.chroma.dir if op == "ingest" else clean.chroma.dir,
                        settings.chroma.dir)
        argv = [settings.chroma.dir, "ingest", str(docs)] if op == "ingest" else \
            [settings.chroma.dir, "delete", "doc_000.txt", "doc_002.txt", "doc_005.txt",
             "doc_007.txt"]
        killed, seconds = _run_killed(argv, delay)
        Engine(settings, embedder=embedder).ingest([docs], prune=True)
        same = _snapshot(settings, embedder) == expected
        return killed, same, seconds

    durations = {}  # an uncut run of each, to spread the kills over its length
    for n, op in enumerate(("ingest", "delete"), start=100):
        killed, same, durations[op] = trial(n, op, None)
        assert same and not killed
    rng = random.Random(20261123)
    results = []
    for n in range(32):
        op = "ingest" if n % 2 == 0 else "delete"
        results.append((op, *trial(n, op, rng.uniform(0, durations[op]))))
    assert all(same for _, _, same, _ in results), results
    assert sum(killed for _, killed, _, _ in results) >= 20, results  # most land mid-write
