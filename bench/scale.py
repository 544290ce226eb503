"""Scale: build a store of N chunks in a fresh process and measure time, size, memory, queries.

Run as ``python -m rag.bench.scale --chunks N --store DIR`` (``rag bench`` does it for
each size) so peak memory is this store's alone. Texts are synthetic mixes of
corpus sentences written through the real ingest path (``prepare_file`` +
``FileBatcher``: chunking, records, batched Chroma writes); their vectors are
composed from the real vectors of the corpus sentences they mix, because
embedding 300k sentences for real would take hours on 2 cores. The embedder's
own throughput is measured separately by ``rag bench``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import resource
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from rag.bench.corpus import SentenceMixer, as_paragraphs, corpus_sentences, mixed_vector
from rag.bench.latency import dev_questions, percentiles

from rag.chunking import DEFAULT_CHUNK_TOKENS
from rag.config import Settings
from rag.embedding import make_embedder
from rag.engine import Engine
from rag.ingest import EMBED_BATCH_SENTENCES, FileBatcher, IngestReport, prepare_file
from rag.loading import LoadedDocument

SENTENCES_PER_FILE = 300  # about 100 chunks of the default 160-token budget


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def reset_peak_rss() -> None:
    """Start the peak-RSS count afresh (Linux), so the setup's peak does not hide the ingest's."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def peak_rss_mb() -> float:
    """Peak RSS since the last reset (VmHWM); ru_maxrss where /proc is missing."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def folder_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def stable_parts(text: str, n: int) -> tuple[int, int, int]:
    digest = hashlib.sha1(text.encode()).digest()
    a, b, c = (int.from_bytes(digest[i : i + 4], "big") % n for i in (0, 4, 8))
    return a, b, c


def build_store(chunks: int, store_dir: Path, queries: int) -> dict[str, object]:
    embedder = make_embedder(Settings())  # the configured (default) embedder
    sentences = corpus_sentences()
    texts = [s.text for s in sentences]
    part_vectors = np.concatenate([
        embedder.embed_passages(texts[i : i + EMBED_BATCH_SENTENCES])
        for i in range(0, len(texts), EMBED_BATCH_SENTENCES)
    ])
    mixer = SentenceMixer(sentences, seed=chunks)
    n_parts = len(sentences)
    engine = Engine(Settings(chroma_dir=str(store_dir)), embedder=embedder)
    engine.store.open(embedder.name, embedder.dim, create=True)
    report = IngestReport()
    batcher = FileBatcher(engine.store, embedder, report)
    reset_peak_rss()
    rss_curve: list[tuple[int, float]] = [(0, rss_mb())]
    started = time.perf_counter()
    file_no = 0
    while report.chunks + sum(f.manifest.chunks for f in batcher.pending) < chunks:
        mixed = list(mixer.sentences(SENTENCES_PER_FILE))
        text = as_paragraphs([t for t, _ in mixed])
        doc = LoadedDocument(
            path=store_dir.parent / "synthetic" / f"synthetic_{file_no:06d}.txt",
            source=f"synthetic_{file_no:06d}.txt", text=text,
            content_hash=hashlib.sha256(text.encode()).hexdigest(),
        )
        known = {t: mixed_vector(part_vectors, parts) for t, parts in mixed}
        prepared = prepare_file(doc, embedder, DEFAULT_CHUNK_TOKENS, known)
        for record in prepared.records:  # the splitter may cut a mixed sentence differently
            if record.text not in known:
                known[record.text] = mixed_vector(part_vectors, stable_parts(record.text, n_parts))
        batcher.add(prepared)
        file_no += 1
        if file_no % 10 == 0:
            rss_curve.append((report.chunks, rss_mb()))
    batcher.flush()
    ingest_s = time.perf_counter() - started
    rss_curve.append((report.chunks, rss_mb()))
    ingest_peak_mb = peak_rss_mb()

    questions = dev_questions()
    engine.ask(questions[0])  # warm-up: opens the index
    latencies = []
    for i in range(queries):
        t0 = time.perf_counter()
        engine.ask(questions[i % len(questions)])
        latencies.append((time.perf_counter() - t0) * 1000)
    query = percentiles(latencies)
    return {
        "chunks": report.chunks,
        "sentences": report.sentences,
        "ingest_s": ingest_s,
        "store_mb": folder_mb(store_dir),
        "peak_rss_mb": ingest_peak_mb,
        "rss_curve_mb": rss_curve,
        "query_p50_ms": query["p50_ms"],
        "query_p95_ms": query["p95_ms"],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rag.bench.scale")
    parser.add_argument("--chunks", type=int, required=True)
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--queries", type=int, default=100)
    args = parser.parse_args(argv)
    print(json.dumps(build_store(args.chunks, args.store, args.queries)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
