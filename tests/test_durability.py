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


def _run_child(argv: list[str], delay_s: float | None = None,
               kill_after_writes: int = 0) -> tuple[bool, float, int]:
    """Run ``tests.crash_child``: SIGKILL it ``delay_s`` after it is ready, or let it kill
    itself after its ``kill_after_writes``-th write to Chroma (neither: let it finish).
    Returns whether it was killed before finishing, the seconds it ran, and the writes
    it made (counted only when it finished)."""
    env = clean_env(PYTHONPATH=str(Path(__file__).resolve().parents[1]),
                    KILL_AFTER_WRITES=str(kill_after_writes))
    proc = subprocess.Popen([sys.executable, "-m", "tests.crash_child", *argv], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    started = time.perf_counter()
    if delay_s is not None:
        time.sleep(delay_s)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate(timeout=600)
    seconds = time.perf_counter() - started
    if proc.returncode == -signal.SIGKILL:
        return True, delay_s if delay_s is not None else seconds, 0
    assert proc.returncode == 0, proc.returncode
    return False, seconds, int(out.split()[-1])


@pytest.fixture
def versions(tmp_path: Path):
    """Version 1 of a folder ingested (``base``), version 2 ingested over it (``clean``),
    the snapshot a clean run leaves, and ``trial(n, op, **kill)``: copy the store an
    ``op`` starts from, run it in a child that is killed as ``kill`` says, finish with the
    next ``ingest`` (as a person would), and say whether it was killed and whether the
    store is then identical to the clean run's."""
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

    def trial(n: str, op: str, **kill: float | int) -> tuple[bool, bool, float, int]:
        settings = Settings(chroma_dir=str(tmp_path / f"trial{n}"))
        shutil.copytree(base.chroma.dir if op == "ingest" else clean.chroma.dir,
                        settings.chroma.dir)
        argv = [settings.chroma.dir, "ingest", str(docs)] if op == "ingest" else \
            [settings.chroma.dir, "delete", "doc_000.txt", "doc_002.txt", "doc_005.txt",
             "doc_007.txt"]
        killed, seconds, writes = _run_child(argv, **kill)
        Engine(settings, embedder=embedder).ingest([docs], prune=True)
        same = _snapshot(settings, embedder) == expected
        shutil.rmtree(settings.chroma.dir)
        return killed, same, seconds, writes

    return trial


@pytest.mark.slow
def test_sigkill_at_random_points_of_ingest_and_delete_leaves_no_difference(versions) -> None:
    """16 seeded trials: kill -9 anywhere in an ingest (edits, a removal, an addition, files
    written in several batches) or a delete of four files; the next ``ingest`` must leave the
    store exactly as a clean run does: same records, same manifests, empty journal."""
    durations = {}  # an uncut run of each, to spread the kills over its length
    for op in ("ingest", "delete"):
        killed, same, durations[op], _ = versions(f"uncut-{op}", op)
        assert same and not killed
    rng = random.Random(20261123)
    results = []
    for n in range(16):
        op = "ingest" if n % 2 == 0 else "delete"
        results.append((op, *versions(str(n), op, delay_s=rng.uniform(0, durations[op]))))
    assert all(same for _, _, same, _, _ in results), results
    # Many land mid-write (19 of 32 on a loaded machine, where timings stretch); every
    # write boundary is covered by the write-count test below, not by luck.
    assert sum(killed for _, killed, _, _, _ in results) >= 6, results


@pytest.mark.slow
@pytest.mark.parametrize("op", ["ingest", "delete"])
def test_sigkill_after_every_single_write_leaves_no_difference(versions, op: str) -> None:
    """Timed kills rarely land inside a 30 ms delete: here the child kills itself right
    after its N-th write to Chroma, for every N of the operation (journal entries, sentence
    batches, old-version deletes, manifests), and each ends identical to a clean run."""
    killed, same, _, writes = versions(f"uncut-{op}", op)
    assert same and not killed and writes >= 8
    results = [(n, *versions(f"{op}-{n}", op, kill_after_writes=n)[:2])
               for n in range(1, writes)]  # after the last write there is nothing left to do
    assert all(killed for _, killed, _ in results), results
    assert all(same for _, _, same in results), [r for r in results if not r[2]]
