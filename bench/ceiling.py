"""The machine's ceiling for the embedder: float32 matmul rate / model FLOPs per token."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class EncoderShape:
    layers: int
    hidden: int
    ffn: int


# multilingual-e5-small (XLM-R tokenizer, BERT-small encoder)
E5_SMALL = EncoderShape(layers=12, hidden=384, ffn=1536)


def flops_per_token(shape: EncoderShape, seq_len: float) -> float:
    """Forward-pass FLOPs per token: Q/K/V/O and FFN matmuls plus attention over ``seq_len``."""
    dense = 2 * (4 * shape.hidden * shape.hidden + 2 * shape.hidden * shape.ffn)
    attention = 2 * 2 * seq_len * shape.hidden  # QK^T and attention-weighted V
    return shape.layers * (dense + attention)


def matmul_gflops(size: int = 1024, seconds: float = 2.0) -> float:
    """Best float32 GEMM rate seen on all cores (numpy's BLAS) over ``seconds``."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    a @ b  # warm-up: thread pool start, page faults
    best = 0.0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        a @ b
        best = max(best, 2 * size**3 / (time.perf_counter() - start))
    return best / 1e9


def ceiling_tokens_per_s(gflops: float, seq_len: float, shape: EncoderShape = E5_SMALL) -> float:
    return gflops * 1e9 / flops_per_token(shape, seq_len)
