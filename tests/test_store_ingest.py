"""Ingestion into a real on-disk Chroma store: incremental, no duplicates, embedder guard."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from rag.config import DEFAULT_CORPUS, Settings
from rag.engine import Engine
from rag.store import StoreError


def _ids(engine: Engine) -> list[str]:
    return [r.id for r in engine.store.records()]


def test_reingest_skips_unchanged_and_never_duplicates(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    shutil.copytree(DEFAULT_CORPUS, docs)
    engine = Engine(Settings(chroma_dir=str(tmp_path / "chroma")))
    first = engine.ingest([docs])
    assert len(first.added) == 5 and not first.errors
    ids = _ids(engine)
    assert len(ids) == len(set(ids)) == engine.store.count() == first.sentences

    second = engine.ingest([docs])
    assert len(second.unchanged) == 5 and not second.added and not second.updated
    assert sorted(_ids(engine)) == sorted(ids)

    # a changed file replaces its old chunks, nothing else moves
    target = docs / "002_6d17f7c8ee7027fa.txt"
    target.write_text(target.read_text(encoding="utf-8") + "\nNowe zdanie o NATO i Rosji w "
                      "Brukseli, dodane do testu.\n", encoding="utf-8")
    third = engine.ingest([docs])
    assert [Path(p).name for p in third.updated] == [target.name]
    stored = engine.store.records(path=str(target.resolve()))
    assert len({r.meta.content_hash for r in stored}) == 1
    assert any("dodane do testu" in r.text for r in stored)
    ids_after = _ids(engine)
    assert len(ids_after) == len(set(ids_after))

    # the same file reached through another path spelling is the same file
    engine.ingest([docs / ".." / "docs" / target.name])
    assert sorted(_ids(engine)) == sorted(ids_after)

    # deleting from disk and pruning removes it from the store
    target.unlink()
    pruned = engine.ingest([docs], prune=True)
    assert [Path(p).name for p in pruned.pruned] == [target.name]
    assert target.name not in {f["source"] for f in engine.status()["files"]}
    assert engine.store.records(source=target.name) == []


def test_status_reports_files_chunks_languages(sample_engine: Engine) -> None:
    status = sample_engine.status()
    assert {f["source"] for f in status["files"]} == {p.name for p in DEFAULT_CORPUS.glob("*.txt")}
    langs = {f["source"][:3]: f["language"] for f in status["files"]}
    assert langs == {"000": "pl", "001": "pl", "002": "pl", "003": "ro", "004": "pl"}
    assert status["chunks"] == sum(f["chunks"] for f in status["files"]) > 5
    assert status["embedder"].startswith("e5:")


def test_delete_by_file_name(sample_engine: Engine) -> None:
    removed, finished = sample_engine.delete("003_f0b8fe8fdb47aa20.txt")
    assert len(removed) == 1 and finished == []
    answer = sample_engine.ask("What did Russia demand about 1997?")
    assert "003_f0b8fe8fdb47aa20.txt" not in {p.source for p in answer.retrieved}


def test_query_with_another_embedder_is_refused(sample_settings: Settings) -> None:
    engine = Engine(sample_settings)
    engine.store.open(None, None, create=False)

    class OtherEmbedder:
        name = "sentence-transformers:other"
        dim = 768

    engine._embedder = OtherEmbedder()
    engine._store = None
    with pytest.raises(StoreError, match="was built with embedder"):
        engine.ask("anything at all?")


def test_chroma_is_never_asked_to_embed(sample_settings: Settings, monkeypatch) -> None:
    """Our vectors always go in; Chroma's default embedding function must never run."""
    from chromadb.utils import embedding_functions

    def forbidden(*args, **kwargs):
        raise AssertionError("Chroma's default embedding function was called")

    monkeypatch.setattr(embedding_functions.DefaultEmbeddingFunction, "__call__", forbidden)
    engine = Engine(sample_settings)
    assert engine.ask("What did Russia demand about 1997?").citations
    extra = Path(sample_settings.data_dir) / "extra.txt"
    extra.parent.mkdir(parents=True, exist_ok=True)
    extra.write_text("Nowy dokument o rozmowach NATO z Rosją w Genewie w styczniu.", "utf-8")
    assert engine.ingest([extra]).added


class CountingEmbedder:
    """The real e5 embedder, recording which texts it was asked to embed (a spy, not a fake)."""

    def __init__(self, inner) -> None:
        self.inner, self.name, self.dim = inner, inner.name, inner.dim
        self.embedded: list[str] = []
        self.calls = 0

    def embed_passages(self, texts):
        self.calls += 1
        self.embedded.extend(texts)
        return self.inner.embed_passages(texts)

    def embed_queries(self, texts):
        return self.inner.embed_queries(texts)

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)


def test_edited_file_reembeds_only_its_new_sentences(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    shutil.copytree(DEFAULT_CORPUS, docs)
    engine = Engine(Settings(chroma_dir=str(tmp_path / "chroma")))
    spy = CountingEmbedder(engine.embedder)
    engine._embedder = spy
    engine.ingest([docs])
    files = len(list(docs.iterdir()))
    assert spy.calls < files, "small files are embedded in cross-file batches, not one call each"
    first_pass = list(spy.embedded)
    assert len(first_pass) == len(set(first_pass)), "identical sentences are embedded once"

    target = docs / "003_f0b8fe8fdb47aa20.txt"
    added = "Aceasta este o propoziție nouă despre negocierile de la Geneva, adăugată de test."
    target.write_text(target.read_text(encoding="utf-8") + "\n" + added + "\n", encoding="utf-8")
    spy.embedded.clear()
    engine.ingest([docs])
    assert spy.embedded and all(added in text for text in spy.embedded)

    # reused vectors are exactly what a fresh embedding gives
    stored = engine.store.records(path=str(target.resolve()), with_vectors=True)
    fresh = spy.inner.embed_passages([r.text for r in stored])
    assert abs(fresh - np.stack([r.vector for r in stored])).max() < 1e-5


def test_passages_fetched_by_record_id_match_the_metadata_filter(sample_engine: Engine) -> None:
    """Retrieval widens hits to whole chunks by record id; stores without recorded chunk
    sizes (written by older versions) use the metadata filter. Both must give the same text."""
    retrieval = sample_engine.retriever.retrieve("What did Russia demand about 1997?", 5)
    sizes = {p.chunk_id: len(sample_engine.store.chunk_sentences({p.chunk_id: None})[p.chunk_id])
             for p in retrieval.passages}
    by_id = sample_engine.store.chunk_sentences(sizes)
    by_filter = sample_engine.store.chunk_sentences(dict.fromkeys(sizes))
    assert by_id == by_filter and len(by_id) == len(retrieval.passages)
    for passage in retrieval.passages:
        assert passage.text == " ".join(text for _, text in by_id[passage.chunk_id])
        assert passage.sentence in passage.text


def test_a_file_is_written_in_small_batches_so_questions_get_in_between(
        tmp_path: Path, monkeypatch) -> None:
    """A local Chroma answers no query while it writes: a question asked during a large
    upload waited up to 1.6 s behind one 1,024-record upsert (`rag bench --contention`
    and the measurement in ``rag/store.py``). Every write is at most ``WRITE_BATCH``
    records, and all of the file's sentences still arrive, once each. A spy on the real
    collection's ``upsert`` records the batch sizes; the timing is the benchmark's job."""
    from chromadb.api.models.Collection import Collection
    from rag.bench.contention import write_text_file

    from rag.store import WRITE_BATCH

    sizes: list[int] = []
    real_upsert = Collection.upsert

    def spying_upsert(self, ids, *args, **kwargs):
        if not self.name.endswith(("-files", "-journal")):  # the sentences collection
            sizes.append(len(ids))
        return real_upsert(self, ids, *args, **kwargs)

    monkeypatch.setattr(Collection, "upsert", spying_upsert)
    text = tmp_path / "docs" / "many.txt"
    text.parent.mkdir()
    write_text_file(text, megabytes=0.02)  # ~150 distinct sentences
    engine = Engine(Settings(chroma_dir=str(tmp_path / "chroma")))
    report = engine.ingest([text.parent])
    assert WRITE_BATCH <= 128  # 256 records already held a query 444 ms
    assert report.sentences > 2 * WRITE_BATCH
    assert len(sizes) >= 3 and max(sizes) <= WRITE_BATCH
    ids = _ids(engine)
    assert len(ids) == len(set(ids)) == report.sentences
