"""EmbeddingGemma's encoder as an ONNX graph, written from the safetensors, no torch.

The graph takes ``inputs_embeds`` (the scaled word embeddings, read by the embedder
from the 805 MB table row by row, so the graph holds only the 24 layers) and
``attention_mask``, and returns ``last_hidden_state`` after the final norm; pooling and
the Dense layers run in numpy (``embedder.py``). Gemma 3's layer,
with onnxruntime's fused contrib ops:

- RMSNorm is ``x * (1 + w)``: ``SimplifiedLayerNormalization`` with ``1 + w``; the
  post-attention/post-feed-forward norm, the residual add and the next pre-norm are
  one ``SkipSimplifiedLayerNormalization``;
- q/k/v in one MatMul; per-head RMSNorm on q and k; ``RotaryEmbedding`` (rotate-half,
  theta 1e6 on full layers, 1e4 on sliding ones); the single key/value head repeated
  for the three query heads; ``MultiHeadAttention`` with scale
  ``query_pre_attn_scalar ** -0.5``, the padding mask, and on sliding layers an additive
  band mask: token i sees token j only when ``|i - j| <= sliding_window // 2`` (256),
  as transformers does for a bidirectional Gemma (its config turns 512 into an
  exclusive 257), so texts up to ``max_positions`` tokens are exact, not only those
  shorter than the window;
- gate and up projections in one MatMul, ``FastGelu`` (tanh) on the gate.

Variants: ``exact`` keeps float32 weights (vectors match sentence-transformers'); ``fast``
has int8 weights (cosine to exact 0.955-0.99 on the corpus sentences, twice as fast).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from rag.embedding.onnxrt.graph import MS_DOMAIN, Graph
from rag.gemma.config import GemmaConfig
from rag.gemma.safetensors import Tensors

MODEL_FILE = "model.onnx"
META_FILE = "meta.json"
MASKED = -1e9  # added to a logit outside the sliding window (exp underflows to 0)

# Weight formats per group of matrices: "fp32" or "int8" (per output channel, activations
# quantised per tensor at run time: DynamicQuantizeMatMul). Measured and dropped
# (docs/performance.md): MatMulNBits 8-bit and 4-bit blocks (slower here), float32 or
# 8-bit blocks for the down projection alone (closer to float32, slower, no better on dev).
GROUPS = ("qkv", "o", "gate_up", "down")
EXACT = dict.fromkeys(GROUPS, "fp32")
FAST = dict.fromkeys(GROUPS, "int8")
RECIPES = {"exact": EXACT, "fast": FAST}


class BuildError(RuntimeError):
    """The graph could not be built; the message is one line."""


def linear(g: Graph, x: str, w: np.ndarray, fmt: str) -> str:
    """``x @ w.T`` for a bias-free (out, in) weight in the format ``fmt``."""
    if fmt == "fp32":
        return g.op("MatMul", [x, g.const(np.ascontiguousarray(w.T, dtype=np.float32), "w")])
    if fmt == "int8":
        return g.int8_matmul(x, w)
    raise BuildError(f"unknown weight format {fmt!r}")


class _Builder:
    def __init__(self, cfg: GemmaConfig, weights: Tensors, recipe: dict[str, str]) -> None:
        self.cfg, self.w, self.recipe = cfg, weights, recipe
        self.g = Graph()

    def tensor(self, name: str) -> np.ndarray:
        return np.asarray(self.w.get(name), dtype=np.float32)

    def gamma(self, name: str) -> str:
        return self.g.const(1.0 + self.tensor(name), "gamma")

    def norm(self, x: str, weight: str) -> str:
        return self.g.op("SimplifiedLayerNormalization", [x, self.gamma(weight)], axis=-1,
                         epsilon=self.cfg.eps)

    def skip_norm(self, x: str, skip: str, weight: str) -> tuple[str, str]:
        """(norm(x + skip), x + skip): the residual add fused with the next pre-norm."""
        out, _, _, total = self.g.ops("SkipSimplifiedLayerNormalization",
                                      [x, skip, self.gamma(weight)], 4, domain=MS_DOMAIN,
                                      epsilon=self.cfg.eps)
        return out, total

    def rope_caches(self, theta: float) -> tuple[str, str]:
        dim = self.cfg.head_dim
        inv = (1.0 / (theta ** (np.arange(0, dim, 2, dtype=np.int64).astype(np.float32) / dim)))
        freqs = np.arange(self.cfg.max_positions, dtype=np.float32)[:, None] * inv.astype(
            np.float32)[None, :]
        return (self.g.const(np.cos(freqs).astype(np.float32), "cos"),
                self.g.const(np.sin(freqs).astype(np.float32), "sin"))

    def head_norm(self, x: str, heads: int, weight: str) -> str:
        """RMSNorm of each head of (batch, seq, heads * head_dim)."""
        g, dim = self.g, self.cfg.head_dim
        split = g.op("Reshape", [x, g.const(np.array([0, 0, heads, dim]), "shape")])
        normed = self.norm(split, weight)
        return g.op("Reshape", [normed, g.const(np.array([0, 0, heads * dim]), "shape")])

    def layer(self, i: int, h: str, x: str, mask: str, band: str, pos: str,
              rope: tuple[str, str], next_norm: str) -> tuple[str, str]:
        """One decoder layer on pre-normed ``h`` and residual ``x``; returns the next pair."""
        cfg, g, p = self.cfg, self.g, f"layers.{i}."
        q_dim, kv_dim = cfg.heads * cfg.head_dim, cfg.kv_heads * cfg.head_dim
        qkv_w = np.concatenate([self.tensor(p + f"self_attn.{n}_proj.weight") for n in "qkv"])
        qkv = linear(g, h, qkv_w, self.recipe["qkv"])
        q, k, v = g.ops("Split", [qkv, g.const(np.array([q_dim, kv_dim, kv_dim]), "sizes")],
                        3, axis=-1)
        q = self.head_norm(q, cfg.heads, p + "self_attn.q_norm.weight")
        k = self.head_norm(k, cfg.kv_heads, p + "self_attn.k_norm.weight")
        q = g.op("RotaryEmbedding", [q, pos, *rope], domain=MS_DOMAIN, num_heads=cfg.heads,
                 interleaved=0)
        k = g.op("RotaryEmbedding", [k, pos, *rope], domain=MS_DOMAIN, num_heads=cfg.kv_heads,
                 interleaved=0)
        repeat = cfg.heads // cfg.kv_heads
        if repeat > 1:  # grouped-query attention: each key/value head serves `repeat` heads
            k, v = (self._repeat_heads(t, cfg.kv_heads, repeat) for t in (k, v))
        ctx = g.op("MultiHeadAttention", [q, k, v, "", mask, *([band] if band else [])],
                   domain=MS_DOMAIN,
                   num_heads=cfg.heads, scale=cfg.query_scale, mask_filter_value=MASKED)
        attn = linear(g, ctx, self.tensor(p + "self_attn.o_proj.weight"), self.recipe["o"])
        attn = self.norm(attn, p + "post_attention_layernorm.weight")
        h, x = self.skip_norm(attn, x, p + "pre_feedforward_layernorm.weight")
        gate_up = np.concatenate([self.tensor(p + "mlp.gate_proj.weight"),
                                  self.tensor(p + "mlp.up_proj.weight")])
        gu = linear(g, h, gate_up, self.recipe["gate_up"])
        gate, up = g.ops("Split", [gu], 2, axis=-1, num_outputs=2)
        mid = g.op("Mul", [g.op("FastGelu", [gate], domain=MS_DOMAIN), up])
        out = linear(g, mid, self.tensor(p + "mlp.down_proj.weight"), self.recipe["down"])
        out = self.norm(out, p + "post_feedforward_layernorm.weight")
        return self.skip_norm(out, x, next_norm)

    def _repeat_heads(self, t: str, heads: int, repeat: int) -> str:
        g, dim = self.g, self.cfg.head_dim
        if heads == 1:
            return g.op("Concat", [t] * repeat, axis=-1)
        split = g.op("Reshape", [t, g.const(np.array([0, 0, heads, 1, dim]), "shape")])
        tiled = g.op("Tile", [split, g.const(np.array([1, 1, 1, repeat, 1]), "reps")])
        return g.op("Reshape", [tiled, g.const(np.array([0, 0, heads * repeat * dim]), "shape")])

    def positions_and_band(self) -> tuple[str, str, str]:
        """Position ids (batch, seq), the int32 padding mask, and the sliding band bias."""
        from onnx import TensorProto

        g = self.g
        shape = g.op("Shape", ["attention_mask"])
        seq = g.op("Gather", [shape, g.const(np.array(1), "one")], axis=0)
        idx = g.op("Range", [g.const(np.array(0), "zero"), seq, g.const(np.array(1), "step")])
        pos = g.op("Expand", [g.op("Unsqueeze", [idx, g.const(np.array([0]), "ax")]), shape])
        mask = g.op("Cast", ["attention_mask"], to=TensorProto.INT32)
        row = g.op("Unsqueeze", [idx, g.const(np.array([1]), "ax")])
        col = g.op("Unsqueeze", [idx, g.const(np.array([0]), "ax")])
        far = g.op("Greater", [g.op("Abs", [g.op("Sub", [row, col])]),
                               g.const(np.array(self.cfg.sliding_window // 2), "reach")])
        bias = g.op("Where", [far, g.const(np.array(MASKED, np.float32), "masked"),
                              g.const(np.array(0.0, np.float32), "open")])
        band = g.op("Unsqueeze", [bias, g.const(np.array([0, 1]), "ax")])  # (1, 1, seq, seq)
        return pos, mask, band

    def build(self, name: str) -> Any:  # onnx.ModelProto
        from onnx import TensorProto, helper

        cfg, g = self.cfg, self.g
        pos, mask, band = self.positions_and_band()
        ropes = {True: self.rope_caches(cfg.rope_local), False: self.rope_caches(cfg.rope_global)}
        x = "inputs_embeds"
        h = self.norm(x, "layers.0.input_layernorm.weight")
        for i in range(cfg.layers):
            last = i == cfg.layers - 1
            next_norm = "norm.weight" if last else f"layers.{i + 1}.input_layernorm.weight"
            h, x = self.layer(i, h, x, mask, band if cfg.sliding[i] else "", pos,
                              ropes[cfg.sliding[i]], next_norm)
        g.nodes.append(helper.make_node("Identity", [h], ["last_hidden_state"]))
        return g.model(
            name,
            [helper.make_tensor_value_info("inputs_embeds", TensorProto.FLOAT,
                                           ["batch", "seq", cfg.hidden]),
             helper.make_tensor_value_info("attention_mask", TensorProto.INT64,
                                           ["batch", "seq"])],
            [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT,
                                           ["batch", "seq", cfg.hidden])],
            producer="rag.gemma")


def build_graph(folder: Path, recipe: dict[str, str], name: str = "embeddinggemma") -> Any:
    """The encoder graph of the model in ``folder`` with the weight formats of ``recipe``."""
    return _Builder(GemmaConfig.read(folder), Tensors(folder / "model.safetensors"),
                    recipe).build(name)


def write_folder(source: Path, variant: str, folder: Path, extra: dict[str, Any]) -> None:
    """``model.onnx`` (its weights in ``model.onnx.data``), the tokenizer's added-token
    splits and ``meta.json`` (written last: the folder is complete once it is there)."""
    import onnx

    from rag.gemma.tokenizer import SPLITS_FILE, find_splits

    model = build_graph(source, RECIPES[variant], f"embeddinggemma-{variant}")
    (folder / SPLITS_FILE).write_text(json.dumps(find_splits(source), ensure_ascii=False),
                                      encoding="utf-8")
    onnx.save_model(model, str(folder / MODEL_FILE), save_as_external_data=True,
                    all_tensors_to_one_file=True, location=MODEL_FILE + ".data",
                    size_threshold=1024)
    meta = {"variant": variant, "recipe": RECIPES[variant], "source": str(source),
            **extra}
    (folder / META_FILE).write_text(json.dumps(meta, indent=1), encoding="utf-8")
