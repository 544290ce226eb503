"""Gemma's tokenizer at load-time cost 0.1 s instead of 1.4 s, token for token.

sentence-transformers tokenises with the ``tokenizers`` file (``tokenizer.json``, 33 MB):
it loads in 1.4 s and takes 320 MB, most of a cold ``rag ask`` (its 515k BPE merges).
``tokenizer.model``, the SentencePiece model it was converted from, loads in 0.1 s and
gives the same ids, except around the added tokens ``tokenizers`` matches in the raw
text first: the special tokens (``<bos>``, ``<eos>``...) and runs of a literal ``▁``,
which SentencePiece reads as text. Those are found once, when the graph is built, by
comparing both tokenizers on each added token (``splits``), and the text is cut at them
before SentencePiece sees it, as ``tokenizers`` does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

SPLITS_FILE = "tokenizer-splits.json"


def find_splits(model_dir: Path) -> dict[str, int]:
    """Added tokens (content -> id) that SentencePiece does not give as ``tokenizers`` does
    (compared inside text, as they occur); slow (loads ``tokenizer.json``): build time only.
    A folder without ``tokenizer.json`` has no reference: none."""
    from rag.embedding.onnxrt.tokenizer import load_tokenizer

    if not (model_dir / "tokenizer.json").is_file():
        return {}
    reference = load_tokenizer(model_dir / "tokenizer.json")
    sp = _sentencepiece(model_dir)
    config = json.loads((model_dir / "tokenizer_config.json").read_text(encoding="utf-8"))
    added = {int(i): t["content"] for i, t in config.get("added_tokens_decoder", {}).items()}
    probes = {i: f"ab {c} cd" for i, c in added.items()}
    want = reference.encode_batch(list(probes.values()), add_special_tokens=False)
    got = sp.encode(list(probes.values()))
    return {added[i]: i for i, w, g in zip(probes, want, got, strict=True) if w.ids != g}


def _sentencepiece(model_dir: Path) -> Any:
    import sentencepiece

    return sentencepiece.SentencePieceProcessor(model_file=str(model_dir / "tokenizer.model"))


class GemmaTokenizer:
    """Content ids (no ``<bos>``/``<eos>``) of texts, as ``tokenizers`` gives them."""

    def __init__(self, model_dir: Path, splits: dict[str, int]) -> None:
        self._sp = _sentencepiece(model_dir)
        self.bos, self.eos, self.pad = self._sp.bos_id(), self._sp.eos_id(), self._sp.pad_id()
        self._splits = splits
        # Longest first: at one position the longest added token wins, as in tokenizers.
        alternatives = sorted(splits, key=len, reverse=True)
        self._pattern = (re.compile("|".join(re.escape(s) for s in alternatives))
                         if alternatives else None)

    def ids(self, texts: Sequence[str]) -> list[list[int]]:
        if self._pattern is None or not any(self._pattern.search(t) for t in texts):
            return self._sp.encode(list(texts))
        return [self._cut(t) for t in texts]

    def _cut(self, text: str) -> list[int]:
        out: list[int] = []
        start = 0
        for match in self._pattern.finditer(text):  # type: ignore[union-attr]
            if match.start() > start:
                out += self._sp.encode(text[start : match.start()])
            out.append(self._splits[match.group()])
            start = match.end()
        if start < len(text):
            out += self._sp.encode(text[start:])
        return out
