"""The machine's ceiling for the embedder: float32 matmul rate / model FLOPs per token."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class EncoderShape:
    """Per layer: the weights of the attention projections and of the feed-forward
    matrices, and the width attention runs at (query heads x head size)."""

    layers: int
    attention_params: int
    ffn_params: int
    attention_width: int

    @classmethod
    def bert(cls, layers: int, hidden: int, ffn: int) -> EncoderShape:
        return cls(layers, 4 * hidden * hidden, 2 * hidden * ffn, hidden)


# multilingual-e5-small (XLM-R tokenizer, BERT-small encoder)
E5_SMALL = EncoderShape.bert(layers=12, hidden=384, ffn=1536)
# EmbeddingGemma-300M: q 768->768, k and v 768->256, o 768->768; gated FFN 3 x 768x1152
GEMMA_300M = EncoderShape(layers=24, attention_params=2 * 768 * 768 + 2 * 768 * 256,
                          ffn_params=3 * 768 * 1152, attention_width=768)


def shape_for(embedder_name: str) -> EncoderShape:
    """The encoder an embedder runs (by its recorded name); e5's for the e5 family."""
    return GEMMA_300M if embedder_name.startswith("gemma") else E5_SMALL


def flops_per_token(shape: EncoderShape, seq_len: float) -> float:
    """Forward-pass FLOPs per token: the projection and FFN matmuls plus attention over
    ``seq_len`` (QK^T and the attention-weighted V)."""
    dense = 2 * (shape.attention_params + shape.ffn_params)
    attention = 2 * 2 * seq_len * shape.attention_width
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
