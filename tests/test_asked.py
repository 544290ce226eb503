"""The answer leads with the sentence that answers a who / when / how-many question."""

from __future__ import annotations

from rag.answering.asked import asked_kind, holds
from rag.answering.extractive import ExtractiveAnswerer
from rag.types import Passage


def test_question_kinds_in_the_users_languages() -> None:
    assert asked_kind("Who signed it for NATO?") == "person"
    assert asked_kind("Kto będzie negocjatorem Moskwy?") == "person"
    assert asked_kind("Când a fost semnat actul?") == "date"
    assert asked_kind("Wann wurde der Rat gegründet?") == "date"
    assert asked_kind("Ilu żołnierzy Rosja zmobilizowała?") == "number"
    assert asked_kind("Combien de soldats?") == "number"
    assert asked_kind("What did Russia demand about 1997?") is None


def test_sentences_holding_a_name_a_date_a_number() -> None:
    assert holds("Negocjatorem będzie Siergiej Riabkow.", "person")
    assert not holds("Rosja chce gwarancji bezpieczeństwa.", "person")
    assert holds("Rada powstała w 2002 roku.", "date")
    assert holds("Spotkanie odbędzie się 12 stycznia.", "date")
    assert not holds("Rada powstała dawno temu.", "date")
    assert holds("Rosja zgromadziła 100 tys. żołnierzy.", "number")


def _passage(n: int, sentence: str, score: float) -> Passage:
    return Passage(n=n, chunk_id=f"c{n}", source=f"{n}.txt", path=f"/{n}.txt", text=sentence,
                   score=score, sentence=sentence)


def test_the_sentence_that_answers_leads_the_quotes() -> None:
    close = [_passage(1, "Rosja wysłała delegację do Brukseli na rozmowy.", 0.62),
             _passage(2, "Delegacji przewodniczył wiceminister Siergiej Riabkow.", 0.60)]
    answerer = ExtractiveAnswerer(margin=0.05)
    who = answerer.draft("Who led the Russian delegation?", close).text.splitlines()
    assert who[1].startswith("“Delegacji przewodniczył")  # the name first
    what = answerer.draft("What did Russia do?", close).text.splitlines()
    assert what[1].startswith("“Rosja wysłała")  # best first when nothing is asked for
