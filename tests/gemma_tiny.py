"""A tiny EmbeddingGemma-shaped sentence-transformers folder with random weights, and an
independent numpy forward pass to check the ONNX graph against (no torch).

Three layers (sliding, sliding, full) with a sliding window of 8 (tokens 4 apart still
see each other), 3 query heads sharing 1 key/value head, 24 positions per window, a
SentencePiece model trained on the sample corpus. Wiring tests use it so that they
neither need the 1.2 GB model nor load it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from rag.config import DEFAULT_CORPUS

HIDDEN, LAYERS, HEADS, HEAD_DIM, FFN, DENSE = 32, 3, 3, 16, 48, 64
WINDOW, POSITIONS = 8, 24
TYPES = ["sliding_attention", "sliding_attention", "full_attention"]
PROMPTS = {"query": "task: search result | query: ", "document": "title: none | text: "}


def write_safetensors(path: Path, tensors: dict[str, np.ndarray]) -> None:
    """The safetensors layout: header length, JSON header, raw little-endian bytes."""
    header, blobs, offset = {}, [], 0
    for name, array in tensors.items():
        data = np.ascontiguousarray(array, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    raw = json.dumps(header).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + b"".join(blobs))


def _tokenizer(folder: Path) -> int:
    import sentencepiece

    text = folder / "train.txt"
    lines = [line.strip() for p in sorted(DEFAULT_CORPUS.glob("*.txt"))
             for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
    text.write_text("\n".join([*lines, *PROMPTS.values()]), encoding="utf-8")
    sentencepiece.SentencePieceTrainer.train(
        input=str(text), model_prefix=str(folder / "tokenizer"), vocab_size=800,
        model_type="bpe", pad_id=0, eos_id=1, bos_id=2, unk_id=3, byte_fallback=True,
        character_coverage=1.0, minloglevel=2)
    text.unlink()
    (folder / "tokenizer.vocab").unlink()
    return sentencepiece.SentencePieceProcessor(
        model_file=str(folder / "tokenizer.model")).get_piece_size()


def write_tiny_model(folder: Path, seed: int = 0) -> Path:
    """Write the folder (config, modules, random weights, tokenizer); returns it."""
    folder.mkdir(parents=True, exist_ok=True)
    vocab = _tokenizer(folder)
    config = {
        "architectures": ["Gemma3TextModel"], "hidden_size": HIDDEN, "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS, "num_key_value_heads": 1, "head_dim": HEAD_DIM,
        "intermediate_size": FFN, "rms_norm_eps": 1e-6, "sliding_window": WINDOW,
        "layer_types": TYPES, "rope_theta": 1e6, "rope_local_base_freq": 1e4,
        "query_pre_attn_scalar": HEAD_DIM, "max_position_embeddings": POSITIONS,
        "vocab_size": vocab, "use_bidirectional_attention": True,
        "hidden_activation": "gelu_pytorch_tanh"}
    files = {
        "config.json": config,
        "modules.json": [
            {"idx": i, "name": str(i), "path": path, "type": f"sentence_transformers.models.{kind}"}
            for i, (path, kind) in enumerate([("", "Transformer"), ("1_Pooling", "Pooling"),
                                              ("2_Dense", "Dense"), ("3_Dense", "Dense"),
                                              ("4_Normalize", "Normalize")])],
        "1_Pooling/config.json": {"pooling_mode_mean_tokens": True, "include_prompt": True},
        "2_Dense/config.json": {"in_features": HIDDEN, "out_features": DENSE, "bias": False,
                                "activation_function": "torch.nn.modules.linear.Identity"},
        "3_Dense/config.json": {"in_features": DENSE, "out_features": HIDDEN, "bias": False,
                                "activation_function": "torch.nn.modules.linear.Identity"},
        "sentence_bert_config.json": {"max_seq_length": POSITIONS},
        "config_sentence_transformers.json": {"prompts": PROMPTS},
    }
    for name, content in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(json.dumps(content), encoding="utf-8")
    rng = np.random.default_rng(seed)

    def w(*shape: int, scale: float = 0.2) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    weights = {"embed_tokens.weight": w(vocab, HIDDEN, scale=0.1), "norm.weight": w(HIDDEN)}
    for i in range(LAYERS):
        p = f"layers.{i}."
        weights.update({
            p + "self_attn.q_proj.weight": w(HEADS * HEAD_DIM, HIDDEN),
            p + "self_attn.k_proj.weight": w(HEAD_DIM, HIDDEN),
            p + "self_attn.v_proj.weight": w(HEAD_DIM, HIDDEN),
            p + "self_attn.o_proj.weight": w(HIDDEN, HEADS * HEAD_DIM),
            p + "self_attn.q_norm.weight": w(HEAD_DIM), p + "self_attn.k_norm.weight": w(HEAD_DIM),
            p + "mlp.gate_proj.weight": w(FFN, HIDDEN), p + "mlp.up_proj.weight": w(FFN, HIDDEN),
            p + "mlp.down_proj.weight": w(HIDDEN, FFN),
            **{p + f"{n}_layernorm.weight": w(HIDDEN) for n in
               ("input", "post_attention", "pre_feedforward", "post_feedforward")}})
    write_safetensors(folder / "model.safetensors", weights)
    write_safetensors(folder / "2_Dense/model.safetensors", {"linear.weight": w(DENSE, HIDDEN)})
    write_safetensors(folder / "3_Dense/model.safetensors", {"linear.weight": w(HIDDEN, DENSE)})
    return folder


def _rms(x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + 1e-6) * (1.0 + weight)


def _rope(x: np.ndarray, theta: float) -> np.ndarray:
    """Rotate-half rotary embedding of (heads, seq, dim), positions 0..seq-1."""
    dim = x.shape[-1]
    inv = 1.0 / theta ** (np.arange(0, dim, 2) / dim)
    angles = np.arange(x.shape[1])[:, None] * inv[None, :]
    cos, sin = np.cos(np.concatenate([angles] * 2, -1)), np.sin(np.concatenate([angles] * 2, -1))
    half = dim // 2
    rotated = np.concatenate([-x[..., half:], x[..., :half]], -1)
    return x * cos + rotated * sin


def reference_mean(folder: Path, ids: list[int]) -> np.ndarray:
    """The tiny model's last hidden state averaged over one window's tokens (float64)."""
    from rag.gemma.safetensors import Tensors

    t = Tensors(folder / "model.safetensors")

    def get(name: str) -> np.ndarray:
        return np.asarray(t.get(name), dtype=np.float64)

    x = get("embed_tokens.weight")[ids] * np.float32(math.sqrt(HIDDEN))
    seq = len(ids)
    distance = np.abs(np.arange(seq)[:, None] - np.arange(seq)[None, :])
    for i, kind in enumerate(TYPES):
        p = f"layers.{i}."
        h = _rms(x, get(p + "input_layernorm.weight"))
        q = (h @ get(p + "self_attn.q_proj.weight").T).reshape(seq, HEADS, HEAD_DIM)
        k = (h @ get(p + "self_attn.k_proj.weight").T).reshape(seq, 1, HEAD_DIM)
        v = h @ get(p + "self_attn.v_proj.weight").T
        theta = 1e4 if kind == "sliding_attention" else 1e6
        q = _rope(_rms(q, get(p + "self_attn.q_norm.weight")).transpose(1, 0, 2), theta)
        k = _rope(_rms(k, get(p + "self_attn.k_norm.weight")).transpose(1, 0, 2), theta)[0]
        scores = q @ k.T / math.sqrt(HEAD_DIM)  # (heads, seq, seq)
        if kind == "sliding_attention":
            scores = np.where(distance > WINDOW // 2, -np.inf, scores)
        probs = np.exp(scores - scores.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        ctx = (probs @ v).transpose(1, 0, 2).reshape(seq, HEADS * HEAD_DIM)
        x = x + _rms(ctx @ get(p + "self_attn.o_proj.weight").T,
                     get(p + "post_attention_layernorm.weight"))
        h = _rms(x, get(p + "pre_feedforward_layernorm.weight"))
        gate = h @ get(p + "mlp.gate_proj.weight").T
        gelu = 0.5 * gate * (1 + np.tanh(math.sqrt(2 / math.pi) * (gate + 0.044715 * gate**3)))
        out = (gelu * (h @ get(p + "mlp.up_proj.weight").T)) @ get(p + "mlp.down_proj.weight").T
        x = x + _rms(out, get(p + "post_feedforward_layernorm.weight"))
    return _rms(x, get("norm.weight")).mean(0)


def reference_vector(folder: Path, windows: list[tuple[list[int], int]]) -> np.ndarray:
    """A text's vector from its windows (ids with <bos>/<eos>, content tokens): the means
    averaged by content tokens, through both Dense layers, L2-normalised."""
    from rag.gemma.safetensors import Tensors

    means = np.stack([reference_mean(folder, ids) for ids, _ in windows])
    weight = np.array([n for _, n in windows], dtype=np.float64)
    pooled = (means * weight[:, None]).sum(0) / weight.sum()
    for dense in ("2_Dense", "3_Dense"):
        pooled = np.asarray(Tensors(folder / dense / "model.safetensors").get("linear.weight"),
                            dtype=np.float64) @ pooled
    return pooled / np.linalg.norm(pooled)
