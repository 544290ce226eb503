"""EmbeddingGemma's shape, read from the model folder's ``config.json`` and the
sentence-transformers module files (pooling, the two Dense layers, the prompts)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


class ModelFolderError(ValueError):
    """The folder is not an EmbeddingGemma sentence-transformers folder; one line."""


@dataclass(frozen=True)
class GemmaConfig:
    """What the graph builder needs from ``config.json``."""

    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    eps: float
    sliding_window: int
    sliding: tuple[bool, ...]  # per layer: sliding-window attention (else full)
    rope_global: float
    rope_local: float
    query_scale: float  # the attention logits' scale
    max_positions: int
    vocab: int

    @classmethod
    def read(cls, folder: Path) -> GemmaConfig:
        raw = _json(folder / "config.json")
        try:
            layers = int(raw["num_hidden_layers"])
            types = raw.get("layer_types") or [
                "full_attention" if (i + 1) % int(raw.get("_sliding_window_pattern", 6)) == 0
                else "sliding_attention" for i in range(layers)]
            if raw.get("hidden_activation", "gelu_pytorch_tanh") != "gelu_pytorch_tanh":
                raise ModelFolderError(f"{folder}: activation {raw['hidden_activation']!r} "
                                       "is not Gemma's gelu_pytorch_tanh")
            if not raw.get("use_bidirectional_attention", False):
                raise ModelFolderError(f"{folder}: not a bidirectional (embedding) Gemma model")
            return cls(
                hidden=int(raw["hidden_size"]), layers=layers,
                heads=int(raw["num_attention_heads"]), kv_heads=int(raw["num_key_value_heads"]),
                head_dim=int(raw["head_dim"]), intermediate=int(raw["intermediate_size"]),
                eps=float(raw["rms_norm_eps"]), sliding_window=int(raw["sliding_window"]),
                sliding=tuple(t == "sliding_attention" for t in types),
                rope_global=float(raw.get("rope_theta", 1e6)),
                rope_local=float(raw.get("rope_local_base_freq", 1e4)),
                query_scale=float(raw.get("query_pre_attn_scalar", raw["head_dim"])) ** -0.5,
                max_positions=int(raw.get("max_position_embeddings", 2048)),
                vocab=int(raw["vocab_size"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, ModelFolderError):
                raise
            raise ModelFolderError(f"{folder}/config.json is not a Gemma config ({exc})") from exc


@dataclass(frozen=True)
class Head:
    """The sentence-transformers modules after the encoder: pooling, Dense, prompts."""

    dense: tuple[str, ...]  # folders of the Dense layers, in order
    max_tokens: int  # sentence-transformers' max_seq_length: positions per window
    query_prompt: str
    document_prompt: str

    @classmethod
    def read(cls, folder: Path) -> Head:
        modules = _json(folder / "modules.json")
        kinds = [m.get("type", "").rsplit(".", 1)[-1] for m in modules]
        if kinds[:2] != ["Transformer", "Pooling"] or kinds[-1:] != ["Normalize"]:
            raise ModelFolderError(f"{folder}: modules {kinds} are not Transformer, Pooling, "
                                   "Dense..., Normalize")
        pooling = _json(folder / modules[1]["path"] / "config.json")
        if not pooling.get("pooling_mode_mean_tokens") or not pooling.get("include_prompt", True):
            raise ModelFolderError(f"{folder}: pooling is not a mean over every token")
        dense = tuple(m["path"] for m, kind in zip(modules, kinds, strict=True) if kind == "Dense")
        for path in dense:
            cfg = _json(folder / path / "config.json")
            if cfg.get("bias") or not str(cfg.get("activation_function", "")).endswith("Identity"):
                raise ModelFolderError(f"{folder}/{path}: only bias-free linear Dense layers "
                                       "are supported")
        prompts = _json(folder / "config_sentence_transformers.json").get("prompts", {})
        st = _json(folder / "sentence_bert_config.json")
        return cls(dense=dense, max_tokens=int(st.get("max_seq_length", 2048)),
                   query_prompt=prompts.get("query", ""),
                   document_prompt=prompts.get("document", ""))


def _json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelFolderError(f"{path} is missing: not a complete EmbeddingGemma folder") from None
    except (OSError, ValueError) as exc:
        raise ModelFolderError(f"{path} cannot be read: {exc}") from exc
