"""Ingestion throughput: our pipeline against a plain LlamaIndex one, same embedder and chunks."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.chunking import chunk_sentences, merge_short_sentences, split_sentences
from rag.config import Settings
from rag.embedding import Embedder
from rag.engine import Engine
from rag.ingest import length_sorted_batches
from rag.loading import load_document


@dataclass
class IngestRun:
    seconds: float
    chunks: int
    tokens: int

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds

    @property
    def chunks_per_s(self) -> float:
        return self.chunks / self.seconds


def ingest_ours(folder: Path, store_dir: Path, embedder: Embedder) -> IngestRun:
    engine = Engine(Settings(chroma_dir=str(store_dir)), embedder=embedder)
    report = engine.ingest([folder])
    if report.errors:
        raise RuntimeError(f"benchmark corpus had unreadable files: {report.errors[0]}")
    return IngestRun(report.seconds, report.chunks, report.tokens)


def llamaindex_embedding(embedder: Embedder) -> Any:
    """Our embedder behind LlamaIndex's ``BaseEmbedding``, as a user would wrap it."""
    from llama_index.core.embeddings import BaseEmbedding
    from pydantic import PrivateAttr

    class WrappedEmbedding(BaseEmbedding):
        _inner: Any = PrivateAttr()

        def __init__(self, inner: Embedder) -> None:
            super().__init__(model_name=inner.name)
            self._inner = inner

        def _get_query_embedding(self, query: str) -> list[float]:
            return self._inner.embed_queries([query])[0].tolist()

        async def _aget_query_embedding(self, query: str) -> list[float]:
            return self._get_query_embedding(query)

        def _get_text_embedding(self, text: str) -> list[float]:
            return self._inner.embed_passages([text])[0].tolist()

        def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
            return self._inner.embed_passages(texts).tolist()

    return WrappedEmbedding(embedder)


def ingest_llamaindex(folder: Path, store_dir: Path, embedder: Embedder) -> IngestRun:
    """The pipeline from LlamaIndex's Chroma docs, fed the very chunks our chunker makes.

    Same loader, same chunks, same embedder: the difference measured is how the
    chunks are embedded and written (LlamaIndex defaults: chunk vectors, batches
    of ``embed_batch_size=10``).
    """
    import chromadb
    from chromadb.config import Settings as ChromaSettings
    from llama_index.core import StorageContext, VectorStoreIndex
    from llama_index.core.schema import TextNode
    from llama_index.vector_stores.chroma import ChromaVectorStore

    embed_model = llamaindex_embedding(embedder)
    started = time.perf_counter()
    nodes, tokens = [], 0
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        doc = load_document(path, 10**9)
        sentences = merge_short_sentences(split_sentences(doc.text))
        for chunk in chunk_sentences(sentences, embedder.count_tokens):
            nodes.append(TextNode(text=chunk.text, metadata={"source": doc.source}))
            tokens += chunk.tokens
    client = chromadb.PersistentClient(
        path=str(store_dir), settings=ChromaSettings(anonymized_telemetry=False)
    )
    collection = client.get_or_create_collection("llamaindex", embedding_function=None)
    vector_store = ChromaVectorStore(chroma_collection=collection)
    storage = StorageContext.from_defaults(vector_store=vector_store)
    VectorStoreIndex(nodes, storage_context=storage, embed_model=embed_model)
    return IngestRun(time.perf_counter() - started, len(nodes), tokens)


def file_sentences(folder: Path) -> list[list[str]]:
    return [
        merge_short_sentences(split_sentences(load_document(p, 10**9).text))
        for p in sorted(folder.iterdir()) if p.is_file()
    ]


def embed_rate(embedder: Embedder, batches: list[list[str]]) -> float:
    """Model tokens per second embedding ``batches`` one call each."""
    tokens = sum(embedder.count_tokens(t) for batch in batches for t in batch)
    started = time.perf_counter()
    for batch in batches:
        embedder.embed_passages(batch)
    return tokens / (time.perf_counter() - started)


def embed_batching(embedder: Embedder, folder: Path, batch: int) -> dict[str, float]:
    """Before/after of batching: the same sentences one call per file, packed across
    files in document order, and packed after sorting by length (what ingest does)."""
    per_file = file_sentences(folder)
    flat = [s for sentences in per_file for s in sentences]
    packed = [flat[i : i + batch] for i in range(0, len(flat), batch)]
    tokens = sum(embedder.count_tokens(t) for t in flat)
    return {
        "per_file_tokens_per_s": embed_rate(embedder, per_file),
        "packed_tokens_per_s": embed_rate(embedder, packed),
        "packed_by_length_tokens_per_s": embed_rate(embedder, length_sorted_batches(flat, batch)),
        "sentences": len(flat),
        "mean_tokens": tokens / len(flat),
    }


def reingest_edited(folder: Path, store_dir: Path, embedder: Embedder) -> dict[str, float]:
    """Re-ingest after appending one sentence to every file: stored vectors are reused."""
    engine = Engine(Settings(chroma_dir=str(store_dir)), embedder=embedder)
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        with path.open("a", encoding="utf-8") as handle:
            handle.write(f"\nDopisek redakcji numer {path.stem}, dodany po publikacji.\n")
    report = engine.ingest([folder])
    return {"files": len(report.updated), "seconds": report.seconds}
