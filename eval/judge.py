"""Optional LLM-as-judge faithfulness, reported beside the model-free figures.

An LLM judge catches what sentence similarity cannot (a negated or swapped
number reads as "similar"), but it needs a model and shares LLM blind spots,
so it only runs when ``RAG_JUDGE_BASE_URL`` and ``RAG_JUDGE_MODEL`` point at an
OpenAI-compatible server, and never replaces the model-free metrics.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

PROMPT = (
    "You check whether an answer is faithful to the numbered source passages it cites.\n"
    "The passages may be in another language than the answer; judge meaning, not wording.\n"
    "Reply FAITHFUL if every claim in the answer is stated in the cited passages, otherwise "
    "reply UNFAITHFUL. Reply with that one word only.\n\n"
    "Passages:\n{passages}\n\nQuestion: {question}\n\nAnswer:\n{answer}\n"
)


class Judge:
    """Asks an OpenAI-compatible chat model for a FAITHFUL/UNFAITHFUL verdict per answer."""

    def __init__(
        self, base_url: str, model: str, api_key: str = "", timeout_s: float = 60.0,
        client: Any = None,
    ) -> None:
        """``client``: an ``openai.OpenAI`` to reuse; by default one for ``base_url``."""
        from rag.openai_client import make_client

        self.model = model
        self._secret = api_key
        self._client = client or make_client(base_url, api_key, timeout_s)
        self.errors = 0
        self.last_error = ""

    @classmethod
    def from_env(cls) -> Judge | None:
        """A judge when both variables are set, else None (the caller skips silently)."""
        from rag.config import Settings

        judge = Settings().judge
        if not judge.base_url.strip() or not judge.model.strip():
            return None
        return cls(judge.base_url.strip(), judge.model.strip(),
                   judge.api_key.get_secret_value().strip(), judge.timeout)

    def verdict(self, question: str, answer: str, passages: Mapping[int, str]) -> float | None:
        """1.0 faithful, 0.0 unfaithful, None when the judge failed (counted in ``errors``)."""
        text = "\n".join(f"[{n}] {p}" for n, p in sorted(passages.items()))
        prompt = PROMPT.format(passages=text or "(none)", question=question, answer=answer)
        try:
            completion = self._client.chat.completions.create(
                model=self.model, temperature=0, max_tokens=5,
                messages=[{"role": "user", "content": prompt}],
            )
            reply = str(completion.choices[0].message.content or "")
        except Exception as exc:  # the judge is optional: any failure is counted, not raised
            from rag.openai_client import describe_error

            self.errors += 1
            self.last_error = describe_error(exc, self._secret)[:200]
            return None
        result = parse_verdict(reply)
        if result is None:
            self.errors += 1
            self.last_error = f"unreadable verdict: {reply[:80]!r}"
        return result


def parse_verdict(reply: str) -> float | None:
    """Read FAITHFUL/UNFAITHFUL from a reply (UNFAITHFUL checked first: it contains the other)."""
    word = reply.strip().upper()
    if re.search(r"\bUNFAITHFUL\b", word):
        return 0.0
    if re.search(r"\bFAITHFUL\b", word):
        return 1.0
    return None
