"""What kind of fact a question asks for, and whether a sentence holds one.

The extractive answer quotes every sentence that scores close to the best one; for a
"who", "when" or "how many" question the sentence that names a person, a date or a
number is the answer, and the others are context. So that sentence leads the answer.
The question words are those of the corpus and of the users (en, pl, ro, de, fr, es,
it, ru, uk); the sentence tests are plain patterns: two capitalised words in a row or an initial and
a surname (a person), a year or a month name (a date), a digit (a number).
"""

from __future__ import annotations

import re
from itertools import pairwise

_ASKS = {
    "person": re.compile(
        r"\b(who|whom|whose|kto|kogo|komu|kim|cine|cui|wer|wen|wem|qui|quién|quien|chi|"
        r"кто|кого|хто|кого)\b", re.I),
    "date": re.compile(
        r"\b(when|what year|which year|kiedy|w którym roku|când|în ce an|wann|in welchem "
        r"jahr|quand|en quelle année|cuándo|en qué año|quando|in che anno|когда|в каком году|"
        r"коли|в якому році)\b", re.I),
    "number": re.compile(
        r"\b(how many|how much|ile|ilu|câți|câte|wie viele|wie viel|combien|cuántos|"
        r"cuántas|quanti|quante|сколько|скільки)\b", re.I),
}
_MONTHS = re.compile(
    r"\b(january|february|march|april|may|june|july|august|september|october|november|"
    r"december|stycz\w*|lut\w*|mar(ca|zec)|kwie\w*|maj\w*|czerw\w*|lip\w*|sierp\w*|wrze\w*|"
    r"paździer\w*|listopad\w*|grud\w*|ianuarie|februarie|martie|aprilie|mai|iunie|iulie|"
    r"septembrie|octombrie|noiembrie|decembrie)\b", re.I)
_YEAR = re.compile(r"\b(1[89]|20)\d\d\b")
_DIGIT = re.compile(r"\d")
# A person's name: two capitalised words in a row ("Siergiej Riabkow", "Jens Stoltenberg")
# or an initial and a surname ("J. Stoltenberg"); a single capitalised word is as often a
# place or a body ("Brukseli", "NATO-Rosja").
_PUNCT = ".,;:!?()[]\"'„“”«»"


def _titled(word: str) -> bool:
    return len(word) >= 3 and word[0].isupper() and word[1:].islower()


def _initial(word: str) -> bool:
    return len(word) == 1 and word.isupper()


def asked_kind(question: str) -> str | None:
    """"person", "date", "number", or None for questions of another kind."""
    return next((kind for kind, pattern in _ASKS.items() if pattern.search(question)), None)


def holds(sentence: str, kind: str) -> bool:
    """Whether ``sentence`` holds a fact of ``kind`` (see the module docstring)."""
    if kind == "person":
        words = [w.strip(_PUNCT) for w in sentence.split()]
        return any(_titled(b) and (_titled(a) or _initial(a)) for a, b in pairwise(words))
    if kind == "date":
        return bool(_YEAR.search(sentence) or _MONTHS.search(sentence))
    return bool(_DIGIT.search(sentence))
