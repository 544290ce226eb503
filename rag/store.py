"""Chroma storage: one record per sentence, grouped into chunks, plus a file manifest.

Layout (one Chroma collection pair per corpus):
- ``<collection>``: a record per sentence with its vector; metadata says which
  file, chunk and position it belongs to. Retrieval finds sentences; the
  engine widens them to their chunk, which is what answerers see and cite.
- ``<collection>-files``: a record per ingested file (path, content hash,
  counts, language). A file counts as ingested only once its manifest record
  is written, after all its sentences: a crash mid-file leaves no "done" file,
  and record ids are deterministic, so the rerun overwrites instead of duplicating.
- ``<collection>-journal``: the intent of a write or delete in flight, recorded
  before any sentence is touched and removed once the manifest says the final
  state. ``recover()`` (run by every ingest and delete) finishes or rolls back
  what a killed process left, so no sentence is orphaned and no file is marked
  done without its sentences.

We always pass our own vectors: Chroma's default embedding function would try
to download a model (we checked: ``add(documents=...)`` without embeddings
attempts a network fetch even with ``embedding_function=None``).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np

from rag.config import Settings

log = logging.getLogger(__name__)
_BATCH = 2000  # records per read
# Records per write. A local Chroma answers no query while it writes: measured with
# chromadb 1.5 (2 cores, 7 x 1,024 vectors written while another thread queries),
# a query waited up to 1,301-1,572 ms behind 1,024-record upserts, 444 ms behind 256,
# 180 ms behind 64, and the whole write took the same time (8.1-10.4 s, noise).
WRITE_BATCH = 64
T = TypeVar("T")


class StoreError(RuntimeError):
    """The store cannot be used (unreachable server, wrong embedder); message is one line."""


class EmbedderLike(Protocol):
    """What the store needs to know about an embedder: its name and vector size."""

    name: str
    dim: int


@dataclass(frozen=True)
class SentenceMeta:
    """Where a sentence record sits: its file version, chunk and position."""

    path: str
    source: str
    content_hash: str
    chunk_id: str
    chunk: int
    chunk_size: int  # lets retrieval fetch a whole chunk by record id
    sentence: int
    language: str = "und"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, meta: dict[str, Any]) -> SentenceMeta:
        return cls(
            path=str(meta.get("path", "")), source=str(meta.get("source", "")),
            content_hash=str(meta.get("content_hash", "")), chunk_id=str(meta.get("chunk_id", "")),
            chunk=int(meta.get("chunk", 0)), chunk_size=int(meta.get("chunk_size", 0) or 0),
            sentence=int(meta.get("sentence", 0)), language=str(meta.get("language", "und")),
        )


@dataclass(frozen=True)
class SentenceRecord:
    id: str
    text: str
    meta: SentenceMeta
    vector: np.ndarray | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class FileManifest:
    """One ingested file version: written last, so its presence means "all sentences stored"."""

    path: str
    source: str
    content_hash: str
    language: str = "und"
    chunks: int = 0
    sentences: int = 0
    tokens: int = 0
    ingested_at: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, meta: dict[str, Any]) -> FileManifest:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in meta.items() if k in known}
        return cls(**{"source": "", "content_hash": "", **values})


@dataclass(frozen=True)
class StoreStatus:
    """What ``rag status`` shows; ``problems`` are cheap consistency warnings."""

    location: str
    embedder: str
    files: list[FileManifest]
    sentences: int
    problems: list[str] = field(default_factory=list)

    @property
    def chunks(self) -> int:
        return sum(f.chunks for f in self.files)


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


def damaged_local_store(chroma_dir: str) -> str | None:
    """Why a local store folder is unusable, before Chroma silently starts it afresh.

    Chroma treats a 0-byte or missing ``chroma.sqlite3`` as a new, empty store;
    beside vector-segment folders that means the records were lost, not that
    nothing was ingested.
    """
    folder = Path(chroma_dir)
    db = folder / "chroma.sqlite3"
    segments = [p for p in folder.glob("*-*-*-*-*") if p.is_dir()] if folder.is_dir() else []
    if db.exists() and db.stat().st_size == 0:
        return f"{db} is empty (0 bytes): the store's records are lost"
    if not db.exists() and segments:
        return f"{db} is missing beside {len(segments)} vector index folder(s)"
    return None


def _client(settings: Settings) -> Any:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    if not settings.chroma.host:
        damage = damaged_local_store(settings.chroma.dir)
        if damage:
            raise StoreError(
                f"the store is damaged: {damage}; restore it from a backup, or move "
                f"{settings.chroma.dir} away and run 'rag ingest' again (docs/reliability.md)"
            )
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


def _path_where(path: str, content_hash: str | None = None, same: bool = True) -> dict[str, Any]:
    if content_hash is None:
        return {"path": path}
    op = "$eq" if same else "$ne"
    return {"$and": [{"path": path}, {"content_hash": {op: content_hash}}]}


class Store:
    """The sentence collection, the file manifest and the journal of one corpus."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.location = settings.store_location()
        self._client = _client(settings)
        self._sentences: Any = None
        self._files: Any = None
        self._journal: Any = None

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
        sentences = self._get(name, None, create=False) or self._finish_rebuild()
        if sentences is None and create:
            sentences = self._get(name, meta, create=True)
        if sentences is None:
            return False
        built_with = (sentences.metadata or {}).get("embedder")
        if embedder_name and built_with and built_with != embedder_name:
            raise StoreError(
                f"the store {self.location} was built with embedder {built_with!r} "
                f"(dim {(sentences.metadata or {}).get('dim')}), not {embedder_name!r} "
                f"(dim {dim}): run 'rag ingest --reembed' to rebuild it with {embedder_name!r}, "
                "or set RAG_EMBEDDER to the embedder that built it"
            )
        self._sentences = sentences
        self._files = self._get(f"{name}-files", {"kind": "manifest"}, create=True)
        self._journal = self._get(f"{name}-journal", {"kind": "journal"}, create=create)
        return True

    def open_for(self, embedder: EmbedderLike, create: bool = False) -> bool:
        """Open for this embedder (refusing a store another one built); see ``open``."""
        return self.open(embedder.name, embedder.dim, create)

    def open_readonly(self) -> bool:
        """Open whatever embedder built the store (for status and checks); False if empty."""
        return self.is_open or self.open(None, None, create=False)

    @property
    def is_open(self) -> bool:
        return self._sentences is not None

    @property
    def embedder_name(self) -> str:
        return str((self._sentences.metadata or {}).get("embedder", "")) if self._sentences else ""

    def require_ingested(self) -> None:
        """Raise the one-line "run rag ingest first" error unless the store is open."""
        if self._sentences is None:
            raise StoreError(
                f"nothing has been ingested into {self.location} yet: run 'rag ingest' first"
            )

    def is_empty(self) -> bool:
        """True when no sentence is stored (or the store was never created)."""
        return not self.open_readonly() or self.count() == 0

    # -- writing (journalled) ----------------------------------------------------------
    def _begin(self, op: str, manifest: FileManifest) -> None:
        """Record the intent before touching a sentence: ``recover`` finishes or undoes it."""
        if self._journal is None:
            self._journal = self._get(f"{self.settings.collection}-journal",
                                      {"kind": "journal"}, create=True)
        self._journal.upsert(ids=[path_key(manifest.path)], embeddings=[[0.0]],
                             metadatas=[{"op": op, **manifest.as_dict()}])

    def _end(self, path: str) -> None:
        self._journal.delete(ids=[path_key(path)])

    @_guarded
    def add_file(
        self,
        manifest: FileManifest,
        batches: Iterable[tuple[Sequence[SentenceRecord], np.ndarray]],
    ) -> None:
        """Write one file version: intent first, new sentences batch by batch, drop the old
        version, then the manifest (memory stays flat; a crash is finished or undone by
        ``recover``, never left as a file marked done without its sentences)."""
        self.require_ingested()
        self._begin("add", manifest)
        for records, vectors in batches:
            for start in range(0, len(records), WRITE_BATCH):
                batch = records[start : start + WRITE_BATCH]
                self._sentences.upsert(
                    ids=[r.id for r in batch],
                    embeddings=vectors[start : start + WRITE_BATCH],
                    documents=[r.text for r in batch],
                    metadatas=[r.meta.as_dict() for r in batch],
                )
        self._commit_add(manifest)

    def _commit_add(self, manifest: FileManifest) -> None:
        self._sentences.delete(where=_path_where(manifest.path, manifest.content_hash, False))
        self._files.upsert(ids=[path_key(manifest.path)], embeddings=[[0.0]],
                           metadatas=[manifest.as_dict()])
        self._end(manifest.path)

    @_guarded
    def delete_file(self, path: str) -> int:
        """Remove a file's sentences and manifest; returns how many records went."""
        self.require_ingested()
        self._begin("delete", self.manifest(path) or FileManifest(path, "", ""))
        existing = self._sentences.get(where={"path": path}, include=[])
        self._finish_delete(path)
        return len(existing["ids"])

    def _finish_delete(self, path: str) -> None:
        self._sentences.delete(where={"path": path})
        self._files.delete(ids=[path_key(path)])
        self._end(path)

    @_guarded
    def drop_stale_versions(self, path: str) -> None:
        """Remove sentences of ``path`` that are not of the version its manifest lists."""
        manifest = self.manifest(path)
        if manifest is not None:
            self._sentences.delete(where=_path_where(path, manifest.content_hash, same=False))

    @_guarded
    def pending(self) -> list[str]:
        """Operations an interrupted process left unfinished, one line each."""
        if self._journal is None:
            return []
        got = self._journal.get(include=["metadatas"])
        return [f"interrupted {m.get('op')} of {m.get('path')}" for m in got["metadatas"]]

    @_guarded
    def recover(self) -> list[str]:
        """Finish or roll back what a killed ingest or delete left; one line per repair.

        An interrupted write is finished when all its sentences made it (the journal
        holds the manifest it was about to write), else its partial sentences are
        removed and the previous version stays as it was. An interrupted delete is
        finished. Run under the ingest lock, before any new write.
        """
        self.require_ingested()
        if self._journal is None:
            return []
        lines = []
        for meta in self._journal.get(include=["metadatas"])["metadatas"]:
            op = meta.pop("op", "")
            manifest = FileManifest.from_dict(meta)
            if op == "delete":
                self._finish_delete(manifest.path)
                lines.append(f"repaired {manifest.path}: finished an interrupted delete")
                continue
            stored = self._sentences.get(
                where=_path_where(manifest.path, manifest.content_hash), include=[])["ids"]
            if len(stored) == manifest.sentences:
                self._commit_add(manifest)
                lines.append(f"repaired {manifest.path}: finished an interrupted ingest")
            else:
                self._sentences.delete(where=_path_where(manifest.path, manifest.content_hash))
                self._end(manifest.path)
                lines.append(f"repaired {manifest.path}: removed {len(stored)} sentences of "
                             "an interrupted ingest")
        return lines

    # -- reading -------------------------------------------------------------------
    @_guarded
    def manifest(self, path: str) -> FileManifest | None:
        self.require_ingested()
        got = self._files.get(ids=[path_key(path)], include=["metadatas"])
        return FileManifest.from_dict(got["metadatas"][0]) if got["ids"] else None

    @_guarded
    def files(self) -> list[FileManifest]:
        if self._files is None:
            return []
        got = self._files.get(include=["metadatas"])
        manifests = [FileManifest.from_dict(m) for m in got["metadatas"]]
        return sorted(manifests, key=lambda m: (m.source, m.path))

    @_guarded
    def records(
        self, path: str | None = None, source: str | None = None, with_vectors: bool = False,
    ) -> list[SentenceRecord]:
        """Stored sentence records (of one file when ``path``/``source`` is given)."""
        self.require_ingested()
        where: dict[str, Any] | None = (
            {"path": path} if path is not None else {"source": source} if source else None
        )
        include = ["documents", "metadatas"] + (["embeddings"] if with_vectors else [])
        return self._as_records(self._sentences.get(where=where, include=include))

    @staticmethod
    def _as_records(got: dict[str, Any]) -> list[SentenceRecord]:
        vectors = got.get("embeddings")
        return [
            SentenceRecord(
                id=i, text=text or "", meta=SentenceMeta.from_dict(meta or {}),
                vector=None if vectors is None else np.asarray(vectors[n], dtype=np.float32),
            )
            for n, (i, text, meta) in enumerate(
                zip(got["ids"], got["documents"], got["metadatas"], strict=True))
        ]

    def iter_records(self, with_vectors: bool, batch: int = _BATCH
                     ) -> Iterator[list[SentenceRecord]]:
        """Every stored sentence record, page by page (memory stays flat)."""
        self.require_ingested()
        offset = 0
        while page := self._page(offset, batch, with_vectors):
            yield page
            offset += len(page)

    @_guarded
    def _page(self, offset: int, batch: int, with_vectors: bool) -> list[SentenceRecord]:
        include = ["documents", "metadatas"] + (["embeddings"] if with_vectors else [])
        return self._as_records(self._sentences.get(limit=batch, offset=offset, include=include))

    @_guarded
    def vectors_of(self, ids: Sequence[str]) -> np.ndarray:
        """The stored vectors of ``ids`` in order; StoreError when the index cannot give them."""
        self.require_ingested()
        got = self._sentences.get(ids=list(ids), include=["embeddings"])
        by_id = dict(zip(got["ids"], got["embeddings"], strict=True))
        return np.asarray([by_id[i] for i in ids], dtype=np.float32)

    @_guarded
    def sentence_vectors(self, path: str) -> dict[str, np.ndarray]:
        """The stored vector of each sentence text of a file (reused when it is re-ingested)."""
        return {r.text: r.vector for r in self.records(path=path, with_vectors=True)
                if r.text and r.vector is not None}

    @_guarded
    def count(self) -> int:
        return int(self._sentences.count()) if self._sentences is not None else 0

    @_guarded
    def query(self, vector: np.ndarray, n: int) -> list[Hit]:
        self.require_ingested()
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
        self.require_ingested()
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
        self.require_ingested()
        got = self._sentences.get(limit=limit, include=["embeddings"])
        vectors = got.get("embeddings")
        if vectors is None or len(vectors) == 0:
            return np.zeros((0, 1), dtype=np.float32)
        return np.asarray(vectors, dtype=np.float32)

    # -- health and repair -----------------------------------------------------------
    @_guarded
    def status(self) -> StoreStatus:
        """Files, counts and cheap consistency warnings (no embedder needed)."""
        if not self.open_readonly():
            return StoreStatus(self.location, "", [], 0)
        files, count = self.files(), self.count()
        problems = [f"{line}: run 'rag ingest' to finish it" for line in self.pending()]
        listed = sum(f.sentences for f in files)
        if listed != count:
            problems.append(f"the manifest lists {listed} sentences but the store holds {count}: "
                            "run 'rag check'")
        problems += self.probe_index(samples=3)
        return StoreStatus(self.location, self.embedder_name, files, count, problems)

    def probe_index(self, samples: int, seed: int = 0) -> list[str]:
        """Read back a few stored vectors and look each up by itself.

        A lost or truncated HNSW segment leaves ``count()`` and the records intact
        (they live in SQLite) but fails here: reading the vector errors, or the
        query no longer finds the record (measured with chromadb 1.5.9 on a
        1,503-sentence store). Identical sentences share a vector, so a hit at
        distance ~0 counts as found.
        """
        self.require_ingested()
        total = self.count()
        rng = random.Random(seed)
        offsets = sorted({0, total - 1, *(rng.randrange(total) for _ in range(samples))}
                         ) if total else []
        problems = []
        for offset in offsets:
            try:
                got = self._sentences.get(limit=1, offset=offset, include=["embeddings"])
                res = self._sentences.query(query_embeddings=[got["embeddings"][0]],
                                            n_results=5, include=["distances"])
            except Exception as exc:  # noqa: BLE001 - Chroma reports index damage as anything
                return [f"the vector index cannot give back stored vectors ({_one_line(exc)}): "
                        "run 'rag check --repair'"]
            ids, distances = res["ids"][0], res["distances"][0]
            if got["ids"][0] not in ids and not (distances and distances[0] < 1e-4):
                problems.append(f"record {got['ids'][0]} is not found by its own vector: "
                                "run 'rag check --repair'")
        return problems

    def _finish_rebuild(self) -> Any:
        """A repair killed after dropping the damaged collection: rename its rebuilt copy."""
        rebuilt = self._get(f"{self.settings.collection}-rebuild", None, create=False)
        if rebuilt is not None:
            rebuilt.modify(name=self.settings.collection)
        return rebuilt

    @_guarded
    def rebuild_index(self, embed: Callable[[list[SentenceRecord]], np.ndarray],
                      new_embedder: EmbedderLike | None = None,
                      progress: Callable[[int, int], None] | None = None) -> tuple[int, int]:
        """Copy every sentence record into a fresh collection and swap it in.

        The records' text and metadata live in Chroma's SQLite, which survives a
        damaged HNSW segment; vectors the index still gives back (finite, non-zero)
        are kept, the others are embedded again from the text with ``embed``. With
        ``new_embedder`` every record is embedded again and the store is recorded as
        built by it (``rag ingest --reembed``). A crash mid-copy leaves the old
        collection as it was; one after the swap is finished by the next ``open``.
        Returns (records copied, records re-embedded); ``progress(done, total)``.
        """
        self.require_ingested()
        name, tmp = self.settings.collection, f"{self.settings.collection}-rebuild"
        if self._get(tmp, None, create=False) is not None:
            self._client.delete_collection(tmp)  # left by a repair killed mid-copy
        metadata = dict(self._sentences.metadata or {})
        if new_embedder is not None:
            metadata.update(embedder=new_embedder.name, dim=new_embedder.dim)
        fresh = self._client.create_collection(tmp, embedding_function=None, metadata=metadata)
        copied = reembedded = 0
        total = self.count()
        for page in self.iter_records(with_vectors=False):
            vectors = None if new_embedder else self._readable_vectors([r.id for r in page])
            if vectors is None:
                vectors = np.asarray(embed(page), dtype=np.float32)
                reembedded += len(page)
            fresh.add(ids=[r.id for r in page], embeddings=vectors,
                      documents=[r.text for r in page],
                      metadatas=[r.meta.as_dict() for r in page])
            copied += len(page)
            if progress:
                progress(copied, total)
        self._client.delete_collection(name)
        fresh.modify(name=name)
        self._sentences = self._get(name, None, create=False)
        return copied, reembedded

    def _readable_vectors(self, ids: list[str]) -> np.ndarray | None:
        try:
            vectors = self.vectors_of(ids)
        except StoreError:
            return None
        norms = np.linalg.norm(vectors, axis=1) if len(vectors) else np.ones(0)
        return vectors if np.isfinite(vectors).all() and (norms > 1e-6).all() else None
