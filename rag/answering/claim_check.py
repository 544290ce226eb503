"""Does the claim say what its quote says? The check every LLM claim passes before it is shown.

Quote-then-claim (``rag.answering.claims``) proves the quote is in the passage, not
that the claim restates it: a model can put "Russia demanded that Poland leave the
EU" behind a real sentence. Two tests, both cross-lingual, no LLM:

1. **similarity**: the claim and its quote, embedded in one symmetric role of the
   best multilingual model the engine has (``rag.similarity``), must score at least
   the threshold calibrated for that model family on the dev half of the labeled
   claim set (``python -m rag.eval.claim_set --calibrate``; docs/evaluation.md);
2. **numbers**: every number the claim states must be in its quote or its passage
   (``rag.answering.numbers``): similarity barely moves when 2014 becomes 2008;
3. **the local model's reading**, when it is installed (``rag.answering.claim_judge``):
   a claim both tests pass is removed when the model says its quote does not state it
   (swapped names and added facts, which an embedding hardly sees).

A free-text reply has no quotes: each sentence is compared with the best-matching
sentence of the passages it cites. A claim that fails is removed from the answer,
and the answer says how many were removed and why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rag.answering.numbers import missing_numbers
from rag.similarity import SimilarityModel, similarity_model

# Chosen on eval/claims/claims-dev.jsonl (docs/evaluation.md, "Claim check"): the highest
# threshold that keeps >= 95 % of the dev set's faithful claims.
THRESHOLDS = {"e5": 0.85, "gemma": 0.73}
UNSUPPORTED, NUMBER, UNCITED, JUDGED = "unsupported", "number", "uncited", "judged"
# How each cause reads in the one-line summary of an answer.
CAUSE_WORDS = {UNSUPPORTED: "not supported by its quote",
               NUMBER: "a number its passage does not give",
               UNCITED: "no citation",
               JUDGED: "its quote does not say it, as the local model reads them"}


@dataclass(frozen=True)
class Verdict:
    """What the check found: keep or remove, the similarity, and each cause (code, words)."""

    kept: bool
    similarity: float | None
    quote: str  # the sentence the claim was compared with
    causes: tuple[str, ...] = ()  # UNSUPPORTED, NUMBER, UNCITED, JUDGED
    reasons: tuple[str, ...] = ()  # one line each, for people


class ClaimChecker:
    """Similarity of claim and quote against a calibrated threshold, plus the number rule,
    plus the local model's reading when a ``judge`` (``rag.answering.claim_judge``) is given."""

    def __init__(self, model: SimilarityModel, threshold: float | None = None,
                 judge: Any = None) -> None:
        self.model = model
        self.judge = judge
        if threshold is None:
            if model.family not in THRESHOLDS:
                raise ValueError(f"no calibrated claim-check threshold for {model.family!r} "
                                 "(run python -m rag.eval.claim_set --calibrate)")
            threshold = THRESHOLDS[model.family]
        self.threshold = threshold

    @classmethod
    def for_embedder(cls, embedder: Any = None, judge: Any = None) -> ClaimChecker:
        """The check with the engine's embedder's similarity role (e5 beside any other)."""
        model = similarity_model(embedder)
        if model.family not in THRESHOLDS:
            model = similarity_model(None)
        return cls(model, judge=judge)

    def similarity(self, claim: str, quote: str) -> float:
        """The claim against its quote, or against one sentence of a quote that has several
        (a model quoting two sentences to claim what the second says is faithful)."""
        from rag.groundedness import passage_sentences

        parts = [quote, *(s for s in passage_sentences(quote) if s != quote)]
        return float((self.model.sources(parts) @ self.model.claims([claim])[0]).max())

    def best_sentence(self, claim: str, passages: Sequence[str]) -> tuple[float, str]:
        """The passages' sentence closest to the claim (a free-text reply names none)."""
        from rag.groundedness import passage_sentences

        candidates = [s for p in passages for s in passage_sentences(p)]
        if not candidates:
            return 0.0, ""
        scores = self.model.sources(candidates) @ self.model.claims([claim])[0]
        best = int(scores.argmax())
        return float(scores[best]), candidates[best]

    def check(self, claim: str, quote: str, passages: Sequence[str]) -> Verdict:
        """Check ``claim`` against ``quote`` (empty: the best sentence of ``passages``)."""
        if not passages and not quote:
            return Verdict(False, None, "", (UNCITED,), ("it cites no passage",))
        if quote:
            score = self.similarity(claim, quote)
        else:
            score, quote = self.best_sentence(claim, passages)
        causes, reasons = [], []
        if score < self.threshold:
            causes.append(UNSUPPORTED)
            reasons.append(f"its quote does not say it (similarity {score:.2f} < "
                           f"{self.threshold:.2f})")
        missing = missing_numbers(claim, quote, *passages)
        if missing:
            causes.append(NUMBER)
            reasons.append(f"{', '.join(missing)}: not in its quote or passage")
        if not causes and self.judge is not None:  # the model reads only what passed
            p_yes = self.judge(claim, quote)
            if p_yes is not None and p_yes < self.judge.threshold:
                causes.append(JUDGED)
                reasons.append(f"the local model reads its quote as not saying it (P(yes) "
                               f"{p_yes:.2f} < {self.judge.threshold:.2f})")
        return Verdict(not causes, score, quote, tuple(causes), tuple(reasons))


def removal_note(removed: Sequence[dict[str, Any]], shown: int) -> str | None:
    """One line saying how many claims were removed and why, or None when none was.

    "1 of 2 claims was removed: not supported by its quote (1)."
    """
    if not removed:
        return None
    counts: dict[str, int] = {}
    for claim in removed:
        for cause in claim.get("causes") or [UNSUPPORTED]:
            counts[cause] = counts.get(cause, 0) + 1
    why = "; ".join(f"{CAUSE_WORDS.get(c, c)} ({n})" for c, n in counts.items())
    total = len(removed) + shown
    verb = "was" if len(removed) == 1 else "were"
    return f"{len(removed)} of {total} claims {verb} removed by the claim check: {why}."
