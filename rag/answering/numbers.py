"""The number rule: every number a claim states must be in its quote or its passage.

Embedding similarity barely moves when "2014" becomes "2008" or "100,000" becomes
"150,000", so numbers are compared as values, after reading them the way the
languages of the corpus write them.

What counts as a number: a run of digits, written in any of these ways, as one value:

- digit grouping: "122,000", "122.000", "122 000" (also with a no-break or thin space),
  "122'000" -> 122000; a comma or dot followed by exactly three digits is grouping;
- decimals: "2.5" and "2,5" -> 2.5 (a comma or dot followed by one, two or four or
  more digits);
- a scale word after the digits multiplies: "100 tys." / "122 tysiące" (pl), "100 de
  mii" (ro), "100 thousand", "5 Tausend", "3 mln" / "3 million(s)" / "3 milioane",
  "2 mld" / "billion" -> 100000 and so on. The passage side keeps the bare digits as
  well ("100 tys." holds 100 and 100000), so a claim saying either is backed;
- years ("1997"), days of the month ("12 January", "12."), ordinals written in digits
  ("12th", "12-ego"), percentages ("5 %", "5 procent") and each end of a range
  ("2016-2019") are numbers like any other: the value is what is compared.

Not numbers: numbers written in words ("thirty", "two days"), Roman numerals.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_SPACES = "\u00a0\u202f\u2009 "
# digits with optional grouping (",", ".", "'", or spaces before groups of three), then
# an optional decimal part; a lookahead keeps "2,5" from reading as grouping.
_NUMBER = re.compile(
    r"(?<![\d.,])(?P<int>\d{1,3}(?:(?:[,.'’]|[" + _SPACES + r"])\d{3}(?!\d))+|\d+)"
    r"(?:[.,](?P<frac>\d{1,2}|\d{4,})(?!\d))?"
)
_SCALES = (
    (re.compile(r"\s*(?:tys\.?|tysi[aąęe]\w*|thousand\w*|tausend|mii\b|mie\b|k\b)", re.I),
     1_000),
    (re.compile(r"\s*(?:mln\.?|milion\w*|million\w*|millones|mio\.?|milioane|miliony)", re.I),
     1_000_000),
    (re.compile(r"\s*(?:mld\.?|miliard\w*|billion\w*|milliard\w*|mrd\.?)", re.I),
     1_000_000_000),
)
_DE = re.compile(r"\s*de\s+(?=mii|milioane|miliarde)", re.I)  # Romanian "100 de mii"


def _value(match: re.Match[str]) -> float:
    digits = re.sub(r"[^\d]", "", match.group("int"))
    frac = match.group("frac")
    return float(f"{digits}.{frac}") if frac else float(digits)


def _scale(text: str, end: int) -> int:
    """The multiplier of a scale word right after a number ending at ``end`` (else 1)."""
    rest = text[end:]
    de = _DE.match(rest)
    if de:
        rest = rest[de.end():]
    for pattern, factor in _SCALES:
        if pattern.match(rest):
            return factor
    return 1


def _numbers(text: str) -> Iterable[tuple[float, int]]:
    """(value as written, scale factor) for each number in ``text``."""
    for match in _NUMBER.finditer(text):
        yield _value(match), _scale(text, match.end())


def claim_numbers(text: str) -> list[float]:
    """The values a claim states: "over 100,000", "100 thousand" and "100 tys." -> 100000."""
    return [value * factor for value, factor in _numbers(text)]


def source_numbers(text: str) -> set[float]:
    """The values a quote or passage backs: each number scaled, and as written."""
    values: set[float] = set()
    for value, factor in _numbers(text):
        values.update({value, value * factor})
    return values


def missing_numbers(claim: str, *sources: str) -> list[str]:
    """The claim's numbers that none of ``sources`` holds, as the claim wrote them."""
    backed: set[float] = set()
    for source in sources:
        backed |= source_numbers(source)
    missing = []
    for match in _NUMBER.finditer(claim):
        value = _value(match) * _scale(claim, match.end())
        if value not in backed:
            missing.append(match.group(0).strip())
    return missing


def format_value(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) else f"{value:g}"
