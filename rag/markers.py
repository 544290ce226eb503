"""Citation markers (``[1]``, ``[1, 2]``, ``[2-4]``, ``【1】``): the one definition of what
counts as a marker, shared by the citation check, the groundedness score and the UI.

Bracketed numbers of four or more digits (years such as ``[2023]``) are content,
not markers. Models writing CJK often use fullwidth brackets; they count too.
"""

from __future__ import annotations

import re
from collections.abc import Callable

# A range such as [1-40] is expanded only up to this many numbers; a longer one
# keeps its endpoints (it can only be a slip: answerers get a handful of passages).
MAX_RANGE = 50

MARKER = re.compile(
    r"[ \t]*(?P<open>[\[［【])\s*"
    r"(?P<body>\d{1,3}(?:\s*(?:[,，、;]|[-–—])\s*\d{1,3})*)"
    r"\s*(?P<close>[\]］】])"
)
_PART = re.compile(r"(\d+)\s*[-–—]\s*(\d+)|(\d+)")


def group_numbers(body: str) -> list[int]:
    """The numbers of one marker's body: "1, 3-4" -> [1, 3, 4] (repeats kept)."""
    out: list[int] = []
    for match in _PART.finditer(body):
        if match.group(3) is not None:
            out.append(int(match.group(3)))
            continue
        start, end = int(match.group(1)), int(match.group(2))
        if start <= end and end - start < MAX_RANGE:
            out.extend(range(start, end + 1))
        else:
            out.extend([start, end])
    return out


def marker_numbers(text: str) -> list[int]:
    """Every cited number in ``text``, in order of first appearance, without repeats."""
    out: list[int] = []
    for match in MARKER.finditer(text):
        out += [n for n in group_numbers(match.group("body")) if n not in out]
    return out


def has_marker(text: str) -> bool:
    return MARKER.search(text) is not None


def replace_markers(text: str, replace: Callable[[re.Match[str]], str]) -> str:
    """``text`` with each marker (and the blanks before it) replaced by ``replace(match)``."""
    return MARKER.sub(replace, text)


def strip_markers(text: str) -> str:
    """``text`` without markers, e.g. to embed a claim without its citations."""
    return MARKER.sub(" ", text)
