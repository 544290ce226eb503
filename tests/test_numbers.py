"""The number rule of the claim check: numbers compared as values, as the corpus writes them."""

from __future__ import annotations

import pytest

from rag.answering.numbers import claim_numbers, missing_numbers, source_numbers


@pytest.mark.parametrize(("claim", "source"), [
    ("Russia has mobilised more than 100,000 soldiers.", "ponad 100 tys. żołnierzy"),
    ("Russland hat mehr als 100.000 Soldaten mobilisiert.", "ponad 100 tys. żołnierzy"),
    ("122 000 soldats à 200 km de la frontière", "122 tysiące żołnierzy ... 200 km"),
    ("122 Tausend russische Soldaten, 200 Kilometer", "122 tysiące żołnierzy ... 200 km"),
    ("100 de mii de soldați", "over 100,000 soldiers"),
    ("Am 12. Januar tagt der Rat.", "12 stycznia odbędzie się posiedzenie"),
    ("on January 12th", "12 stycznia"),
    ("it grew 2,5 %", "a rise of 2.5 percent"),
    ("several meetings between 2016 and 2019", "W latach 2016-2019 odbyło się"),
    ("Russia demanded 100 thousand", "ponad 100 tys. żołnierzy"),
    ("Russia mobilised over 100 soldiers", "ponad 100 tys. żołnierzy"),  # the digits as written
])
def test_the_same_number_written_differently_is_found(claim: str, source: str) -> None:
    assert missing_numbers(claim, source) == []


@pytest.mark.parametrize(("claim", "source", "missing"), [
    ("Kyiv said 122,000 soldiers were within 20 km.", "122 tysiące ... 200 km", ["20"]),
    ("Russia mobilised 150,000 soldiers.", "ponad 100 tys. żołnierzy", ["150,000"]),
    ("Cooperation ended in 2008.", "zakończyły współpracę w 2014 roku", ["2008"]),
    ("It grew 2.5 %.", "a rise of 25 percent", ["2.5"]),
    ("They will send 8,500 soldiers.", "USA konsultują się z Europą", ["8,500"]),
    ("1,000,000 troops", "a million troops", ["1,000,000"]),  # words are not numbers
])
def test_a_number_the_sources_do_not_give_is_reported_as_written(
    claim: str, source: str, missing: list[str]
) -> None:
    assert missing_numbers(claim, source) == missing


def test_a_number_is_backed_by_any_of_the_sources() -> None:
    assert missing_numbers("in 1999 and 2004", "în 1999", "în 2004") == []
    assert missing_numbers("in 1999 and 2004", "în 1999") == ["2004"]


def test_values() -> None:
    assert claim_numbers("3 mln ludzi, 2 miliarde, 1 234 567 and 4,75") == [
        3_000_000, 2_000_000_000, 1_234_567, 4.75]
    assert source_numbers("100 tys.") == {100, 100_000}
    assert claim_numbers("no digits here, thirty members") == []
