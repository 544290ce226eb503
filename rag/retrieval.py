"""Dense cross-lingual retrieval: sentences first, widened to the chunks they belong to.

Searching sentence vectors finds the exact supporting sentence (what the
extractive answerer quotes and the UI highlights); grouping hits by chunk gives
answerers enough context. Lexical signals are left out on purpose: on the
sample corpus BM25 over Polish/Romanian text cannot match English questions,
and equal-weight fusion lowered hit@1 (see docs/evaluation.md).

Why sentences and not chunks: measured on eval/dev.jsonl (60 answerable
questions, mostly English, over Polish/Romanian text), file-level hit@1 was
0.87 for sentence vectors against 0.63-0.87 for chunks of 400-64 tokens and
0.78 for sentence windows (see docs/evaluation.md, scripts/calibrate_decline.py).

Answerability: the best sentence's cosine similarity. With sentence-level
vectors it separates answerable from unanswerable dev questions well (AUC
0.98; with chunk vectors it is far weaker). A background-normalised z-score
was tried and separated worse (AUC 0.67). The threshold is per embedder,
because each model's cosine scale differs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rag.embedding import Embedder
from rag.store import Hit, Store
from rag.types import Passage

# Calibrated on eval/dev.jsonl with scripts/calibrate_decline.py: balanced accuracy 0.93.
# Other embedders have other cosine scales: set RAG_DECLINE_THRESHOLD for them.
SUPPORT_THRESHOLDS = {"e5:": 0.81}


def default_threshold(embedder_name: str) -> float:
    """The calibrated decline threshold for an embedder (0 = never decline on score)."""
    return next((t for prefix, t in SUPPORT_THRESHOLDS.items()
                 if embedder_name.startswith(prefix)), 0.0)


@dataclass
class ScoredSentence:
    text: str
    score: float
    chunk_id: str
    index: int


@dataclass
class Retrieval:
    passages: list[Passage]
    support: float  # answerability signal: the best sentence's cosine similarity
    sentences: dict[int, list[ScoredSentence]] = field(default_factory=dict)  # by passage n
    query_vector: np.ndarray | None = None


class Retriever:
    def __init__(self, store: Store, embedder: Embedder) -> None:
        self.store = store
        self.embedder = embedder

    def retrieve(self, question: str, top_k: int) -> Retrieval:
        query_vector = self.embedder.embed_queries([question])[0]
        hits = self.store.query(query_vector, n=max(30, top_k * 8))
        return self._group(hits, top_k, query_vector)

    def _group(self, hits: list[Hit], top_k: int, query_vector: np.ndarray) -> Retrieval:
        by_chunk: dict[str, list[Hit]] = {}
        for hit in hits:  # hits arrive best first, so dict order is chunk rank
            by_chunk.setdefault(hit.metadata["chunk_id"], []).append(hit)
        ranked = list(by_chunk.items())[:top_k]
        texts = self.store.chunk_sentences(
            {cid: chunk_hits[0].metadata.get("chunk_size") for cid, chunk_hits in ranked}
        )
        passages: list[Passage] = []
        sentences: dict[int, list[ScoredSentence]] = {}
        for n, (chunk_id, chunk_hits) in enumerate(ranked, start=1):
            best = chunk_hits[0]
            meta = best.metadata
            full = " ".join(t for _, t in texts.get(chunk_id, [])) or best.text
            passages.append(
                Passage(
                    n=n, chunk_id=chunk_id, source=meta.get("source", ""),
                    path=meta.get("path", ""), text=full, score=best.score,
                    language=meta.get("language", "und"), position=int(meta.get("chunk", 0)),
                    sentence=best.text,
                )
            )
            sentences[n] = [
                ScoredSentence(h.text, h.score, chunk_id, int(h.metadata.get("sentence", 0)))
                for h in chunk_hits
            ]
        top = hits[0].score if hits else float("-inf")
        return Retrieval(passages, top, sentences, query_vector)
