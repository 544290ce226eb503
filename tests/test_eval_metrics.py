"""Each evaluation metric on small hand-computed cases (pure functions, no engine).

The last tests score a correct and a deliberately wrong answerer built from real
``Answer`` objects: if a metric did not drop for the wrong one it would be useless.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from rag.eval.metrics import (
    METRICS,
    Outcome,
    Question,
    UnknownMetricError,
    check_thresholds,
    citation_precision,
    citation_recall,
    contains_expected,
    dedupe,
    hit_at,
    load_questions,
    parse_thresholds,
    percentile,
    reciprocal_rank,
    score_question,
    summarize,
)
from rag.eval.runner import evaluate_answer

from rag.chunking import split_sentences
from rag.config import DEFAULT_CORPUS
from rag.groundedness import (
    DEFAULT_THRESHOLD,
    Grounder,
    answer_claims,
    is_boilerplate,
    markers,
)
from rag.types import Answer, Citation, Passage

A, B, C = "a.txt", "b.txt", "c.txt"


# -- retrieval ---------------------------------------------------------------------------
def test_dedupe_keeps_first_occurrence_in_order() -> None:
    assert dedupe([B, A, B, C, A]) == [B, A, C]


def test_hit_at_counts_distinct_files_not_chunks() -> None:
    ranked = [A, A, A, B]  # three chunks of one file must not push B out of the top 2
    assert hit_at(ranked, [B], 2) == 1.0
    assert hit_at(ranked, [B], 1) == 0.0
    assert hit_at(ranked, [C], 5) == 0.0
    assert hit_at(ranked, [C, A], 1) == 1.0  # any expected file counts


def test_reciprocal_rank_over_distinct_files() -> None:
    assert reciprocal_rank([A, A, B], [B]) == 0.5
    assert reciprocal_rank([A, B, C], [C, B]) == 0.5
    assert reciprocal_rank([A], [B]) == 0.0
    assert reciprocal_rank([], [B]) == 0.0


# -- citations and content ----------------------------------------------------------------
def test_citation_precision_per_distinct_cited_file() -> None:
    assert citation_precision([A, B, A], [A]) == 0.5
    assert citation_precision([A, A], [A, C]) == 1.0
    assert citation_precision([B], []) == 0.0  # citing for an unanswerable question
    assert citation_precision([], [A]) is None  # nothing cited: not counted


def test_citation_recall_needs_one_expected_file() -> None:
    assert citation_recall([B, A], [A, C]) == 1.0
    assert citation_recall([B], [A]) == 0.0
    assert citation_recall([], [A]) == 0.0


def test_contains_expected_ignores_case_keeps_diacritics() -> None:
    assert contains_expected("Prezydent G. NAUSĖDA powiedział", ["nausėda"]) == 1.0
    assert contains_expected("Nauseda", ["Nausėda"]) == 0.0
    assert contains_expected("in 1997 [1]", ["2004", "1997"]) == 1.0


def test_percentile_interpolates_like_numpy() -> None:
    values = [40.0, 10.0, 30.0, 20.0]
    assert percentile(values, 50) == pytest.approx(float(np.percentile(values, 50)))
    assert percentile(values, 95) == pytest.approx(38.5)
    assert percentile([], 50) is None


# -- per question and summary -------------------------------------------------------------
def _outcome(q: Question, declined: bool = False, cited: list[str] | None = None,
             retrieved: list[str] | None = None, answer: str = "",
             grounded: float | None = None, latency: float = 10.0) -> Outcome:
    return Outcome(q, answer, declined, cited or [], retrieved or [], latency, grounded)


def test_summary_on_a_hand_computed_set() -> None:
    q1 = Question("1", "?", (A,), ("1997",))
    q2 = Question("2", "?", (B, C))
    q3 = Question("3", "?", ())
    q4 = Question("4", "?", ())
    outcomes = [
        # q1: A ranked 2nd (after duplicates of C), cites A and B, contains 1997
        _outcome(q1, cited=[A, B], retrieved=[C, C, A], answer="in 1997 [1]", grounded=1.0,
                 latency=10),
        # q2: declined although answerable; C retrieved first
        _outcome(q2, declined=True, retrieved=[C, A], latency=20),
        # q3: unanswerable and declined
        _outcome(q3, declined=True, retrieved=[A], latency=30),
        # q4: unanswerable but answered, citing A with half the sentences supported
        _outcome(q4, cited=[A], retrieved=[A], answer="x [1]. y.", grounded=0.5, latency=40),
    ]
    rows = [score_question(o, k=2) for o in outcomes]
    assert rows[0]["hit@1"] == 0.0 and rows[0]["hit@k"] == 1.0 and rows[0]["rr"] == 0.5
    s = summarize(rows, [o.latency_ms for o in outcomes])
    assert s["hit@1"] == 0.5  # q2 only
    assert s["hit@k"] == 1.0
    assert s["mrr"] == pytest.approx((0.5 + 1.0) / 2)
    assert s["citation_precision"] == pytest.approx((0.5 + 0.0) / 2)  # q1 0.5, q4 0.0
    assert s["citation_recall"] == 0.5  # q1 yes, q2 declined
    assert s["groundedness"] == 0.75  # answered: q1 1.0, q4 0.5
    assert s["expected_content"] == 1.0  # only q1 has expect_any
    assert s["refusal_accuracy"] == 0.5  # q3 declined, q4 answered
    assert s["false_refusal_rate"] == 0.5  # q2
    assert s["latency_p50_ms"] == 25.0
    assert s["judge_faithfulness"] is None
    assert set(s) == set(METRICS)


def test_statuses_are_counted_apart_per_question_kind() -> None:
    """"Not stated" answers of answerable questions count against ``answerable_not_stated``,
    not as declines; for near-topic questions they count as not answered (with declines)."""
    rows = []
    cases = [("a1", (A,), "paraphrase", "answered"), ("a2", (A,), "paraphrase", "not_stated"),
             ("a3", (A,), "direct", "declined"), ("a4", (A,), "direct", "answered"),
             ("n1", (), "near-topic", "not_stated"), ("n2", (), "near-topic", "declined"),
             ("n3", (), "near-topic", "answered"), ("n4", (), "near-topic", "answered")]
    for qid, sources, kind, status in cases:
        q = Question(qid, "?", sources, kind=kind)
        outcome = Outcome(q, "x [1]", status == "declined", [A], [A], 1.0, status=status)
        rows.append({**score_question(outcome, 5), "kind": kind})
    summary = summarize(rows, [1.0])
    assert summary["answerable_not_stated"] == 0.25
    assert summary["false_refusal_rate"] == 0.25
    assert summary["near_topic_declined"] == 0.25
    assert summary["near_topic_not_answered"] == 0.5
    assert [r["status"] for r in rows] == [c[3] for c in cases]


def test_declined_answer_scores_no_content_and_no_groundedness() -> None:
    q = Question("1", "?", (A,), ("1997",))
    row = score_question(_outcome(q, declined=True, cited=[A], answer="1997", grounded=1.0), 5)
    assert row["expected_content"] == 0.0
    assert row["citation_recall"] == 0.0
    assert row["groundedness"] is None
    assert row["false_refusal"] == 1.0


# -- thresholds and input -----------------------------------------------------------------
def test_thresholds_parse_check_and_reject_unknown_names() -> None:
    mins = parse_thresholds(["hit@1=0.8", "groundedness=0.9"])
    assert mins == {"hit@1": 0.8, "groundedness": 0.9}
    summary = {"hit@1": 0.75, "groundedness": 0.95, "latency_p95_ms": 900.0}
    assert check_thresholds(summary, mins) == ["hit@1: 0.75 < 0.8"]
    assert check_thresholds(summary, {}, {"latency_p95_ms": 500}) == ["latency_p95_ms: 900 > 500"]
    assert check_thresholds({"judge_faithfulness": None}, {"judge_faithfulness": 0.5})
    with pytest.raises(UnknownMetricError, match="hit@3"):
        parse_thresholds(["hit@3=0.5"])
    with pytest.raises(ValueError, match="METRIC=VALUE"):
        parse_thresholds(["hit@1"])


def test_load_questions_validates(tmp_path: Path) -> None:
    good = tmp_path / "q.jsonl"
    good.write_text(json.dumps({"id": "x", "question": "Why?", "sources": [A]}) + "\n\n"
                    + json.dumps({"question": "No?", "sources": []}) + "\n", encoding="utf-8")
    qs = load_questions(good)
    assert [q.id for q in qs] == ["x", "q3"] and qs[0].answerable and not qs[1].answerable
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"question": "Q", "sources": "a.txt"}) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.jsonl:1: 'sources'"):
        load_questions(bad)


def test_dev_set_is_well_formed() -> None:
    path = Path(__file__).resolve().parent.parent / "eval" / "dev.jsonl"
    questions = load_questions(path)
    files = {p.name for p in DEFAULT_CORPUS.glob("*.txt")}
    assert len(questions) >= 56
    assert sum(not q.answerable for q in questions) >= 10
    assert len({q.lang for q in questions}) >= 5
    for q in questions:
        assert set(q.sources) <= files, q.id
        texts = [(DEFAULT_CORPUS / s).read_text(encoding="utf-8").casefold() for s in q.sources]
        if q.expect_any:  # at least one expected string is really in an expected source
            assert any(e.casefold() in t for e in q.expect_any for t in texts), q.id


# -- groundedness: parsing ------------------------------------------------------------------
def test_boilerplate_rule_skips_only_uncited_preamble() -> None:
    assert is_boilerplate("Quoted from the documents, in their original language:")
    assert not is_boilerplate("Quoted from the documents: NATO met in 2019 [1]")
    assert not is_boilerplate("NATO met in 2019.")


def test_answer_claims_split_markers_and_skip_boilerplate() -> None:
    text = ("Quoted from the documents, in their original language:\n"
            "“Rada powstała w 2002 roku.” [2]\n"
            "Russia wants guarantees [1][3]. It met in 2019. [4] Nothing else\n"
            "“Groźba inwazji. NATO zwołuje spotkanie” [5]")
    claims = answer_claims(text)
    assert [c.cited for c in claims] == [(2,), (1, 3), (4,), (), (5,)]
    assert claims[0].text == "Rada powstała w 2002 roku."
    assert claims[1].text == "Russia wants guarantees."
    assert claims[4].text == "Groźba inwazji. NATO zwołuje spotkanie"  # one quote, one claim
    assert markers("x [1, 2] y [2]") == [1, 2]


class _BagOfWords:
    """A stand-in model: identical word sets give cosine 1, disjoint ones 0."""

    def _vec(self, text: str) -> np.ndarray:
        v = np.zeros(64, dtype=np.float32)
        for word in text.lower().replace(".", " ").split():
            v[sum(map(ord, word)) % 64] += 1
        return v / (np.linalg.norm(v) or 1)

    def query(self, text: str) -> np.ndarray:
        return self._vec(text)

    def passage(self, texts: list[str]) -> np.ndarray:
        return np.stack([self._vec(t) for t in texts])


def test_grounder_counts_uncited_and_invalid_citations_as_unsupported() -> None:
    g = Grounder(threshold=0.9, model=_BagOfWords())
    passages = {1: "Alpha beta gamma. Delta epsilon."}
    result = g.ground("Alpha beta gamma [1]. Delta epsilon. Delta epsilon [7].", passages)
    assert [s.supported for s in result.sentences] == [True, False, False]
    assert result.sentences[1].support is None  # no marker
    assert result.sentences[2].support is None  # [7] is not a citation of this answer
    assert result.score == pytest.approx(1 / 3)
    assert g.ground("Quoted from the documents, in their original language:", passages).score \
        is None


# -- groundedness with the real model, and a wrong answerer ----------------------------------
SOURCE = "003_f0b8fe8fdb47aa20.txt"
OTHER = "002_6d17f7c8ee7027fa.txt"


@pytest.fixture(scope="module")
def grounder() -> Grounder:
    return Grounder()


def _passage(n: int, source: str, anchor: str) -> Passage:
    text = (DEFAULT_CORPUS / source).read_text(encoding="utf-8")
    paragraph = next(p for p in text.split("\n") if anchor in p)
    sentence = next(s for s in split_sentences(paragraph) if anchor in s)
    return Passage(n=n, chunk_id=f"{source}:{n}", source=source, path=source, text=paragraph,
                   score=0.9, sentence=sentence)


def _answer(text: str, cited: list[Passage], retrieved: list[Passage]) -> Answer:
    return Answer(
        question="q", answer=text, answerer="test", declined=False,
        citations=[Citation(n=p.n, source=p.source, text=p.text, score=p.score,
                            passage_text=p.text) for p in cited],
        retrieved=retrieved, latency_ms=5.0,
    )


def test_verbatim_unrelated_and_uncited_sentences_with_the_real_model(
    grounder: Grounder,
) -> None:
    p = _passage(1, SOURCE, "Ungaria, Polonia")
    answer = (f"{p.sentence} [1]\n"  # verbatim quote of the cited passage
              "The bakery sells fresh croissants every morning [1].\n"  # unrelated, same cite
              f"{p.sentence}")  # the same true sentence, but without a citation
    result = grounder.ground(answer, {1: p.text})
    assert [s.supported for s in result.sentences] == [True, False, False]
    assert result.sentences[0].support > 0.93  # verbatim sits far above the threshold
    assert result.sentences[2].support is None
    assert result.score == pytest.approx(1 / 3)


def test_translation_of_the_cited_sentence_is_supported(grounder: Grounder) -> None:
    p = _passage(1, SOURCE, "Ungaria, Polonia")
    good = grounder.ground("Hungary, Poland and the Czech Republic joined NATO in 1999 [1].",
                           {1: p.text})
    bad = grounder.ground("The bakery sells fresh croissants every morning [1].", {1: p.text})
    assert good.sentences[0].support > DEFAULT_THRESHOLD > bad.sentences[0].support


def test_wrong_answerer_scores_lower_on_every_answer_metric(grounder: Grounder) -> None:
    q = Question("q", "When did Hungary, Poland and Czechia join NATO?", (SOURCE,), ("1999",))
    right = _passage(1, SOURCE, "Ungaria, Polonia")
    wrong = _passage(2, OTHER, "Olha Stefaniszyna")
    retrieved = [right, wrong]
    correct = _answer("Quoted from the documents, in their original language:\n"
                      f"“{right.sentence}” [1]", [right], retrieved)
    # cites the wrong article, and says something that neither passage states
    broken = _answer("Quoted from the documents, in their original language:\n"
                     "Sweden will host the next summit in 2031 [2].", [wrong], retrieved)
    scores = {}
    for name, answer in (("correct", correct), ("broken", broken)):
        outcome, _ = evaluate_answer(q, answer, grounder, None, answer.latency_ms)
        scores[name] = score_question(outcome, k=5)
    for metric in ("citation_precision", "citation_recall", "groundedness", "expected_content"):
        assert scores["correct"][metric] == 1.0, metric
        assert scores["broken"][metric] == 0.0, metric
    assert scores["broken"]["hit@1"] == scores["correct"]["hit@1"] == 1.0  # same retrieval


# -- optional judge ----------------------------------------------------------------------
def test_judge_verdicts_errors_and_skip_when_unconfigured() -> None:
    """Against the scripted OpenAI-compatible server (a test double: real HTTP, no LLM)."""
    from rag.eval.judge import Judge, parse_verdict

    from tests.fakes_llm_server import ScriptedLLMServer

    assert Judge.from_env() is None  # conftest removes RAG_* variables: skipped silently
    assert parse_verdict("Unfaithful.") == 0.0 and parse_verdict("FAITHFUL") == 1.0
    server = ScriptedLLMServer().start()
    try:
        url = server.url + "/v1/"

        def verdict(model: str, passage: str = "p", key: str = "") -> tuple[float | None, Judge]:
            judge = Judge(url, model, api_key=key, timeout_s=10)
            return judge.verdict("q", "a [1]", {1: passage}), judge

        assert verdict("say:FAITHFUL", "Rada powstała w 2002")[0] == 1.0
        assert verdict("say:UNFAITHFUL")[0] == 0.0
        result, judge = verdict("say:maybe")
        assert result is None and judge.errors == 1 and "unreadable" in judge.last_error
        result, judge = verdict("echo-key", key="sk-judge-secret")  # 401 echoing the key
        assert result is None and judge.errors == 1
        assert "401" in judge.last_error and "sk-judge-secret" not in judge.last_error
        slow = Judge(url, "slow", timeout_s=0.5)  # the server waits 3 s: one timeout, no retry
        assert slow.verdict("q", "a [1]", {1: "p"}) is None and slow.last_error == "timed out"
        first = server.requests[0]
        assert first["path"] == "/v1/chat/completions"
        assert "[1] Rada powstała w 2002" in first["body"]["messages"][0]["content"]
    finally:
        server.close()
