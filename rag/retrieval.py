"""Dense cross-lingual retrieval: sentences first, widened to the chunks they belong to.

Searching sentence vectors finds the exact supporting sentence (what the
extractive answerer quotes and the UI highlights); grouping hits by chunk gives
answerers enough context. Lexical signals are left out on purpose: on the
sample corpus BM25 over Polish/Romanian text cannot match English questions,
and equal-weight fusion lowered hit@1 (see docs/evaluation.md).

Why sentences and not chunks: measured on eval/dev.jsonl (60 answerable
questions, mostly English, over Polish/Romanian text), file-level hit@1 was
0.87 for sentence vectors against 0.63-0.87 for chunks of 400-64 tokens and
0.78 for sentence windows (see docs/evaluation.md).

Pseudo-relevance feedback (issue 11): the query vector is moved towards the
mean of its three best sentences and the store is searched again. It costs a
second Chroma query, not a second embedding, and raised file-level hit@1 on
the paraphrased dev questions with e5 (docs/evaluation.md); with EmbeddingGemma
it lowered them (dev top-cited 0.858 without, 0.821 at 0.3), so its weight is per
embedder (``PRF_WEIGHTS``); ``prf_weight=0`` turns it off.

Answerability: for e5 and Gemma, a probability calibrated per embedder on the dev
split (rag.answerability, today from the best cosine alone: the other signals
measured did not help); other embedders keep the best sentence's cosine, since each
model's cosines have their own scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rag import answerability
from rag.answering.extractive import quotable
from rag.embedding import Embedder
from rag.store import Hit, Store
from rag.types import Passage

# Feedback weight by embedder-name prefix (measured on dev, docs/evaluation.md); others 0.3.
PRF_WEIGHTS = {"e5:": 0.3, "gemma:": 0.0}
PRF_WEIGHT, PRF_DOCS = 0.3, 3
# The "not stated" band's upper end: support from the decline threshold up to this gets
# the closest passages marked as not an answer. Chosen on the dev split
# (eval/calibrate_answerability.py); an embedder without one has no band.
STATED_THRESHOLDS: dict[str, float] = {}


def _for_embedder(table: dict[str, float], embedder_name: str) -> float:
    return next((t for prefix, t in table.items() if embedder_name.startswith(prefix)), 0.0)


def default_threshold(embedder_name: str) -> float:
    """The calibrated decline threshold for an embedder (0 = never decline on score).

    Embedders without a calibrated model have other cosine scales: set
    RAG_DECLINE_THRESHOLD for them."""
    model = answerability.model_for(embedder_name)
    return model.threshold if model is not None else 0.0


def default_stated_threshold(embedder_name: str) -> float:
    """Support below this (and above the decline threshold) is "not stated" (0: no band)."""
    return _for_embedder(STATED_THRESHOLDS, embedder_name)


def prf_weight_for(embedder_name: str) -> float:
    """The pseudo-relevance feedback weight measured best on dev for this embedder."""
    return next((w for prefix, w in PRF_WEIGHTS.items() if embedder_name.startswith(prefix)),
                PRF_WEIGHT)


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm else vector


@dataclass
class Retrieval:
    passages: list[Passage]
    support: float  # answerability: e5's calibrated probability, else the best cosine


class Retriever:
    def __init__(
        self, store: Store, embedder: Embedder, prf_weight: float | None = None,
        prf_docs: int = PRF_DOCS, model: answerability.Model | None = None,
    ) -> None:
        """``prf_weight``/``model`` None: the ones measured for this embedder."""
        self.store = store
        self.embedder = embedder
        name = str(getattr(embedder, "name", ""))
        self.prf_weight = prf_weight_for(name) if prf_weight is None else prf_weight
        self.prf_docs = prf_docs
        self.model = model if model is not None else answerability.model_for(name)

    def retrieve(self, question: str, top_k: int) -> Retrieval:
        query_vector = self.embedder.embed_queries([question])[0]
        return self.retrieve_vector(question, query_vector, top_k)

    def search(self, query_vector: np.ndarray, top_k: int) -> tuple[list[Hit], list[Hit]]:
        """(hits of the plain query, hits after pseudo-relevance feedback), best first."""
        n = max(30, top_k * 8)
        hits = self.store.query(query_vector, n=n)
        if self.prf_weight <= 0 or not hits:
            return hits, hits
        feedback = self.store.vectors_of([h.id for h in hits[: self.prf_docs]])
        if not len(feedback):
            return hits, hits
        expanded = _unit(query_vector + self.prf_weight * feedback.mean(axis=0))
        return hits, self.store.query(expanded, n=n)

    def retrieve_vector(
        self, question: str, query_vector: np.ndarray, top_k: int,
        hits: tuple[list[Hit], list[Hit]] | None = None,
    ) -> Retrieval:
        """Retrieval for an embedded question; ``hits`` when ``search`` already ran."""
        plain, ranked = hits or self.search(query_vector, top_k)
        retrieval = self._group(ranked, top_k)
        retrieval.support = self.support(question, plain, ranked)
        return retrieval

    def support(self, question: str, plain: list[Hit], ranked: list[Hit]) -> float:
        """The answerability signal: the model's probability, or the best cosine without one."""
        best = plain[0].score if plain else float("-inf")
        if self.model is None or not ranked:
            return best
        cosine = {h.id: h.score for h in plain}
        rows = [(h.text, h.score, str(h.metadata.get("source", "")), cosine.get(h.id, h.score))
                for h in ranked]
        return self.model.probability(answerability.features(question, rows, best))

    def _group(self, hits: list[Hit], top_k: int) -> Retrieval:
        by_chunk: dict[str, list[Hit]] = {}
        for hit in hits:  # hits arrive best first, so dict order is chunk rank
            by_chunk.setdefault(hit.metadata["chunk_id"], []).append(hit)
        ranked = list(by_chunk.items())[:top_k]
        texts = self.store.chunk_sentences(
            {cid: chunk_hits[0].metadata.get("chunk_size") for cid, chunk_hits in ranked}
        )
        passages: list[Passage] = []
        for n, (chunk_id, chunk_hits) in enumerate(ranked, start=1):
            # the sentence to quote: the best one that is not a headline or a link
            best = next((h for h in chunk_hits if quotable(h.text)), chunk_hits[0])
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
        top = hits[0].score if hits else float("-inf")
        return Retrieval(passages, top)
