"""Embedding backends behind one small interface.

Retrieval quality across languages depends on using the model's query and
passage roles (multilingual-e5 expects ``query: `` / ``passage: `` prefixes), so
the interface has separate ``embed_queries`` and ``embed_passages`` calls and
every backend decides how to express the role.

Each backend is a module of this package that declares ``BACKENDS`` (see
``rag.registry``); ``make_embedder`` builds the one the settings name, once per
process. ``rag backends`` lists them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from rag.config import Settings


class EmbedderError(RuntimeError):
    """The embedder could not be created or failed to embed; message is one line."""


class Embedder(Protocol):
    name: str  # recorded in the collection; a query with another embedder is refused
    dim: int

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        """Return an (n, dim) float32 array of L2-normalised passage vectors."""
        ...

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Return an (n, dim) float32 array of L2-normalised query vectors."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens the model sees for ``text``; chunk sizes are measured with this."""
        ...


def normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim == 1:
        vectors = vectors[None, :]
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return vectors / norms


_CACHE: dict[tuple[str, ...], Embedder] = {}


def default_embedder() -> str:
    """The embedder used when ``RAG_EMBEDDER`` is empty: EmbeddingGemma once installed,
    else the bundled e5 (so a failed or skipped install still runs, on e5)."""
    from rag.config import DEFAULT_EMBEDDER, FALLBACK_EMBEDDER
    from rag.embedding.gemma import installed

    return DEFAULT_EMBEDDER if installed() else FALLBACK_EMBEDDER


def chosen_embedder(settings: Settings) -> str:
    """The embedder name the settings choose (the default rule when none is set)."""
    return settings.embedder or default_embedder()


def make_embedder(settings: Settings) -> Embedder:
    """Build (once per process) the embedder that the settings name."""
    from rag.registry import EMBEDDERS

    try:
        backend = EMBEDDERS.get(chosen_embedder(settings))
    except ValueError as exc:
        raise EmbedderError(str(exc)) from exc
    key = (backend.name, settings.embed.model, settings.embed.base_url, settings.embed.variant,
           settings.embed.cache)
    if key not in _CACHE:
        _CACHE[key] = backend.factory(settings)
    return _CACHE[key]
