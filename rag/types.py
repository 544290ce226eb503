"""Plain data types shared by every stage, so modules agree on one vocabulary.

They are deliberately free of heavy imports: the CLI, the UI and the evaluation
harness import them without paying for Chroma or an embedding model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk as shown to an answerer, numbered for citation.

    ``n`` is the 1-based number the answerer must use in its ``[n]`` markers;
    ``source`` is the file name shown to people, ``path`` the full path ingested.
    """

    n: int
    chunk_id: str
    source: str
    path: str
    text: str
    score: float
    language: str = "und"
    position: int = 0
    sentence: str | None = None  # the sentence that matched best, when known


@dataclass(frozen=True)
class Citation:
    """One citation in an answer: marker number, file name, quoted text, score."""

    n: int
    source: str
    text: str
    score: float
    passage_text: str = ""  # the whole passage the quoted text comes from
    language: str = "und"


ANSWERED, NOT_STATED, DECLINED = "answered", "not_stated", "declined"
STATUSES = (ANSWERED, NOT_STATED, DECLINED)


@dataclass
class Answer:
    """What ``Engine.ask`` returns; ``to_dict`` is the ``rag ask --json`` contract.

    ``status`` is one of three honest outcomes: ``answered``; ``not_stated`` (the
    documents do not say this directly: the closest passages are quoted, marked as not
    an answer); ``declined`` (nothing close enough: "Not found in the documents").
    ``declined`` is the same as ``status == "declined"``, kept for existing clients.
    """

    question: str
    answer: str
    answerer: str
    declined: bool
    citations: list[Citation] = field(default_factory=list)
    retrieved: list[Passage] = field(default_factory=list)
    latency_ms: float = 0.0
    fallback_reason: str | None = None  # why a configured LLM was not used
    standalone_question: str | None = None  # condensed follow-up, when different
    support: float = 0.0  # the answerability signal the decline decision used
    # LLM answers only: each shown sentence with its support and quote (rag.answering.claims),
    # and what the check dropped or found unsupported, one line each.
    sentences: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # Claims the claim check removed (rag.answering.claim_check): text, cited, quote,
    # similarity, causes, reasons; and the one line that says how many and why.
    removed_claims: list[dict[str, Any]] = field(default_factory=list)
    removal_note: str | None = None
    # Extractive answers: checked machine translations of quotes not in the question's
    # language (rag.glosses): n, language, text, label.
    glosses: list[dict[str, Any]] = field(default_factory=list)
    embedder: str = ""  # the embedder that retrieved the passages (as the store records it)
    status: str = ""  # derived from ``declined`` when not given

    def __post_init__(self) -> None:
        if self.declined or not self.status:
            self.status = DECLINED if self.declined else ANSWERED

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": self.answer,
            "answerer": self.answerer,
            "status": self.status,
            "embedder": self.embedder,
            "declined": self.declined,
            "citations": [
                {"n": c.n, "source": c.source, "text": c.text, "score": round(c.score, 4)}
                for c in self.citations
            ],
            "retrieved": [{"source": p.source, "score": round(p.score, 4)} for p in self.retrieved],
            "latency_ms": round(self.latency_ms, 1),
            "fallback_reason": self.fallback_reason,
            "standalone_question": self.standalone_question,
            "support": round(self.support, 4),
            "sentences": self.sentences,
            "warnings": self.warnings,
            "removed_claims": self.removed_claims,
            "removal_note": self.removal_note,
            "glosses": self.glosses,
        }


@dataclass(frozen=True)
class Draft:
    """An answerer's raw output before the engine attaches citations.

    ``text`` carries ``[n]`` markers that refer to ``Passage.n``.
    """

    text: str
    answerer: str
    declined: bool = False


class AnswererError(RuntimeError):
    """A configured answerer failed (down, timeout, bad reply); message is one line."""
