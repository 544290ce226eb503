"""``rag check``, ``--repair`` and the index guard on real Chroma stores, damaged the way the
hostile testers did.

The damaged store is a "big store" (the sample corpus plus 1,100 more sentences): above
about 1,000 records Chroma keeps its HNSW index in files of the collection's VECTOR segment
folder, which is what gets damaged. Every command on a damaged copy runs in its own
process, as a person would run it: Chroma's Rust layer caches an opened index per segment
id for the whole process, and a copied store keeps its original's segment ids, so opening
several copies in one process mixes their indexes (that, and treating HNSW's approximate
search as exact, made this file fail about half its runs before).

The subprocesses use the tests' embedder (``tests.processes.TEST_EMBEDDER``, e5): what is
tested is the store, and e5 is the fastest to load and to re-embed with.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from rag.config import DEFAULT_CORPUS, Settings
from rag.store import FileManifest, SentenceMeta, SentenceRecord, Store, chunk_key, record_id
from tests.processes import clean_env

QUESTION, SOURCE = "What did Russia demand about 1997?", "003_f0b8fe8fdb47aa20.txt"
EXTRA_SENTENCES = 1100


def rag(chroma_dir: Path | str, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rag.cli", *argv],
                          env=clean_env(RAG_CHROMA_DIR=str(chroma_dir)),
                          capture_output=True, text=True, timeout=600, check=False)


def _write_extra_documents(folder: Path) -> None:
    """1,100 distinct short sentences about a warehouse, far from the articles' subject
    (seven words: the shortest that ingest keeps as sentences of their own)."""
    folder.mkdir(parents=True)
    shelves = ["śruby", "gwoździe", "farby", "kable", "deski", "rury", "klej", "taśmy"]
    for f in range(10):
        lines = [f"Pozycja {f * 110 + i}: {shelves[(f + i) % len(shelves)]} leżą na regale "
                 f"{i % 13}." for i in range(EXTRA_SENTENCES // 10)]
        (folder / f"magazyn_{f:02d}.txt").write_text("\n".join(lines), encoding="utf-8")


@pytest.fixture(scope="session")
def big_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built by ``rag ingest`` in its own process: this process never opens it."""
    root = tmp_path_factory.mktemp("big")
    _write_extra_documents(root / "extra")
    folder = root / "chroma"
    done = rag(folder, "ingest", str(DEFAULT_CORPUS), str(root / "extra"))
    assert done.returncode == 0, done.stderr
    assert _vector_files(folder)["index_metadata.pickle"].is_file()  # flushed to files
    assert rag(folder, "check").returncode == 0
    return folder


@pytest.fixture
def store_copy(big_store: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "chroma"
    shutil.copytree(big_store, copy)
    return copy


def _segment(chroma_dir: Path) -> Path:
    """The folder of the sentence collection's HNSW index (Chroma's own SQLite schema)."""
    db = sqlite3.connect(chroma_dir / "chroma.sqlite3")
    try:
        (segment,) = db.execute(
            "SELECT s.id FROM segments s JOIN collections c ON s.collection = c.id "
            "WHERE c.name = 'documents' AND s.scope = 'VECTOR'").fetchone()
    finally:
        db.close()
    return chroma_dir / segment


def _vector_files(chroma_dir: Path) -> dict[str, Path]:
    segment = _segment(chroma_dir)
    return {name: segment / name for name in ("data_level0.bin", "header.bin",
                                              "index_metadata.pickle")}


def _element(chroma_dir: Path, index: int) -> tuple[int, int, int]:
    """Where element ``index`` of ``data_level0.bin`` starts, where its vector starts and how
    many elements the file holds: from hnswlib's header as Chroma writes it (a format
    version, then offsetLevel0, max_elements, cur_element_count, size_data_per_element,
    label_offset, offsetData as 64-bit fields)."""
    header = _vector_files(chroma_dir)["header.bin"].read_bytes()
    _, _, _, count, size, _, data_offset = struct.unpack("<i6Q", header[:52])
    assert 0 <= index < count
    return index * size, index * size + data_offset, count


def _write_at(path: Path, offset: int, data: bytes) -> None:
    with path.open("r+b") as handle:
        handle.seek(offset)
        handle.write(data)


def _flip_vector(chroma_dir: Path) -> None:
    """16 bytes of one stored vector overwritten: 4 floats that make its norm ~350."""
    _, vector, count = _element(chroma_dir, 0)
    _, vector, _ = _element(chroma_dir, count // 2)
    _write_at(_vector_files(chroma_dir)["data_level0.bin"], vector,
              struct.pack("<4f", 100.0, -100.0, 250.0, 200.0))


def _flip_links(chroma_dir: Path) -> None:
    """4 bytes of one element's level-0 link list: its neighbour count made huge."""
    start, _, count = _element(chroma_dir, 0)
    start, _, _ = _element(chroma_dir, count // 2)
    _write_at(_vector_files(chroma_dir)["data_level0.bin"], start, b"\xff\xff\xff\x7f")


def _flip_middle(chroma_dir: Path) -> None:
    path = _vector_files(chroma_dir)["data_level0.bin"]
    rng = np.random.default_rng(7)
    _write_at(path, path.stat().st_size // 2 - 2048, rng.bytes(4096))


DAMAGE: dict[str, Callable[[Path], None]] = {
    "segment folder removed": lambda d: shutil.rmtree(_segment(d)),
    "data_level0.bin truncated": lambda d: os.truncate(_vector_files(d)["data_level0.bin"], 1000),
    "index_metadata.pickle deleted": lambda d: _vector_files(d)["index_metadata.pickle"].unlink(),
    "16 bytes of a vector flipped": _flip_vector,
    "4 bytes of a link list flipped": _flip_links,
    "4,096 bytes flipped mid-file": _flip_middle,
}


def _one_line_failure(result: subprocess.CompletedProcess[str], code: int | None = None) -> str:
    """The command ended by itself (no signal), non-zero, with exactly one stderr line."""
    assert result.returncode > 0, (result.returncode, result.stderr[-2000:])
    if code is not None:
        assert result.returncode == code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.slow
@pytest.mark.parametrize("damage", list(DAMAGE))
def test_each_damage_is_one_line_and_the_repair_brings_the_answer_back(
        store_copy: Path, damage: str) -> None:
    DAMAGE[damage](store_copy)  # the store was checked healthy when it was built

    assert "rag check --repair" in _one_line_failure(rag(store_copy, "status"), 3)
    assert "rag check --repair" in _one_line_failure(rag(store_copy, "ask", QUESTION), 1)
    assert "rag check --repair" in _one_line_failure(rag(store_copy, "check"), 3)

    repaired = rag(store_copy, "check", "--repair")  # exit 0: a fresh process checked it
    assert repaired.returncode == 0, repaired.stderr
    assert "rebuilt the vector index from" in repaired.stdout
    assert not (store_copy / "rag-damaged-index").exists()  # released once the rebuild checks
    answer = rag(store_copy, "ask", "--json", QUESTION)
    assert answer.returncode == 0, answer.stderr
    assert json.loads(answer.stdout)["citations"][0]["source"] == SOURCE


@pytest.mark.slow
def test_a_crashing_index_is_moved_aside_unopened_and_kept_until_the_rebuild_checks(
        store_copy: Path) -> None:
    """The repair never opens the files that crash their reader: they are moved aside first
    (the child's check crashes, the repair goes on); a crash is reported, not suffered."""
    _flip_links(store_copy)
    check = rag(store_copy, "check")
    assert check.returncode == 3 and "SIGSEGV" in check.stderr
    repaired = rag(store_copy, "check", "--repair")
    assert repaired.returncode == 0, repaired.stderr
    assert "moved the damaged index files aside, unopened" in repaired.stdout
    assert "embedded again from their text" in repaired.stdout


def test_the_guard_probes_only_when_the_index_files_changed(store_copy: Path) -> None:
    """A sound verdict is remembered by the files' names, sizes and times; a change, even of
    one byte with the size kept, is probed again before anything in this process opens it."""
    from rag.index_guard import index_problems, known_sound

    settings = Settings(chroma_dir=str(store_copy))
    assert index_problems(settings) == [] and known_sound(settings)
    _flip_links(store_copy)
    assert not known_sound(settings)
    problems = index_problems(settings)  # the child crashed, this process did not
    assert len(problems) == 1 and "SIGSEGV" in problems[0]
    assert not known_sound(settings)


def _in_child(chroma_dir: Path, code: str) -> None:
    """Run ``code`` against the store with a Chroma client of its own (``client``): this
    process must not open copies of one store (see the module docstring)."""
    prelude = ("import chromadb\nfrom chromadb.config import Settings\n"
               f"client = chromadb.PersistentClient(path={str(chroma_dir)!r}, "
               "settings=Settings(anonymized_telemetry=False))\n")
    done = subprocess.run([sys.executable, "-c", prelude + code], capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr


def test_an_interrupted_delete_retried_reports_what_happened(store_copy: Path) -> None:
    """A delete killed after its journal entry and its first write: ``rag delete`` again
    finishes it, says so, and exits 0 (it used to say "not in the store", exit 1)."""
    from rag.store import path_key

    path = str(DEFAULT_CORPUS.resolve() / SOURCE)
    _in_child(store_copy, f"""
path = {path!r}
files = client.get_collection("documents-files").get(include=["metadatas"])
meta = next(m for m in files["metadatas"] if m["path"] == path)
journal = client.get_or_create_collection("documents-journal")
journal.upsert(ids=[{path_key(path)!r}], embeddings=[[0.0]], metadatas=[{{"op": "delete", **meta}}])
client.get_collection("documents").delete(where={{"path": path}})
""")
    status = rag(store_copy, "status")
    assert f"interrupted delete of {path}" in status.stderr
    retried = rag(store_copy, "delete", SOURCE)
    assert retried.returncode == 0, retried.stderr
    assert retried.stdout.strip() == f"finished an interrupted delete of {path}"
    assert rag(store_copy, "status").returncode == 0
    again = rag(store_copy, "delete", SOURCE)
    assert again.returncode == 1 and again.stderr.strip() == f"not in the store: {SOURCE}"


def test_zero_byte_sqlite_is_damage_not_an_empty_store(store_copy: Path) -> None:
    from rag.store import StoreError

    (store_copy / "chroma.sqlite3").write_bytes(b"")
    with pytest.raises(StoreError, match=r"damaged: .*0 bytes"):
        Store(Settings(chroma_dir=str(store_copy)))
    for argv, code in ((["check"], 3), (["check", "--repair"], 3), (["status"], 1),
                       (["ask", QUESTION], 1)):
        line = _one_line_failure(rag(store_copy, *argv), code)
        assert "0 bytes" in line and "backup" in line and "rag ingest" in line
    assert (store_copy / "chroma.sqlite3").stat().st_size == 0  # untouched


def test_records_that_disagree_with_the_manifest_are_reported_and_repaired(
        store_copy: Path) -> None:
    """The states an older version left after kill -9: a file listed with no sentences
    (killed mid-delete) and sentences no listed file owns (killed mid-write)."""
    from rag.store import path_key

    listed_empty = str(DEFAULT_CORPUS.resolve() / SOURCE)
    orphaned = str(DEFAULT_CORPUS.resolve() / "000_52aeee3b79dff4de.txt")
    _in_child(store_copy, f"""
client.get_collection("documents").delete(where={{"path": {listed_empty!r}}})
client.get_collection("documents-files").delete(ids=[{path_key(orphaned)!r}])
""")

    status = rag(store_copy, "status")
    assert status.returncode == 3 and "manifest lists" in status.stderr
    check = rag(store_copy, "check")
    problems = check.stderr.strip().splitlines()
    assert check.returncode == 3 and len(problems) == 2, check.stderr
    assert any(p.startswith(f"problem: {listed_empty}: the manifest lists") for p in problems)
    assert any(p.startswith(f"problem: {orphaned}:") and "(orphaned)" in p for p in problems)

    assert rag(store_copy, "check", "--repair").returncode == 0
    ingest = rag(store_copy, "ingest", str(DEFAULT_CORPUS))
    assert ingest.returncode == 0, ingest.stderr
    assert "2 added" in ingest.stdout
    assert rag(store_copy, "check").returncode == 0
    answer = rag(store_copy, "ask", "--json", QUESTION)
    assert json.loads(answer.stdout)["citations"][0]["source"] == SOURCE


# -- no false alarms on healthy stores -----------------------------------------------------
class _Named:
    def __init__(self, name: str, dim: int) -> None:
        self.name, self.dim = name, dim


def _realistic_vectors(count: int, seed: int) -> np.ndarray:
    """Sentence-like vectors without embedding thousands of sentences: sparse mixtures of
    the sample corpus's real e5 vectors, so they cluster as real ones do."""
    basis = _corpus_vectors()
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(basis), size=(count, 3))
    weights = rng.dirichlet(np.ones(3) * 0.7, size=count)
    vectors = np.einsum("nk,nkd->nd", weights, basis[picks])
    vectors += rng.normal(scale=0.01, size=vectors.shape)
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


_BASIS: list[np.ndarray] = []


def _corpus_vectors() -> np.ndarray:
    if not _BASIS:
        from rag.chunking import split_sentences
        from rag.embedding import make_embedder

        sentences = [s for p in sorted(DEFAULT_CORPUS.glob("*.txt"))
                     for s in split_sentences(p.read_text(encoding="utf-8"))]
        _BASIS.append(make_embedder(Settings(embedder="e5")).embed_passages(sentences))
    return _BASIS[0]


def _fresh_store(folder: Path, sentences: int, small_batches: bool, seed: int) -> Store:
    """A store written through the real write path (journal, 64-record upserts, manifest),
    with the default HNSW settings or the small batches that left unreachable records."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    settings = Settings(chroma_dir=str(folder))
    if small_batches:
        client = chromadb.PersistentClient(path=str(folder),
                                           settings=ChromaSettings(anonymized_telemetry=False))
        client.create_collection("documents", embedding_function=None, metadata={
            "hnsw:space": "cosine", "hnsw:sync_threshold": 20, "hnsw:batch_size": 10,
            "embedder": "synthetic", "dim": 384})
    store = Store(settings)
    store.open_for(_Named("synthetic", 384), create=True)
    vectors = _realistic_vectors(sentences, seed)
    per_file = 77
    for f, start in enumerate(range(0, sentences, per_file)):
        path, digest = f"/synthetic/{seed}/doc{f}.txt", f"{seed:08d}{f:056d}"
        block = vectors[start:start + per_file]
        records = [SentenceRecord(
            id=record_id(path, digest, 0, i), text=f"sentence {start + i}",
            meta=SentenceMeta(path=path, source=f"doc{f}.txt", content_hash=digest,
                              chunk_id=chunk_key(path, digest, 0), chunk=0,
                              chunk_size=len(block), sentence=i)) for i in range(len(block))]
        store.add_file(FileManifest(path, f"doc{f}.txt", digest, sentences=len(block)),
                       [(records, block)])
    return store


@pytest.mark.slow
@pytest.mark.parametrize("small_batches", [False, True], ids=["default HNSW", "small batches"])
@pytest.mark.parametrize(("sentences", "stores"), [(77, 20), (5000, 3)])
def test_healthy_fresh_stores_are_never_reported_damaged(
        tmp_path: Path, sentences: int, stores: int, small_batches: bool) -> None:
    """Fresh stores, each in a new folder (new segment ids: nothing cached in this process),
    checked as ``rag check`` checks (every vector read back, 64 sampled by themselves).
    The full 20 x 5,000 run is in docs/reliability.md; CI runs 3 of them."""
    from rag.check import check_store

    reports = []
    for n in range(stores):
        store = _fresh_store(tmp_path / f"s{n}", sentences, small_batches, seed=n)
        report = check_store(store)
        reports.append((n, report.records, report.problems))
    assert all(records == sentences and problems == [] for _, records, problems in reports), \
        reports


def test_a_probe_judges_the_sample_not_one_approximate_miss(tmp_path: Path) -> None:
    """One record that HNSW's approximate search does not reach is not damage; most of a
    sample missing is (an index that lost its records), and so is a vector of norm != 1."""
    store = _fresh_store(tmp_path / "s", 300, small_batches=False, seed=1)
    collection = store._sentences
    first = collection.get(limit=1, include=[])["ids"][0]

    class Missing:
        """The real collection, whose queries leave out ``ids`` (None: every real record)."""

        def __init__(self, ids: set[str] | None) -> None:
            self.ids = ids

        def __getattr__(self, name: str):
            return getattr(collection, name)

        def query(self, **kwargs):
            res = collection.query(**kwargs)
            pairs = [(i, d) if self.ids is not None and i not in self.ids else ("other", 0.5)
                     for i, d in zip(res["ids"][0], res["distances"][0], strict=True)]
            return {"ids": [[i for i, _ in pairs]], "distances": [[d for _, d in pairs]]}

    store._sentences = Missing({first})
    assert store.probe_index(samples=12) == []  # one miss (the first record): approximation
    store._sentences = Missing(None)
    problems = store.probe_index(samples=12)
    assert len(problems) == 1 and "not found by their own vector" in problems[0]


def test_off_vectors_names_each_vector_no_embedder_wrote() -> None:
    from rag.store import off_vectors

    good = np.eye(4, dtype=np.float32)
    bad = good.copy()
    bad[1] *= 351.9
    bad[3, 0] = np.nan
    assert off_vectors(["a", "b", "c", "d"], good) == []
    lines = off_vectors(["a", "b", "c", "d"], bad)
    assert [line.split(":")[0] for line in lines] == ["record b", "record d"]
    assert "norm 351.9" in lines[0]


def test_check_isolated_reports_a_killed_child_as_one_line(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """How a crash looks from the parent, with a child that really dies by SIGSEGV."""
    from rag import index_guard

    real_run = subprocess.run

    def crashing(argv, **kwargs):
        return real_run([sys.executable, "-c", f"import os; os.kill(os.getpid(), "
                         f"{int(signal.SIGSEGV)})"], **kwargs)

    monkeypatch.setattr(index_guard.subprocess, "run", crashing)
    with pytest.raises(index_guard.IndexCrashed, match="crashed chromadb with SIGSEGV"):
        index_guard.run_isolated(Settings(chroma_dir=str(tmp_path)), "probe")
