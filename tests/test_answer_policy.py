"""The engine's answer policy (decline, draft, verify, fall back) with no model and no store.

The retriever and the LLM answerer here are test doubles on purpose: the policy is
pure logic over what they return, and scripting them is the only way to reach every
branch (an LLM that fails, cites nothing, cites passages it was not sent) without
waiting for a real model. The real paths are covered by test_llm_answerers.py.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from rag import registry
from rag.answering.citations import is_decline
from rag.config import Settings
from rag.engine import DECLINE_TEXT, Engine
from rag.retrieval import Retrieval
from rag.types import Answer, AnswererError, Draft, Passage

PASSAGES = [
    Passage(n=1, chunk_id="a:0", source="a.txt", path="/a.txt", text="Cats sleep a lot.",
            score=0.9, sentence="Cats sleep a lot."),
    Passage(n=2, chunk_id="b:0", source="b.txt", path="/b.txt", text="Dogs bark.",
            score=0.88, sentence="Dogs bark."),
]


class ScriptedRetriever:
    def __init__(self, support: float, passages: Sequence[Passage] = PASSAGES) -> None:
        self.support, self.passages, self.asked = support, list(passages), []

    def retrieve(self, question: str, k: int) -> Retrieval:
        self.asked.append(question)
        return Retrieval(passages=self.passages[:k], support=self.support)


class ScriptedLLM:
    """Replies with ``reply`` (or raises it when it is an exception)."""

    def __init__(self, reply: str | Exception) -> None:
        self.name, self.reply, self.calls = "scripted", reply, 0

    def draft(self, question: str, passages: Sequence[Passage]) -> Draft:
        text = "".join(self.stream(question, passages))
        return Draft(text=text, answerer=self.name, declined=is_decline(text))

    def stream(self, question: str, passages: Sequence[Passage]) -> Iterator[str]:
        self.calls += 1
        if isinstance(self.reply, Exception):
            raise self.reply
        yield from re.findall(r"\S+\s*", self.reply)


def _engine(llm: ScriptedLLM, support: float = 0.9) -> Engine:
    settings = Settings(answerer="scripted", decline_threshold=0.8)
    return Engine(settings, retriever=ScriptedRetriever(support), answerers={"scripted": llm})


def test_weak_support_declines_without_calling_the_answerer() -> None:
    llm = ScriptedLLM("Cats sleep [1]")
    answer = _engine(llm, support=0.5).ask("Do cats sleep?")
    assert answer.declined and answer.answer == DECLINE_TEXT and llm.calls == 0


def test_support_in_the_band_gets_the_closest_quotes_marked_as_not_an_answer() -> None:
    """Three honest outcomes: declined below the decline threshold, "not stated" (the
    closest passages, no LLM call) up to the stated threshold, answered above it."""
    llm = ScriptedLLM("Cats sleep a lot [1].")

    def ask(support: float) -> Answer:
        engine = Engine(Settings(answerer="scripted", decline_threshold=0.8,
                                 stated_threshold=0.85),
                        retriever=ScriptedRetriever(support), answerers={"scripted": llm})
        return engine.ask("Do cats sleep?")

    declined, not_stated, answered = ask(0.79), ask(0.83), ask(0.86)
    assert (declined.status, not_stated.status, answered.status) == (
        "declined", "not_stated", "answered")
    assert declined.declined and not not_stated.declined and not answered.declined
    assert not_stated.answer.startswith("The documents do not say this directly")
    assert "“Cats sleep a lot.” [1]" in not_stated.answer and not_stated.citations
    assert not_stated.answerer == "extractive" and llm.calls == 1  # only for the answer
    assert not_stated.to_dict()["status"] == "not_stated"
    events = list(Engine(Settings(answerer="scripted", decline_threshold=0.8,
                                  stated_threshold=0.85), retriever=ScriptedRetriever(0.83),
                         answerers={"scripted": llm}).ask_stream("Do cats sleep?"))
    assert events[0] == not_stated.answer and events[-1].status == "not_stated"


def test_an_answer_citing_sent_passages_is_kept_with_its_citations() -> None:
    answer = _engine(ScriptedLLM("Cats sleep a lot [1].")).ask("Do cats sleep?")
    assert not answer.declined and answer.answerer == "scripted"
    assert [c.source for c in answer.citations] == ["a.txt"] and answer.fallback_reason is None


def test_an_answer_citing_only_unsent_passages_falls_back_with_the_reason() -> None:
    answer = _engine(ScriptedLLM("Cats sleep [7].")).ask("Do cats sleep?")
    assert answer.answerer == "extractive (fallback)"
    assert answer.fallback_reason == "scripted cited none of the passages it was given"
    assert answer.citations and "“Cats sleep a lot.” [1]" in answer.answer


def test_a_failing_answerer_falls_back_and_says_why() -> None:
    answer = _engine(ScriptedLLM(AnswererError("server down"))).ask("Do cats sleep?")
    assert answer.answerer == "extractive (fallback)"
    assert answer.fallback_reason == "scripted failed: server down"


def test_a_decline_from_the_llm_is_respected_not_overridden() -> None:
    answer = _engine(ScriptedLLM("NOT_FOUND")).ask("Do cats sleep?")
    assert answer.declined and answer.fallback_reason is None and answer.answerer == "scripted"


def test_streaming_yields_the_deltas_then_the_same_answer_as_ask() -> None:
    engine = _engine(ScriptedLLM("Dogs bark [2]."))
    events = list(engine.ask_stream("Do dogs bark?"))
    assert events[:-1] == ["Dogs ", "bark ", "[2]."]
    final = events[-1]
    assert isinstance(final, Answer)
    assert final.answer == engine.ask("Do dogs bark?").answer == "Dogs bark [2]."


def test_a_follow_up_is_searched_for_with_the_conversation() -> None:
    retriever = ScriptedRetriever(0.9)
    engine = Engine(Settings(answerer="scripted", decline_threshold=0.8), retriever=retriever,
                    answerers={"scripted": ScriptedLLM("Dogs bark [2].")})
    answer = engine.ask("and dogs?", history=[("Do cats sleep?", "…")])
    assert retriever.asked == ["Do cats sleep? and dogs?"]
    assert answer.standalone_question == "Do cats sleep? and dogs?"


def test_an_unknown_answerer_is_an_error_listing_the_choices() -> None:
    engine = _engine(ScriptedLLM("x [1]"))
    with pytest.raises(ValueError, match=r"unknown RAG_ANSWERER 'nope': choose .*extractive"):
        engine.ask("Do cats sleep?", answerer="nope")


TOY_BACKEND = textwrap.dedent('''
    """A toy answerer: proves that a backend is one module and nothing else."""
    from rag.registry import Backend
    from rag.types import Draft


    class ShoutingAnswerer:
        name = "toy"

        def draft(self, question, passages):
            return Draft(text=f"{passages[0].sentence.upper()} [1]", answerer=self.name)

        def stream(self, question, passages):
            yield self.draft(question, passages).text


    BACKENDS = (Backend(name="toy", description="shouts the best sentence",
                        factory=lambda settings: ShoutingAnswerer(), uses_llm=True),)
''')


def test_a_new_answerer_is_one_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    import rag.answering
    from rag.cli import main

    (tmp_path / "toy_answerer.py").write_text(TOY_BACKEND)
    monkeypatch.setattr(rag.answering, "__path__", [*rag.answering.__path__, str(tmp_path)])
    monkeypatch.setattr(registry.ANSWERERS, "_backends", None)  # discover again

    assert main(["backends"]) == 0
    assert "toy" in capsys.readouterr().out
    engine = Engine(Settings(answerer="toy", decline_threshold=0.8,
                             llm_model_path=str(tmp_path / "no-local-model.gguf")),
                    retriever=ScriptedRetriever(0.9))
    answer = engine.ask("Do cats sleep?")
    assert answer.answerer == "toy" and answer.answer == "CATS SLEEP A LOT. [1]"
    assert engine.answerer_names() == ["toy", "extractive"]
