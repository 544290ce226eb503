"""Answerers: turn a question and numbered passages into text with ``[n]`` markers.

Every answerer receives the same numbered ``Passage`` list and returns a ``Draft``;
the engine then maps markers back to passages (``rag.answering.citations``), so
citation handling is identical whichever model wrote the text.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

from rag.types import Draft, Passage


class Answerer(Protocol):
    """The one interface the engine, UI and evaluation use for every backend."""

    name: str  # shown to people: "extractive", "openai:MODEL", "ollama:MODEL", "local:FILE"
    # LLM answerers may also set ``structured = True``: their reply is quote-then-claim JSON
    # (``rag.answering.claims``), shown only after the engine has checked its quotes.

    def draft(self, question: str, passages: Sequence[Passage]) -> Draft:
        """Answer from ``passages`` only, citing them as ``[n]``; raise AnswererError on failure."""
        ...

    def stream(self, question: str, passages: Sequence[Passage]) -> Iterator[str]:
        """Yield the answer text as it is produced (same contract as ``draft``)."""
        ...
