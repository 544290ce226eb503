"""Chroma storage: one record per sentence, grouped into chunks, plus a file manifest.

Layout (one Chroma collection pair per corpus):
- ``<collection>``: a record per sentence with its vector; metadata says which
  file, chunk and position it belongs to. Retrieval finds sentences; the
  engine widens them to their chunk, which is what answerers see and cite.
- ``<collection>-files``: a record per ingested file (path, content hash,
  counts, language). A file counts as ingested only once its manifest record
  is written, after all its sentences: a crash mid-file leaves no "done" file,
  and record ids are deterministic, so the rerun overwrites instead of duplicating.

We always pass our own vectors: Chroma's default embedding function would try
to download a model (we checked: ``add(documents=...)`` without embeddings
attempts a network fetch even with ``embedding_function=None``).
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from rag.config import Settings

log = logging.getLogger(__name__)
_BATCH = 2000
T = TypeVar("T")


class StoreError(RuntimeError):
    """The store cannot be used (unreachable server, wrong embedder); message is one line."""


@dataclass(frozen=True)
class SentenceRecord:
    id: str
    text: str
    metadata: dict[str, Any]


@dataclass(frozen=True)
class Hit:
    id: str
    text: str
    score: float  # cosine similarity
    metadata: dict[str, Any]


def path_key(path: str) -> str:
    return hashlib.sha1(path.encode("utf-8")).hexdigest()[:16]


def chunk_key(path: str, content_hash: str, chunk: int) -> str:
    """Deterministic chunk id: the same file version always gets the same ids."""
    return f"{path_key(path)}:{content_hash[:12]}:{chunk}"


def record_id(path: str, content_hash: str, chunk: int, sentence: int) -> str:
    """Deterministic sentence id (no duplicates on re-ingest); see ``chunk_record_ids``."""
    return f"{chunk_key(path, content_hash, chunk)}:{sentence}"


def chunk_record_ids(chunk_id: str, size: int) -> list[str]:
    """The ids of a chunk's ``size`` sentence records, as ``record_id`` builds them."""
    return [f"{chunk_id}:{i}" for i in range(size)]


def _client(settings: Settings) -> Any:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    try:
        if settings.chroma.host:
            return chromadb.HttpClient(
                host=settings.chroma.host, port=settings.chroma.port, settings=chroma_settings
            )
        return chromadb.PersistentClient(path=settings.chroma.dir, settings=chroma_settings)
    except Exception as exc:  # noqa: BLE001 - chromadb raises bare Exception/ValueError
        raise StoreError(
            f"cannot open the Chroma store at {settings.store_location()}: "
            f"{_one_line(exc)}"
        ) from exc


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else exc.__class__.__name__)[:300]


def _guarded(method: Callable[..., T]) -> Callable[..., T]:
    """Turn any Chroma failure (server gone, disk error) into a one-line StoreError.

    Nothing is cached across a failure, so the next call simply retries: when a
    Chroma server comes back, service resumes without a restart.
    """

    @functools.wraps(method)
    def wrapper(self: Store, *args: Any, **kwargs: Any) -> T:
        try:
            return method(self, *args, **kwargs)
        except StoreError:
            raise
        except Exception as exc:  # noqa: BLE001 - chromadb raises many unrelated types
            raise StoreError(f"Chroma store at {self.location}: {_one_line(exc)}") from exc

    return wrapper


class Store:
    """The sentence collection and the file manifest of one corpus."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.location = settings.store_location()
        self._client = _client(settings)
        self._sentences: Any = None
        self._files: Any = None

    # -- opening -------------------------------------------------------------------
    def _get(self, name: str, metadata: dict[str, Any] | None, create: bool) -> Any:
        try:
            if create:
                return self._client.get_or_create_collection(
                    name, embedding_function=None, metadata=metadata
                )
            return self._client.get_collection(name, embedding_function=None)
        except Exception as exc:  # noqa: BLE001
            if not create and "does not exist" in str(exc).lower():
                return None
            raise StoreError(f"Chroma store at {self.location}: {_one_line(exc)}") from exc

    def open(self, embedder_name: str | None, dim: int | None, create: bool) -> bool:
        """Open the collections; refuse an embedder other than the one that built them.

        Returns False when nothing has been ingested yet and ``create`` is False.
        """
        name = self.settings.collection
        meta = {"hnsw:space": "cosine", "embedder": embedder_name or "", "dim": dim or 0}
        sentences = self._get(name, meta if create else None, create)
        if sentences is None:
            return False
        built_with = (sentences.metadata or {}).get("embedder")
        if embedder_name and built_with and built_with != embedder_name:
            raise StoreError(
                f"the store {self.location} was built with embedder {built_with!r} "
                f"(dim {(sentences.metadata or {}).get('dim')}), not {embedder_name!r} "
                f"(dim {dim}); set RAG_EMBEDDER back, or use another RAG_CHROMA_DIR / "
                "RAG_COLLECTION and ingest again"
            )
        self._sentences = sentences
        self._files = self._get(f"{name}-files", {"kind": "manifest"}, create=True)
        return True

    @property
    def embedder_name(self) -> str:
        return str((self._sentences.metadata or {}).get("embedder", "")) if self._sentences else ""

    def _require(self) -> None:
        if self._sentences is None:
            raise StoreError(
                f"nothing has been ingested into {self.location} yet: run 'rag ingest' first"
            )

    # -- writing -------------------------------------------------------------------
    @_guarded
    def add_file(
        self,
        manifest: dict[str, Any],
        batches: Iterable[tuple[Sequence[SentenceRecord], np.ndarray]],
    ) -> None:
        """Write one file version: new sentences batch by batch, drop the old version, then
        the manifest (so memory stays flat and a crash never leaves a file marked done)."""
        self._require()
        path, content_hash = manifest["path"], manifest["content_hash"]
        for records, vectors in batches:
            for start in range(0, len(records), _BATCH):
                batch = records[start : start + _BATCH]
                self._sentences.upsert(
                    ids=[r.id for r in batch],
                    embeddings=vectors[start : start + _BATCH],
                    documents=[r.text for r in batch],
                    metadatas=[r.metadata for r in batch],
                )
        self._sentences.delete(
            where={"$and": [{"path": path}, {"content_hash": {"$ne": content_hash}}]}
        )
        self._files.upsert(ids=[path_key(path)], embeddings=[[0.0]], metadatas=[manifest])

    @_guarded
    def delete_file(self, path: str) -> int:
        """Remove a file's sentences and manifest; returns how many records went."""
        self._require()
        existing = self._sentences.get(where={"path": path}, include=[])
        self._sentences.delete(where={"path": path})
        self._files.delete(ids=[path_key(path)])
        return len(existing["ids"])

    # -- reading -------------------------------------------------------------------
    @_guarded
    def manifest(self, path: str) -> dict[str, Any] | None:
        self._require()
        got = self._files.get(ids=[path_key(path)], include=["metadatas"])
        return got["metadatas"][0] if got["ids"] else None

    @_guarded
    def files(self) -> list[dict[str, Any]]:
        if self._files is None:
            return []
        got = self._files.get(include=["metadatas"])
        return sorted(got["metadatas"], key=lambda m: (m.get("source", ""), m.get("path", "")))

    @_guarded
    def sentence_vectors(self, path: str) -> dict[str, np.ndarray]:
        """The stored vector of each sentence text of a file (reused when it is re-ingested)."""
        self._require()
        got = self._sentences.get(where={"path": path}, include=["documents", "embeddings"])
        vectors = got.get("embeddings")
        if vectors is None or len(vectors) == 0:
            return {}
        return {
            text: np.asarray(vector, dtype=np.float32)
            for text, vector in zip(got["documents"], vectors, strict=True)
            if text
        }

    @_guarded
    def count(self) -> int:
        return int(self._sentences.count()) if self._sentences is not None else 0

    @_guarded
    def query(self, vector: np.ndarray, n: int) -> list[Hit]:
        self._require()
        # No count() to clamp n: Chroma returns fewer hits itself, and count() cost
        # 36 ms per question on a 300k-sentence store (measured, bench.scale --chunks 100000).
        res = self._sentences.query(
            query_embeddings=np.asarray(vector, dtype=np.float32).reshape(1, -1),
            n_results=n,
            include=["documents", "metadatas", "distances"],
        )
        return [
            Hit(id=i, text=d or "", score=1.0 - float(dist), metadata=m or {})
            for i, d, m, dist in zip(
                res["ids"][0], res["documents"][0], res["metadatas"][0], res["distances"][0],
                strict=True,
            )
        ]

    @_guarded
    def chunk_sentences(self, chunks: dict[str, int | None]) -> dict[str, list[tuple[int, str]]]:
        """All sentences of the given chunks (chunk id -> its sentence count, when the
        store recorded it), as (sentence index, text), in order.

        Chunks with a known size are fetched by record id, a primary-key lookup; a
        ``chunk_id`` metadata filter scans and cost 56 ms per question on a
        300k-sentence store (measured). Stores written before sizes were recorded
        fall back to the filter.
        """
        self._require()
        if not chunks:
            return {}
        ids = [i for cid, size in chunks.items() if size for i in chunk_record_ids(cid, size)]
        unsized = sorted(cid for cid, size in chunks.items() if not size)
        got = [self._sentences.get(ids=ids, include=["documents", "metadatas"])] if ids else []
        if unsized:
            where: dict[str, Any] = (
                {"chunk_id": {"$in": unsized}} if len(unsized) > 1 else {"chunk_id": unsized[0]}
            )
            got.append(self._sentences.get(where=where, include=["documents", "metadatas"]))
        out: dict[str, list[tuple[int, str]]] = {}
        for part in got:
            for text, meta in zip(part["documents"], part["metadatas"], strict=True):
                out.setdefault(meta["chunk_id"], []).append((int(meta["sentence"]), text or ""))
        for sentences in out.values():
            sentences.sort()
        return out

    @_guarded
    def sample_vectors(self, limit: int) -> np.ndarray:
        """Up to ``limit`` stored vectors: a background sample for the answerability score."""
        self._require()
        got = self._sentences.get(limit=limit, include=["embeddings"])
        vectors = got.get("embeddings")
        if vectors is None or len(vectors) == 0:
            return np.zeros((0, 1), dtype=np.float32)
        return np.asarray(vectors, dtype=np.float32)
