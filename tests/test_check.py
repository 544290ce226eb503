"""``rag check`` and ``--repair`` on real Chroma stores damaged the way the hostile tester did.

The store is the sample corpus, written into a collection whose HNSW index is flushed to
its segment folder every 20 records (Chroma's ``hnsw:sync_threshold``; the default, 1,000,
would need a corpus twenty times larger before any index file exists to damage).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from rag.check import check_store, repair_store
from rag.config import DEFAULT_CORPUS, Settings
from rag.engine import Engine
from rag.store import Store, StoreError, path_key
from tests.processes import clean_env

QUESTION, SOURCE = "What did Russia demand about 1997?", "003_f0b8fe8fdb47aa20.txt"


@pytest.fixture(scope="session")
def flushed_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    folder = tmp_path_factory.mktemp("flushed") / "chroma"
    engine = Engine(Settings(chroma_dir=str(folder)))
    client = chromadb.PersistentClient(path=str(folder),
                                       settings=ChromaSettings(anonymized_telemetry=False))
    client.create_collection("documents", embedding_function=None, metadata={
        "hnsw:space": "cosine", "hnsw:sync_threshold": 20, "hnsw:batch_size": 10,
        "embedder": engine.embedder.name, "dim": engine.embedder.dim})
    engine.ingest([DEFAULT_CORPUS])
    return folder


@pytest.fixture
def store_copy(flushed_store: Path, tmp_path: Path) -> Settings:
    copy = tmp_path / "chroma"
    shutil.copytree(flushed_store, copy)
    return Settings(chroma_dir=str(copy))


def _segment(settings: Settings) -> Path:
    """The folder of the sentence collection's HNSW index (Chroma's own SQLite schema)."""
    db = sqlite3.connect(Path(settings.chroma.dir) / "chroma.sqlite3")
    try:
        (segment,) = db.execute(
            "SELECT s.id FROM segments s JOIN collections c ON s.collection = c.id "
            "WHERE c.name = 'documents' AND s.scope = 'VECTOR'").fetchone()
    finally:
        db.close()
    return Path(settings.chroma.dir) / segment


DAMAGE = {
    "segment folder deleted": lambda seg: shutil.rmtree(seg),
    "data_level0.bin truncated": lambda seg: os.truncate(seg / "data_level0.bin", 1000),
    "index_metadata.pickle deleted": lambda seg: (seg / "index_metadata.pickle").unlink(),
}


@pytest.mark.slow
@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_vector_index_is_detected_and_rebuilt(
        flushed_store: Path, store_copy: Settings, damage: str) -> None:
    # The original is checked, not the copy: Chroma caches an opened path in this process,
    # and the damage must be met by a first open, as a new process would meet it.
    healthy = check_store(Store(Settings(chroma_dir=str(flushed_store))))
    assert healthy.problems == [] and healthy.records == healthy.vectors == 77
    DAMAGE[damage](_segment(store_copy))

    engine = Engine(store_copy)
    assert any("vector index" in p for p in engine.status()["problems"])
    report = check_store(engine.store)
    assert report.index_damaged and report.vectors < report.records == 77
    assert len(report.problems) == 1 and "rag check --repair" in report.problems[0]

    engine.store.open_for(engine.embedder)
    repaired = repair_store(engine.store, engine.embedder)
    assert repaired.problems == [], repaired.problems
    assert repaired.records == repaired.vectors == 77
    assert any("rebuilt the vector index" in line for line in repaired.repaired)
    after = Engine(store_copy)
    assert after.status()["problems"] == []
    assert after.ask(QUESTION).citations[0].source == SOURCE
    assert check_store(after.store, sample=77).problems == []  # every vector finds itself


def test_records_that_disagree_with_the_manifest_are_reported_and_repaired(
        store_copy: Settings) -> None:
    """The states an older version left after kill -9: a file listed with no sentences
    (killed mid-delete) and sentences no listed file owns (killed mid-write)."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    listed_empty = str(DEFAULT_CORPUS.resolve() / SOURCE)
    orphaned = str(DEFAULT_CORPUS.resolve() / "000_52aeee3b79dff4de.txt")
    client = chromadb.PersistentClient(path=store_copy.chroma.dir,
                                       settings=ChromaSettings(anonymized_telemetry=False))
    client.get_collection("documents").delete(where={"path": listed_empty})
    client.get_collection("documents-files").delete(ids=[path_key(orphaned)])

    engine = Engine(store_copy)
    assert any("manifest lists" in p for p in engine.status()["problems"])
    problems = check_store(engine.store).problems
    assert len(problems) == 2
    assert any(p.startswith(f"{listed_empty}: the manifest lists") for p in problems)
    assert any(p.startswith(f"{orphaned}:") and "(orphaned)" in p for p in problems)

    engine.store.open_for(engine.embedder)
    assert repair_store(engine.store, engine.embedder).problems == []
    report = engine.ingest([DEFAULT_CORPUS])
    assert sorted(Path(p).name for p in report.added) == sorted([SOURCE, Path(orphaned).name])
    assert check_store(engine.store).problems == []
    assert engine.ask(QUESTION).citations[0].source == SOURCE


def test_zero_byte_sqlite_is_damage_not_an_empty_store(store_copy: Settings) -> None:
    (Path(store_copy.chroma.dir) / "chroma.sqlite3").write_bytes(b"")
    with pytest.raises(StoreError, match=r"damaged: .*0 bytes"):
        Store(store_copy)
    env = clean_env(RAG_CHROMA_DIR=store_copy.chroma.dir)
    for argv, code in ((["check"], 3), (["status"], 1), (["ask", QUESTION], 1)):
        result = subprocess.run([sys.executable, "-m", "rag.cli", *argv], env=env,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == code, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "0 bytes" in lines[0] and "rag ingest" in lines[0]
    assert (Path(store_copy.chroma.dir) / "chroma.sqlite3").stat().st_size == 0  # untouched


def test_check_command_exit_codes(store_copy: Settings) -> None:
    env = clean_env(RAG_CHROMA_DIR=store_copy.chroma.dir)

    def rag(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "rag.cli", *argv], env=env,
                              capture_output=True, text=True, timeout=300)

    assert rag("check").returncode == 0
    DAMAGE["segment folder deleted"](_segment(store_copy))
    damaged = rag("check")
    assert damaged.returncode == 3 and damaged.stderr.startswith("problem: vector index")
    status = rag("status")
    assert status.returncode == 0 and "warning: the vector index" in status.stderr
    repaired = rag("check", "--repair")
    assert repaired.returncode == 0, repaired.stderr
    assert "repaired: rebuilt the vector index from 77 stored records" in repaired.stdout
    assert rag("check").returncode == 0
