"""One-line error messages without secrets: what a person sees instead of a traceback.

Every front end (CLI, chat, API) and every backend that wraps a library error uses
these, so an error is always one line, of bounded length, and never carries a key
or a password, whichever library raised it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MAX_ERROR_CHARS = 300
# The way out that ends many of our messages ("...: run 'rag check --repair'"): kept when a
# long library error in the middle is shortened, or the person learns what broke, not what
# to do (seen with a Chroma error of ~250 characters inside a store path given twice).
_ADVICE = re.compile(r": (?:run|restore|set|install|move) [^:]{1,100}$")


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every non-empty secret replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def one_line(error: BaseException | str, secrets: Iterable[str] = (),
             limit: int = MAX_ERROR_CHARS) -> str:
    """The first non-empty line of an error (or its type's name), redacted and shortened."""
    text = str(error).strip()
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if not first and isinstance(error, BaseException):
        first = type(error).__name__
    first = redact(first, secrets)
    if len(first) <= limit:
        return first
    advice = _ADVICE.search(first)
    if advice and len(advice.group()) < limit // 2:
        return first[: limit - len(advice.group()) - 1] + "…" + advice.group()
    return first[:limit]
