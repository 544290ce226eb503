"""An answerer wrapper that records LLM replies and replays them: one slow LLM run, many checks.

The local model takes ~20 s an answer on two cores, and two runs of the same
questions do not give the same replies. To compare two ways of checking replies
(issue 24: before and after the claim check) on the *same* replies, the first run
records every reply, keyed by the question and the passages it was given, and
later runs replay them; a failure (timeout, server error) is recorded and replayed
as the same ``AnswererError``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from rag.answering.claims import reply_declines
from rag.types import AnswererError, Draft, Passage


def reply_key(question: str, passages: Sequence[Passage]) -> str:
    """The question and the passages (by chunk, in order) that make one LLM request."""
    return json.dumps([question, [p.chunk_id for p in passages]], ensure_ascii=False)


class RecordedAnswerer:
    """Replays ``inner``'s recorded reply to the same request, else asks it and records.

    ``inner`` may be None (replay only: an unrecorded request is an AnswererError).
    """

    def __init__(self, inner: Any, path: str | Path, name: str = "") -> None:
        self.inner = inner
        self.path = Path(path)
        self.name = name or inner.name
        self.structured = bool(getattr(inner, "structured", True))
        self.replies: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    row = json.loads(line)
                    self.replies[row["key"]] = row
        self.asked = 0

    def _record(self, key: str, row: dict[str, Any]) -> None:
        self.replies[key] = row
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"key": key, **row}, ensure_ascii=False) + "\n")

    def draft(self, question: str, passages: Sequence[Passage]) -> Draft:
        key = reply_key(question, passages)
        if key not in self.replies:
            if self.inner is None:
                raise AnswererError("no recorded reply for this question and these passages")
            self.asked += 1
            try:
                text = self.inner.draft(question, passages).text
            except AnswererError as exc:
                self._record(key, {"error": str(exc)})
                raise
            self._record(key, {"text": text})
        row = self.replies[key]
        if "error" in row:
            raise AnswererError(row["error"])
        return Draft(text=row["text"], answerer=self.name, declined=reply_declines(row["text"]))

    def stream(self, question: str, passages: Sequence[Passage]) -> Iterator[str]:
        yield self.draft(question, passages).text

    def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if callable(close):
            close()
