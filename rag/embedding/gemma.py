"""EmbeddingGemma-300M on onnxruntime (``rag.gemma``): ``gemma`` (the variant in
``RAG_EMBED_VARIANT``, default fast), ``gemma-exact`` (float32, sentence-transformers'
vectors) and ``gemma-fast`` (int8). The model is installed once with
``python -m rag.models install embeddinggemma-300m``; ``RAG_EMBED_MODEL`` may name
another EmbeddingGemma sentence-transformers folder instead."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rag.config import Settings
from rag.embedding import EmbedderError
from rag.gemma.pins import LICENSE
from rag.registry import Backend

OPTIONS = ("RAG_EMBED_VARIANT", "RAG_EMBED_MODEL", "RAG_EMBED_BATCH_SIZE", "RAG_EMBED_CACHE")
NOT_INSTALLED = ("EmbeddingGemma is not installed: run `python -m rag.models install "
                 "embeddinggemma-300m` (1.1 GB download), or set RAG_EMBEDDER=e5")


def installed() -> bool:
    """The model is installed in this environment (a cheap check: nothing is read)."""
    from rag.gemma import install_root
    from rag.gemma.install import is_installed, model_folder

    return is_installed(model_folder(install_root()))


def make_gemma_embedder(settings: Settings, variant: str = "") -> Any:
    """The thin glue from ``Settings`` to ``GemmaEmbedder``'s explicit parameters."""
    from rag.embedding.onnxrt.cache import cache_root
    from rag.embedding.onnxrt.session import SessionError, thread_count
    from rag.gemma import DEFAULT_VARIANT, NAME, install_root, onnx_folder
    from rag.gemma.builder import BuildError
    from rag.gemma.config import ModelFolderError
    from rag.gemma.embedder import GemmaEmbedder
    from rag.gemma.install import is_installed, model_folder
    from rag.gemma.safetensors import SafetensorsError

    installed = model_folder(install_root())
    model_dir = Path(settings.embed.model).expanduser() if settings.embed.model else installed
    if model_dir == installed and not is_installed(installed):
        raise EmbedderError(NOT_INSTALLED)
    cache = cache_root(NAME, settings.data_dir, settings.embed.cache)
    try:
        folder = onnx_folder(model_dir, variant or settings.embed.variant or DEFAULT_VARIANT,
                             cache)
        return GemmaEmbedder(model_dir, folder, NAME if model_dir == installed else
                             model_dir.name, threads=thread_count(),
                             batch_size=settings.embed.batch_size)
    except (BuildError, ModelFolderError, SafetensorsError, SessionError, OSError) as exc:
        raise EmbedderError(f"EmbeddingGemma: {exc}") from exc


BACKENDS = (
    Backend(name="gemma", options=OPTIONS, factory=make_gemma_embedder, license=LICENSE,
            aliases=("embeddinggemma",),
            description="EmbeddingGemma-300M on onnxruntime (the default once installed: "
                        "python -m rag.models install embeddinggemma-300m); variant from "
                        "RAG_EMBED_VARIANT (fast, the default, or exact)"),
    Backend(name="gemma-exact", options=OPTIONS[1:], license=LICENSE,
            factory=lambda settings: make_gemma_embedder(settings, "exact"),
            description="gemma with float32 weights: sentence-transformers' vectors, slower"),
    Backend(name="gemma-fast", options=OPTIONS[1:], license=LICENSE,
            factory=lambda settings: make_gemma_embedder(settings, "fast"),
            description="gemma with int8 weights: what `gemma` uses by default"),
)
