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
PROBE_NEIGHBOURS = 10  # neighbours a probe asks for: room for a few identical sentences
NORM_TOLERANCE = 1e-3  # every embedder stores L2-normalised vectors
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
class Recovered:
    """What ``recover`` did about one operation a killed process left unfinished."""

    path: str
    op: str  # "add" | "delete": the interrupted operation
    what: str

    def __str__(self) -> str:
        from rag.display import display_name

        return f"repaired {display_name(self.path)}: {self.what}"


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


def damaged_rows(vectors: np.ndarray) -> np.ndarray:
    """Which stored vectors no embedder wrote: not finite, or not of norm 1 (16 flipped
    bytes in an index file gave a vector of norm 351.9 that queries still used)."""
    vectors = np.asarray(vectors, dtype=np.float64)
    if not len(vectors):
        return np.zeros(0, dtype=bool)
    with np.errstate(all="ignore"):
        norms = np.linalg.norm(vectors, axis=1)
    return ~np.isfinite(vectors).all(axis=1) | ~(np.abs(norms - 1.0) <= NORM_TOLERANCE)


def off_vectors(ids: Sequence[str], vectors: np.ndarray) -> list[str]:
    """One line per damaged stored vector (see ``damaged_rows``)."""
    bad = np.flatnonzero(damaged_rows(vectors))
    with np.errstate(all="ignore"):
        norms = np.linalg.norm(np.asarray(vectors, dtype=np.float64)[bad], axis=1)
    return [f"record {ids[i]}: its stored vector is damaged (norm {norm:.4g}; every stored "
            "vector has norm 1): run 'rag check --repair'" for i, norm in zip(bad, norms,
                                                                              strict=True)]


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


def require_undamaged(settings: Settings) -> None:
    """Raise the one-line StoreError for a local store whose records are lost (see
    ``damaged_local_store``): only a backup or a new ingest brings them back."""
    damage = None if settings.chroma.host else damaged_local_store(settings.chroma.dir)
    if damage:
        raise StoreError(
            f"the store is damaged: {damage}; restore it from a backup, or move "
            f"{settings.chroma.dir} away and run 'rag ingest' again (docs/reliability.md)"
        )


def _client(settings: Settings) -> Any:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    require_undamaged(settings)
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
        self._drop_glosses(_path_where(manifest.path, manifest.content_hash, False))
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
        self._drop_glosses({"path": path})
        self._files.delete(ids=[path_key(path)])
        self._end(path)

    @_guarded
    def drop_stale_versions(self, path: str) -> None:
        """Remove sentences of ``path`` that are not of the version its manifest lists."""
        manifest = self.manifest(path)
        if manifest is not None:
            self._sentences.delete(where=_path_where(path, manifest.content_hash, same=False))
            self._drop_glosses(_path_where(path, manifest.content_hash, same=False))

    @_guarded
    def pending(self) -> list[str]:
        """Operations an interrupted process left unfinished, one line each."""
        if self._journal is None:
            return []
        got = self._journal.get(include=["metadatas"])
        return [f"interrupted {m.get('op')} of {m.get('path')}" for m in got["metadatas"]]

    @_guarded
    def recover(self) -> list[Recovered]:
        """Finish or roll back what a killed ingest or delete left; one entry per repair.

        An interrupted write is finished when all its sentences made it (the journal
        holds the manifest it was about to write), else its partial sentences are
        removed and the previous version stays as it was. An interrupted delete is
        finished. Run under the ingest lock, before any new write.
        """
        self.require_ingested()
        if self._journal is None:
            return []
        done = []
        for meta in self._journal.get(include=["metadatas"])["metadatas"]:
            op = meta.pop("op", "")
            manifest = FileManifest.from_dict(meta)
            if op == "delete":
                self._finish_delete(manifest.path)
                done.append(Recovered(manifest.path, "delete", "finished an interrupted delete"))
                continue
            stored = self._sentences.get(
                where=_path_where(manifest.path, manifest.content_hash), include=[])["ids"]
            if len(stored) == manifest.sentences:
                self._commit_add(manifest)
                done.append(Recovered(manifest.path, "add", "finished an interrupted ingest"))
            else:
                self._sentences.delete(where=_path_where(manifest.path, manifest.content_hash))
                self._end(manifest.path)
                done.append(Recovered(manifest.path, "add", f"removed {len(stored)} sentences "
                                                             "of an interrupted ingest"))
        return done

    # -- glosses (rag.glosses): machine translations of sentences, deleted with them ----
    def glosses(self, create: bool = False) -> Any:
        """The ``<collection>-glosses`` collection (None while it does not exist)."""
        return self._get(f"{self.settings.collection}-glosses", {"kind": "glosses"}, create)

    def _drop_glosses(self, where: dict[str, Any]) -> None:
        glosses = self.glosses()
        if glosses is not None:
            glosses.delete(where=where)

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
        """Files, counts and cheap consistency warnings (no embedder needed).

        An index that is not known sound is probed in a child process first; when it
        is damaged, the sentence collection is not touched here (it could crash us):
        the counts are the manifest's.
        """
        from rag.index_guard import index_problems

        damage = index_problems(self.settings)
        if not self.open_readonly():
            return StoreStatus(self.location, "", [], 0, damage)
        files = self.files()
        listed = sum(f.sentences for f in files)
        if damage:
            return StoreStatus(self.location, self.embedder_name, files, listed, damage)
        count = self.count()
        problems = [f"{line}: run 'rag ingest' to finish it" for line in self.pending()]
        if listed != count:
            problems.append(f"the manifest lists {listed} sentences but the store holds {count}: "
                            "run 'rag check'")
        problems += self.probe_index(samples=3)
        return StoreStatus(self.location, self.embedder_name, files, count, problems)

    def require_sound_index(self) -> None:
        """Raise the one-line StoreError when the vector index is damaged, before any query
        could crash on it or answer "not found" from an index that lost records."""
        from rag.index_guard import index_problems

        damage = index_problems(self.settings)
        if damage:
            raise StoreError(f"the store {self.location} needs repair: {damage[0]}")

    def probe_index(self, samples: int, seed: int = 0) -> list[str]:
        """Read back a sample of stored vectors and look each up by itself.

        A lost or truncated HNSW segment leaves ``count()`` and the records intact
        (they live in SQLite) but fails here: reading a vector errors, a query comes
        back short, or most sampled records are no longer found (measured with
        chromadb 1.5.9 on a 1,503-sentence store). One miss alone is not damage:
        HNSW search is approximate, and a healthy store built in small batches left
        a record or two of 77 that no query reached, even asking for all 77
        (tests/test_check.py); so damage is a sample mostly missed. Identical
        sentences share a vector, so a hit at distance ~0 counts as found. Vectors
        must also be finite and of norm 1, as every embedder stores them.
        """
        self.require_ingested()
        total = self.count()
        rng = random.Random(seed)
        offsets = sorted({0, total - 1, *(rng.randrange(total) for _ in range(samples))}
                         ) if total else []
        k = min(total, PROBE_NEIGHBOURS)
        problems, missed = [], []
        for offset in offsets:
            try:
                got = self._sentences.get(limit=1, offset=offset, include=["embeddings"])
                vector = np.asarray(got["embeddings"][0], dtype=np.float32)
                res = self._sentences.query(query_embeddings=[vector], n_results=k,
                                            include=["distances"])
            except Exception as exc:  # noqa: BLE001 - Chroma reports index damage as anything
                return [f"the vector index cannot give back stored vectors ({_one_line(exc)}): "
                        "run 'rag check --repair'"]
            record = got["ids"][0]
            problems += off_vectors([record], vector[None, :])
            ids, distances = res["ids"][0], res["distances"][0]
            if len(ids) < k:
                return [f"the vector index answers with {len(ids)} of {k} neighbours for a "
                        f"store of {total} records: it lost records: run 'rag check --repair'"]
            if record not in ids and not (distances and distances[0] < 1e-4):
                missed.append(record)
        if len(missed) > max(1, len(offsets) // 4):
            problems.append(f"{len(missed)} of {len(offsets)} sampled records are not found by "
                            f"their own vector (e.g. {missed[0]}): the vector index is damaged: "
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
        damaged HNSW segment; vectors the index still gives back whole (finite, of
        norm 1) are kept, the others are embedded again from the text with ``embed``. With
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
            vectors, lost = (None, []) if new_embedder else self._readable_vectors(
                [r.id for r in page])
            if vectors is None:
                vectors, lost = np.asarray(embed(page), dtype=np.float32), list(range(len(page)))
            elif lost:
                vectors[lost] = np.asarray(embed([page[i] for i in lost]), dtype=np.float32)
            reembedded += len(lost)
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

    def _readable_vectors(self, ids: list[str]) -> tuple[np.ndarray | None, list[int]]:
        """The vectors of ``ids`` as the index gives them back (None when it cannot), and
        the positions of the damaged ones (see ``damaged_rows``), to embed again."""
        try:
            vectors = self.vectors_of(ids)
        except StoreError:
            return None, list(range(len(ids)))
        return vectors, [int(i) for i in np.flatnonzero(damaged_rows(vectors))]
