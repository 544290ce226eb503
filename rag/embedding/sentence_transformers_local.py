"""Any local sentence-transformers model folder (optional extra, pulls torch); never
touches a model hub."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from rag.embedding import EmbedderError, normalise
from rag.registry import Backend


class SentenceTransformerEmbedder:
    """A sentence-transformers model from a local folder (or the offline cache).

    The model's own prompts are used for roles when it defines ``query``/``passage``
    prompts; otherwise texts are embedded as they are.
    """

    def __init__(self, model: str, batch_size: int = 32) -> None:
        if not model:
            raise EmbedderError(
                "RAG_EMBED_MODEL must name a local sentence-transformers model folder"
            )
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise EmbedderError(
                "the sentence-transformers embedder needs the optional extra: "
                "pip install -e '.[st]'"
            ) from exc
        try:
            # local_files_only: a missing folder is an error here, never a hub download.
            self._model = SentenceTransformer(model, device="cpu", local_files_only=True)
        except Exception as exc:  # noqa: BLE001 - library raises many types
            raise EmbedderError(
                f"cannot load sentence-transformers model {model!r}: {exc}"
            ) from exc
        self._batch = batch_size
        get_dim = getattr(self._model, "get_embedding_dimension", None) or (
            self._model.get_sentence_embedding_dimension
        )
        self.dim = int(get_dim())
        label = os.path.basename(os.path.normpath(model)) or model
        self.name = f"sentence-transformers:{label}"
        prompts = getattr(self._model, "prompts", {}) or {}
        self._query_prompt = "query" if "query" in prompts else None
        self._passage_prompt = next((p for p in ("passage", "document") if p in prompts), None)

    def _encode(self, texts: Sequence[str], prompt_name: str | None) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(
            list(texts),
            batch_size=self._batch,
            prompt_name=prompt_name,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return normalise(vectors)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self._passage_prompt)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self._query_prompt)

    def count_tokens(self, text: str) -> int:
        return len(self._model.tokenizer(text)["input_ids"])


BACKENDS = (
    Backend(
        name="sentence-transformers",
        description="a local sentence-transformers model folder (pip install -e '.[st]')",
        factory=lambda s: SentenceTransformerEmbedder(s.embed.model, s.embed.batch_size),
        options=("RAG_EMBED_MODEL", "RAG_EMBED_BATCH_SIZE"),
        aliases=("st", "sentence_transformers"),
    ),
)
