"""Follow-up questions without an LLM: what "that" refers to, and when a topic changes.

A question that leans on the conversation (a pronoun or a leading "and" in one of the
corpus and user languages, at most four words, or the looser follow-up pattern) is
searched with the previous question's meaning added: the two questions are embedded in
one batch and the search vector is their sum, so the follow-up's own words count as much
as the subject it borrows (measured on the dev conversations with EmbeddingGemma against
joining the two texts, and against adding the previous answer's quotes: docs/evaluation.md).

A topic change is never joined: a question that does not lean on the conversation and
names people or places the conversation never mentioned ("Co powiedział Stoltenberg o
Ukrainie?" after questions about Russia's demands), or that the documents answer on its
own with a strong score, is searched alone. Names are compared folded (no accents, "ł"
as "l") on their first five letters, so inflected and transliterated forms match
(Stoltenberga / Stoltenberg, Łukaszenka / Lukashenko / Lukaşenko).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from rag.store import Hit

# A follow-up asks for something new: sentences the last answer quoted are ranked this much
# lower (cosine; dev follow-up turns: expected content 0.61 -> 0.83, top-cited the same).
REPEAT_PENALTY = 0.05
NAME_PREFIX = 5  # letters of a name compared: Stoltenberga / Stoltenberg, Moskwy / Moskwa
_WORD = re.compile(r"\w+")
_QUOTE = re.compile(r"“(.+?)”")
# Words that point back into the conversation (en, pl, de, fr, es, it, ro, ru, uk).
_LEANS = re.compile(
    r"^(and|but|also|so|what about|how about|a|i|oraz|und|et|y|e|și|и|а|і)\b|"
    r"\b(he|she|it|its|they|them|their|him|his|her|that|those|these|there|then|"
    r"on|ona|jego|jej|oni|er|sie|ihm|ihn|il|elle|lui|el|ea|lor|esas|esa|ese|quello|quella|"
    r"он|она|его|ей|они|він|вона|його|її)\b",
    re.I,
)
# The default rule's looser pattern (it includes "to"): kept until searching both wins on test.
_FOLLOW_UP = re.compile(
    r"^(and|but|so|also|what about|how about|why|then|i |a |ale |oraz |și |dar |und |et |y )|"
    r"\b(it|its|they|them|their|he|she|his|her|this|that|these|those|there|"
    r"to|tego|tym|ten|ta|oni|ono|acesta|aceasta|ei|lui|el)\b",
    re.I,
)


def condense_question(history: Sequence[tuple[str, str]], question: str) -> str:
    """The text a follow-up is searched as when it borrows the conversation's subject:
    "previous question? question" (what the chat's "searched for" line shows)."""
    joined = in_context(history, question)
    return joined if joined is not None and borrows_subject(question) else question


def leans_on_context(question: str) -> bool:
    """True for a question that needs the conversation to be understood."""
    return len(question.split()) <= 4 or bool(_LEANS.search(question))


def borrows_subject(question: str) -> bool:
    """A question searched with the conversation: it leans on it, or is short (six words)
    or matches the looser follow-up pattern."""
    return (leans_on_context(question) or len(question.split()) <= 6
            or bool(_FOLLOW_UP.search(question)))


def in_context(history: Sequence[tuple[str, str]], question: str) -> str | None:
    """The question joined to the previous user question, or None when there is none."""
    previous = [q for q, _ in history if q.strip()]
    if not previous:
        return None
    return f"{previous[-1].rstrip(' ?')}? {question}"


def quoted(history: Sequence[tuple[str, str]]) -> set[str]:
    """Sentences the last answer quoted (the extractive answerer's “...” lines)."""
    if not history:
        return set()
    return {q.strip() for q in _QUOTE.findall(history[-1][1] or "")}


def _fold(word: str) -> str:
    word = word.replace("ł", "l").replace("Ł", "L")
    plain = "".join(c for c in unicodedata.normalize("NFKD", word) if not unicodedata.combining(c))
    return plain.casefold()[:NAME_PREFIX]


def names(text: str) -> set[str]:
    """Capitalised words after the first (a question's first word is capitalised anyway),
    folded to their first letters: the people, places and bodies a question names."""
    words = _WORD.findall(text)
    return {_fold(w) for w in words[1:] if len(w) >= 3 and w[:1].isupper()}


def new_names(question: str, history: Sequence[tuple[str, str]]) -> set[str]:
    """Names in ``question`` that no earlier question or answer of the conversation has."""
    said = {_fold(w) for q, a in history for w in _WORD.findall(f"{q} {a}")}
    return names(question) - said


def merge(runs: Sequence[list[Hit]], seen: set[str], penalty: float) -> list[Hit]:
    """Each sentence once, with its best score over the runs, repeats pushed down."""
    best: dict[str, Hit] = {}
    for hits in runs:
        for hit in hits:
            score = hit.score - (penalty if hit.text.strip() in seen else 0.0)
            if hit.id not in best or score > best[hit.id].score:
                best[hit.id] = replace(hit, score=score)
    return sorted(best.values(), key=lambda h: -h.score)


def retrieve_in_context(
    retriever: Any, question: str, history: Sequence[tuple[str, str]], top_k: int,
    answered_at: float | None = None,
) -> tuple[Any, str]:
    """(the Retrieval, what was searched for: the question, or 'previous? question').

    ``answered_at``: the support at which the documents answer a question on its own (the
    engine's stated threshold); such a question that does not lean on the conversation is
    a new topic.
    """
    joined = in_context(history, question)
    leans = leans_on_context(question)
    if joined is None or not borrows_subject(question) or (
            not leans and new_names(question, history)):
        return retriever.retrieve(question, top_k), question
    previous = [q for q, _ in history if q.strip()][-1]
    alone_vector, previous_vector = retriever.embedder.embed_queries([question, previous])
    if not leans and answered_at is not None:
        alone = retriever.retrieve_vector(question, alone_vector, top_k)
        if alone.support >= answered_at:
            return alone, question  # the documents answer it on its own: a new topic
    summed = alone_vector + previous_vector
    summed = summed / (float(np.linalg.norm(summed)) or 1.0)
    if not REPEAT_PENALTY:
        return retriever.retrieve_vector(joined, summed, top_k), joined
    seen = quoted(history)
    plain, ranked = retriever.search(summed, top_k)
    hits = (plain, merge([ranked], seen, REPEAT_PENALTY))  # support from the plain scores
    return retriever.retrieve_vector(joined, summed, top_k, hits), joined
