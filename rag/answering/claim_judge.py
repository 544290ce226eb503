"""The local model as a second reader of each claim the embedding check lets through.

A sentence embedding hardly moves when one name of a long sentence is swapped or a fact
is added to it (the claim check's weak kinds, docs/claim-check.md). A small instruct
model reading the claim beside its quote catches more of those: asked "does the quote
state the claim?", the probability it gives to "yes" (from the first token's
log-probabilities, one token generated) separates faithful from unfaithful dev claims
with ROC AUC 0.88. It only ever removes claims: a judge that fails or times out leaves
the embedding check's verdict as it was, and it never writes anything that is shown.

It runs when the local model is installed (``RAG_CLAIM_JUDGE=auto``, the default; ``off``
turns it off), for every LLM answerer, and only with a model whose cut was calibrated on
the dev half of the claim set (``THRESHOLDS``): another model's probabilities mean
something else. Cost: one short prompt per claim, ~1.5-3 s on 2 cores.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

SYSTEM = ("You check a claim against a quote from a news article. The quote may be in "
          "another language. Answer 'yes' only if the quote states what the claim says (same "
          "people, places, numbers, dates, and not negated); otherwise answer 'no'. Answer "
          "with one word.")
# Chosen on eval/claims/claims-dev.jsonl (docs/claim-check.md): after the embedding check,
# removing claims below this P(yes) keeps >= 95 % of the dev set's faithful claims; 0.40 is
# the low end of the plateau 0.40-0.44 (same dev figures), the furthest from where faithful
# claims start to go (0.46).
THRESHOLDS = {"qwen2.5-coder-1.5b-instruct-q4_k_m.gguf": 0.40}
TIMEOUT_S = 20.0
TOP_LOGPROBS = 10

Chat = Callable[..., Any]  # rag.answering.local.LocalPrompt's call


def judge_prompt(claim: str, quote: str) -> str:
    return f"Quote: {quote}\nClaim: {claim}\nDoes the quote state the claim?"


def p_yes(reply: Any) -> float | None:
    """P("yes") against P("no") among the first token's top choices; None when neither is
    there (the reply cannot be read as a verdict)."""
    try:
        tops = reply.choices[0].logprobs.content[0].top_logprobs
    except (AttributeError, IndexError, TypeError):
        return None
    yes = sum(math.exp(t.logprob) for t in tops if t.token.strip().lower().startswith("yes"))
    no = sum(math.exp(t.logprob) for t in tops if t.token.strip().lower().startswith("no"))
    return yes / (yes + no) if yes + no > 0 else None


class ClaimJudge:
    """``judge(claim, quote)``: P(the quote states the claim), or None when it cannot say."""

    def __init__(self, chat: Chat, threshold: float, name: str = "",
                 timeout_s: float = TIMEOUT_S) -> None:
        self.chat = chat
        self.threshold = threshold
        self.name = name
        self.timeout_s = timeout_s

    def __call__(self, claim: str, quote: str) -> float | None:
        try:
            reply = self.chat(SYSTEM, judge_prompt(claim, quote), self.timeout_s, max_tokens=1,
                              logprobs=True, top_logprobs=TOP_LOGPROBS)
        except Exception:  # noqa: BLE001 - a judge that fails leaves the verdict as it was
            log.warning("the claim judge could not read a claim", exc_info=True)
            return None
        return p_yes(reply)


def local_judge(settings: Any) -> ClaimJudge | None:
    """The local model's judge, or None: RAG_CLAIM_JUDGE=off, no local model installed, or a
    model with no calibrated cut (nothing is loaded here: the server starts on first use)."""
    from rag.answering.local import LocalPrompt, installed
    from rag.models import ModelError, resolve

    if settings.claim_judge == "off" or not installed(settings):
        return None
    try:
        name = resolve(settings.llm.model_path)[0].name
    except ModelError:
        return None
    if name not in THRESHOLDS:
        log.info("no calibrated claim-judge cut for %s: the claim judge is off", name)
        return None
    return ClaimJudge(LocalPrompt(settings), THRESHOLDS[name], name)
