"""Loading a ``tokenizers`` file the way every ONNX embedder wants it: no padding and no
truncation (the embedders cut long texts into windows themselves, never silently)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def load_tokenizer(path: Path) -> Any:  # tokenizers.Tokenizer
    """``tokenizer.json`` at ``path``, with padding and truncation off."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(path))
    tok.no_padding()
    tok.no_truncation()
    return tok


def special_id(tok: Any, token: str, default: int) -> int:
    """The id of a special token, or ``default`` when the vocabulary lacks it."""
    found = tok.token_to_id(token)
    return default if found is None else int(found)
