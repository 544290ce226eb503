"""Citation plumbing shared by every LLM answerer: passage block, marker parsing, declines.

Whichever model wrote the text, the engine needs the same three things: the
passages presented to the model as numbered, quoted *data* (so instructions
hidden in a document are not obeyed); the ``[n]`` markers in the reply mapped
to the passages that were actually sent (a model citing ``[9]`` when five
passages were sent must not produce a citation); and a reliable signal that the
model declined because the passages do not hold the answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from rag.markers import group_numbers, has_marker, replace_markers
from rag.types import Passage

DECLINE_SENTINEL = "NOT_FOUND"
OPEN_QUOTE = "<<<"
CLOSE_QUOTE = ">>>"
MAX_SOURCE_CHARS = 200
_SPACE_BEFORE_PUNCT = re.compile(r"[ \t]+(?=[.,;:!?。，、！？])")
_REPEATED = re.compile(r"\[(\d+)\](?:\s*\[\1\])+")


class ParsedCitations(NamedTuple):
    """Result of :func:`parse_citations`; unpacks as ``text, cited, invalid``.

    ``text``: the reply with valid markers normalised to ``[n]`` (one bracket per
    number) and markers for passages that were not sent removed. ``cited``: valid
    numbers in order of first appearance. ``invalid``: numbers the model cited
    that were not sent, in order of first appearance.
    """

    text: str
    cited: list[int]
    invalid: list[int]


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _defang(text: str) -> str:
    """Stop a document from closing its own quote block and posing as the prompt."""
    return text.replace(OPEN_QUOTE, "< < <").replace(CLOSE_QUOTE, "> > >")


def format_passages(passages: Iterable[Passage]) -> str:
    """The numbered passage block sent to an LLM, each passage fenced as quoted data.

    Layout (one block per passage, separated by a blank line)::

        [1] (source: file.txt)
        <<<
        passage text
        >>>

    Fence markers inside a passage (or its file name) are broken up so a document
    cannot end its own quote and smuggle text outside it.
    """
    blocks = []
    for p in passages:
        source = _defang(_one_line(p.source))[:MAX_SOURCE_CHARS] or "unknown"
        body = _defang(p.text.strip())
        blocks.append(f"[{p.n}] (source: {source})\n{OPEN_QUOTE}\n{body}\n{CLOSE_QUOTE}")
    return "\n\n".join(blocks)


def parse_citations(text: str, passages: Sequence[Passage] | Iterable[int]) -> ParsedCitations:
    """Find ``[n]``, ``[n, m]``, ``[n][m]`` and ``[n-m]`` markers and check them.

    ``passages`` are the passages that were sent (or just their numbers); only
    those numbers are accepted. A marker group keeps its valid numbers, written
    as ``[n][m]``; a group with none is dropped together with the space before it.
    Bracketed numbers of four or more digits (years such as ``[2023]``) are left
    alone: they are content, not markers.
    """
    sent = {p.n if isinstance(p, Passage) else int(p) for p in passages}
    cited: list[int] = []
    invalid: list[int] = []

    def replace(match: re.Match[str]) -> str:
        keep: list[int] = []
        for n in group_numbers(match.group("body")):
            if n in sent:
                if n not in keep:
                    keep.append(n)
                if n not in cited:
                    cited.append(n)
            elif n not in invalid:
                invalid.append(n)
        if not keep:
            return ""
        lead = match.group(0)[: len(match.group(0)) - len(match.group(0).lstrip(" \t"))]
        return lead + "".join(f"[{n}]" for n in keep)

    cleaned = _REPEATED.sub(r"[\1]", replace_markers(text, replace))
    if invalid:
        cleaned = _SPACE_BEFORE_PUNCT.sub("", cleaned)
    return ParsedCitations(cleaned.strip(), cited, invalid)


_DECLINE_PHRASES = re.compile(
    "|".join(
        [
            # English
            r"\b(passages?|context|documents?|sources?|texts?) (provided )?(do|does) not "
            r"(contain|include|mention|say|provide|answer)",
            r"\bno (relevant )?information (about|on|regarding|in)\b",
            r"\b(cannot|can't|could not|couldn't|unable to) (find|answer|determine)\b",
            r"\bnot (mentioned|found|stated|specified) in the (passages?|context|documents?)",
            r"\bi don't know\b",
            # French, German, Spanish, Italian, Portuguese, Dutch
            r"\bne (contiennent|contient|mentionnent|mentionne) pas\b",
            r"\bpas d'information",
            r"\b(enthalten|enthält|nennen|nennt) (keine|nicht)\b",
            r"\bkeine (informationen|angaben)\b",
            r"\bno (contienen|contiene|mencionan|menciona|incluyen)\b",
            r"\bno hay información\b",
            r"\bnon (contengono|contiene|menzionano)\b",
            r"\bnão (contêm|contém|mencionam|menciona)\b",
            r"\bbevatten geen\b",
        ]
    ),
    re.IGNORECASE,
)
_SENTINEL = re.compile(r"\bNOT[_ ]FOUND\b", re.IGNORECASE)
# Polite declines are short; a long answer that says "does not mention X" in passing
# is still an answer.
MAX_DECLINE_CHARS = 300


def is_decline(text: str) -> bool:
    """True when the reply says the passages do not contain the answer.

    The system prompt asks for exactly ``NOT_FOUND``; models also wrap it in
    quotes or code, add an explanation after it, or answer with a sentence such
    as "The passages do not contain…". A reply that cites a passage is an answer,
    not a decline, unless it starts with the sentinel.
    """
    stripped = text.strip().strip("`*_\"'“”«». \n")
    if not stripped:
        return False
    if _SENTINEL.match(stripped):
        return True
    if has_marker(text):
        return False
    if DECLINE_SENTINEL in text:
        return True
    return len(stripped) <= MAX_DECLINE_CHARS and _DECLINE_PHRASES.search(stripped) is not None
