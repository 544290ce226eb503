"""Quote-then-claim checks on real passages: what may be shown, what is dropped, and why."""

from __future__ import annotations

import json

import pytest

from rag.answering.claim_check import ClaimChecker, removal_note
from rag.answering.claims import (
    check_reply,
    check_structured,
    find_quote,
    parse_structured,
    reply_declines,
)
from rag.types import Passage

RO = ("În ianuarie, Rusia a cerut formal revenirea la arhitectura de securitate\n"
      "din anul 1997. NATO a respins cererea.")
PL = "Rosja zgromadziła przy granicy z Ukrainą „około 100 tysięcy” żołnierzy."
PASSAGES = [
    Passage(n=1, chunk_id="a", source="003.txt", path="/c/003.txt", text=RO, score=0.85,
            language="ro"),
    Passage(n=2, chunk_id="b", source="000.txt", path="/c/000.txt", text=PL, score=0.80,
            language="pl"),
]


def _reply(*claims: tuple[int, str, str], answerable: bool = True) -> str:
    return json.dumps({"answerable": answerable, "claims": [
        {"passage": n, "quote": q, "answer": a} for n, q, a in claims]}, ensure_ascii=False)


@pytest.mark.parametrize("quote", [
    "Rusia a cerut formal revenirea la arhitectura de securitate din anul 1997.",  # line break
    "  “Rusia a cerut formal revenirea la   arhitectura de securitate din anul 1997.”",
])
def test_quote_found_despite_whitespace_and_quote_marks(quote: str) -> None:
    found = find_quote(quote, RO)
    assert found is not None and found in RO and found.startswith("Rusia a cerut")


@pytest.mark.parametrize("quote", [
    "rusia a cerut formal revenirea",  # case
    "Russia formally demanded a return to the 1997 security architecture.",  # translated
    "Rusia a cerut revenirea la arhitectura de securitate",  # a word left out
    "Rusia a cerut formal revenirea la arhitectura de securitate din anul 1998.",
    "anul 1997",  # too short to support anything
])
def test_anything_but_the_passage_words_is_not_a_quote(quote: str) -> None:
    assert find_quote(quote, RO) is None


def test_typographic_quotes_in_the_passage_match_straight_ones() -> None:
    assert find_quote('granicy z Ukrainą "około 100 tysięcy" żołnierzy', PL) is not None


def test_verified_claims_get_our_markers_and_the_passage_text_as_quote() -> None:
    checked = check_reply(_reply(
        (1, "Rusia a cerut formal revenirea la arhitectura de securitate din anul 1997.",
         "Russia demanded a return to the 1997 security architecture [2]."),
        (2, "This sentence is not in passage two at all.", "Invented claim."),
        (7, "Rusia a cerut formal revenirea", "Cites a passage never sent."),
    ), PASSAGES)
    assert checked.failure is None and not checked.declined
    assert checked.text == "Russia demanded a return to the 1997 security architecture [1]."
    (citation,) = checked.citations
    assert citation.n == 1 and citation.source == "003.txt" and citation.text in RO
    assert [s.cited for s in checked.sentences] == [(1,)]
    assert len(checked.warnings) == 2
    assert "claim 2: its quote is not in passage [2]" in checked.warnings[0]
    assert "passage [7], which was not sent" in checked.warnings[1]


def test_nothing_verified_is_a_failure_saying_why() -> None:
    checked = check_reply(_reply((1, "The capital of Australia is Canberra.", "Canberra.")),
                          PASSAGES)
    assert checked.failure == ("none of its 1 claims could be checked: 1 had a quote that is "
                               "not in the passage it cited")
    assert checked.text == "" and checked.citations == []


def test_a_reply_citing_only_unsent_passages_says_so() -> None:
    """The hostile retest's reply citing passage [7] of 2 fell back saying "no quote found",
    which hid the cause."""
    checked = check_reply(_reply((7, "Rusia a cerut formal revenirea", "Claim.")), PASSAGES)
    assert checked.failure == ("none of its 1 claims could be checked: 1 cited a passage that "
                               "was not sent ([7]; 2 were sent)")
    mixed = check_reply(_reply((7, "Rusia a cerut formal revenirea", "A."),
                               (1, "Not in the passage at all, invented.", "B.")), PASSAGES)
    assert mixed.failure == ("none of its 2 claims could be checked: 1 cited a passage that "
                             "was not sent ([7]; 2 were sent) and 1 had a quote that is not in "
                             "the passage it cited")


def test_declines_in_both_formats() -> None:
    assert reply_declines(_reply(answerable=False))
    assert reply_declines('{"answerable": true, "claims": []}')
    assert check_reply(_reply(answerable=False), PASSAGES).declined
    assert reply_declines("NOT_FOUND") and not reply_declines("Paris [1].")


def test_free_text_and_broken_json_are_not_structured() -> None:
    assert parse_structured("Russia demanded 1997 [1].") is None
    assert parse_structured('{"answerable": true, "claims": [') is None
    assert parse_structured('```json\n{"answerable": false, "claims": []}\n```') is not None


def test_free_text_reports_markers_outside_the_sent_passages() -> None:
    checked = check_reply("Russia demanded 1997 [1]. It has 2 million people [7].", PASSAGES)
    assert "[7]" not in checked.text and [c.n for c in checked.citations] == [1]
    assert any("[7]" in w and "not sent" in w for w in checked.warnings)
    assert [s.supported for s in checked.sentences] == [False, False]  # no grounder: unchecked


@pytest.fixture(scope="module")
def checker() -> ClaimChecker:
    """The real claim check (e5, the calibrated threshold)."""
    return ClaimChecker.for_embedder(None)


def test_the_claim_check_removes_claims_their_quote_does_not_support(
    checker: ClaimChecker,
) -> None:
    checked = check_structured(parse_structured(_reply(
        (1, "Rusia a cerut formal revenirea la arhitectura de securitate din anul 1997.",
         "Russia formally demanded a return to the 1997 security architecture."),
        (2, "Rosja zgromadziła przy granicy z Ukrainą",
         "The capital of Australia is Canberra."),
        (1, "Rusia a cerut formal revenirea la arhitectura de securitate din anul 1997.",
         "In January, Russia demanded a return to the 1991 security architecture."),
    )), PASSAGES, checker)  # type: ignore[arg-type]
    assert checked.failure is None
    assert checked.text == "Russia formally demanded a return to the 1997 security " \
                           "architecture [1]."
    assert [s.supported for s in checked.sentences] == [True]
    assert checked.sentences[0].support >= checker.threshold
    canberra, year = checked.removed
    assert canberra["text"] == "The capital of Australia is Canberra."
    assert canberra["causes"] == ["unsupported"] and canberra["cited"] == [2]
    assert canberra["quote"] == "Rosja zgromadziła przy granicy z Ukrainą"
    assert "1991" in year["reasons"][-1] and "number" in year["causes"]


def test_when_every_claim_is_removed_the_failure_says_so(checker: ClaimChecker) -> None:
    checked = check_reply(_reply((2, "Rosja zgromadziła przy granicy z Ukrainą",
                                  "Russia demanded that Poland leave the European Union.")),
                          PASSAGES, checker)
    assert checked.failure == ("none of its 1 claims could be checked: 1 was removed by the "
                               "claim check: not supported by its quote (1)")
    assert checked.text == "" and len(checked.removed) == 1


def test_free_text_sentences_are_checked_and_removed_one_by_one(checker: ClaimChecker) -> None:
    checked = check_reply("Russia formally demanded a return to the 1997 security architecture "
                          "[1]. Australia's capital is Canberra [2]. Moscow wants 1997 [7].",
                          PASSAGES, checker)
    assert checked.text == "Russia formally demanded a return to the 1997 security " \
                           "architecture [1]."
    assert [c.n for c in checked.citations] == [1]
    assert [r["causes"] for r in checked.removed] == [["unsupported"], ["uncited"]]
    assert checked.sentences[0].quote.startswith("În ianuarie, Rusia a cerut")


def test_removal_note_counts_each_cause() -> None:
    removed = [{"causes": ["unsupported"]}, {"causes": ["unsupported", "number"]}]
    assert removal_note(removed, 1) == ("2 of 3 claims were removed by the claim check: not "
                                        "supported by its quote (2); a number its passage "
                                        "does not give (1).")
    assert removal_note([], 2) is None


def test_json_cut_off_by_the_token_limit_is_a_failure_not_free_text() -> None:
    checked = check_reply('{"answerable": true, "claims": [{"passage": 1, "quote": "1.1.1.1',
                          PASSAGES)
    assert checked.failure and "cut off" in checked.failure and checked.text == ""


def test_the_removal_is_said_in_the_cli_the_page_the_api_and_json(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from rag.ui.render import answer_html

    from rag.cli import _print_answer
    from rag.openai_api import rag_field
    from rag.types import Answer, Citation

    note = "1 of 2 claims was removed by the claim check: not supported by its quote (1)."
    removed = [{"text": "Russia demanded that Poland leave the European Union.", "cited": [1],
                "quote": "Rusia a cerut", "similarity": 0.71, "causes": ["unsupported"],
                "reasons": ["its quote does not say it (similarity 0.71 < 0.85)"]}]
    answer = Answer("q", "Russia demanded 1997 [1].", "openai:m", False,
                    [Citation(1, "003.txt", "Rusia a cerut", 0.9, RO, "ro")],
                    removed_claims=removed, removal_note=note)
    _print_answer(answer)
    assert f"[removed: {note}]" in capsys.readouterr().out
    assert f'<div class="rag-removed" role="note">{note}</div>' in answer_html(answer.to_dict())
    api = rag_field(answer, lambda text: text)
    assert api["removal_note"] == note and api["removed_claims"] == removed
    assert answer.to_dict()["removed_claims"] == removed


@pytest.mark.skipif(not __import__("rag.embedding.gemma", fromlist=["installed"]).installed(),
                    reason="EmbeddingGemma is not installed")
def test_with_gemma_the_check_uses_its_sentence_similarity_role() -> None:
    from rag.answering.claim_check import THRESHOLDS
    from rag.config import Settings
    from rag.embedding import make_embedder

    checker = ClaimChecker.for_embedder(make_embedder(Settings(embedder="gemma")))
    assert checker.model.family == "gemma" and checker.threshold == THRESHOLDS["gemma"]
    quote = "Rusia a cerut formal revenirea la arhitectura de securitate din anul 1997."
    kept = checker.check("Russia formally demanded a return to the 1997 security "
                         "architecture.", quote, [RO])
    invented = checker.check("Russia demanded that Poland leave the European Union.", quote,
                             [RO])
    assert kept.kept and not invented.kept and invented.causes == ("unsupported",)
