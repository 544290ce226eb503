"""Sentence-aware chunking that keeps source, position and language.

Why our own sentence splitter: LlamaIndex's ``SentenceSplitter`` and
``SentenceWindowNodeParser`` split with NLTK's English Punkt model, which breaks
Polish and Romanian text after abbreviations and initials such as "m.in.",
"tys.", "G. Nausėda", "J. Stoltenberg" (checked on the sample corpus: Punkt cut
"G. Nausėda" and "m.in." into separate sentences). The rule-based splitter
below knows those abbreviations and treats line breaks as paragraph ends.

Chunks pack whole sentences up to a token budget measured with the embedder's
own tokenizer (multilingual-e5 truncates at 512 tokens; our budget stays well
below). Each chunk also remembers its sentences, so the extractive answerer
can quote exactly one sentence and the UI can highlight it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

# Default budget chosen by measurement on the sample corpus and the dev set
# (see docs/evaluation.md): small chunks win for cross-lingual hit@1.
DEFAULT_CHUNK_TOKENS = 160
MAX_SENTENCE_TOKENS = 200
MIN_SENTENCE_WORDS = 7

_ABBREVIATIONS = {
    # Polish
    "m.in", "np", "tj", "tzw", "tys", "mln", "mld", "ok", "godz", "ul", "al", "pl", "nr", "r",
    "im", "ang", "prof", "dr", "inż", "mgr", "hab", "gen", "płk", "ppłk", "kpt", "por", "św",
    "woj", "pow", "gm", "ds", "wg", "ws", "zob", "itd", "itp", "jw", "cdn", "red",
    "proc", "tzn", "tel", "min", "sek",
    # Romanian
    "dl", "dna", "d-na", "dlui", "conf", "lect", "ing", "gral", "lt", "col", "mr",
    "art", "alin", "lit", "pct", "str", "bd", "jud", "mun", "com", "ex", "etc", "aprox",
    # English / Latin
    "mrs", "ms", "st", "vs", "e.g", "i.e", "inc", "ltd", "co", "jr", "sr",
    "gov", "sen", "rep", "no", "fig", "approx", "u.s", "u.k", "a.m", "p.m",
    # German / French / Spanish
    "z.b", "bzw", "usw", "ca", "vgl", "mme", "mlle", "sra", "dña",
}
_SENTENCE_END = re.compile(r"([.!?…]+[\"'”»)\]]*)(\s+)(?=[\"'„“«(\[]?[A-ZÀ-ÖØ-ÞĀ-ſА-ЯЁІЇЄҐ0-9])")


def split_sentences(text: str) -> list[str]:
    """Split text into sentences; line breaks always end a sentence."""
    sentences: list[str] = []
    for paragraph in text.split("\n"):
        paragraph = paragraph.strip()
        if not paragraph:
            continue
        start = 0
        for match in _SENTENCE_END.finditer(paragraph):
            end = match.end(1)
            candidate = paragraph[start:end]
            last_word = re.split(r"[\s(„\"]+", candidate.rstrip(".!?…\"'”»)]"))[-1]
            token = last_word.lower()
            if match.group(1).startswith(".") and (
                token in _ABBREVIATIONS
                or (len(last_word) == 1 and last_word.isalpha())  # an initial: "J. Stoltenberg"
                or (re.fullmatch(r"\d{1,2}", last_word) is not None and _next_is_lower_or_month(
                    paragraph, match.end()))
            ):
                continue
            sentences.append(candidate.strip())
            start = match.end()
        tail = paragraph[start:].strip()
        if tail:
            sentences.append(tail)
    return sentences


def merge_short_sentences(sentences: list[str], min_words: int = MIN_SENTENCE_WORDS) -> list[str]:
    """Join headlines, bylines and other fragments to the sentence after them.

    Measured on the sample corpus: on their own, short fragments ("Z Brukseli
    Łukasz Osiński", a subheading) out-score real answers for many questions,
    because multilingual-e5 rates short passages as similar to almost anything.
    """
    merged: list[str] = []
    pending = ""
    for sentence in sentences:
        text = f"{pending} {sentence}".strip() if pending else sentence
        if len(text.split()) < min_words:
            pending = text
            continue
        merged.append(text)
        pending = ""
    if pending:
        if merged:
            merged[-1] = f"{merged[-1]} {pending}"
        else:
            merged.append(pending)
    return merged


def _next_is_lower_or_month(paragraph: str, pos: int) -> bool:
    """An ordinal like '12. stycznia' continues the sentence."""
    return bool(re.match(r"\s*[a-ząćęłńóśźżăâîșşțţ]", paragraph[pos:]))


def detect_language(text: str) -> str:
    """ISO 639-1 code of the text's language ('und' when too short to tell)."""
    if len(text.strip()) < 20:
        return "und"
    import py3langid

    lang, _score = py3langid.classify(text[:5000])
    return str(lang)


@dataclass
class Chunk:
    """A run of whole sentences from one file, the unit that is embedded and cited."""

    text: str
    position: int  # chunk index within its file
    sentences: list[str] = field(default_factory=list)
    tokens: int = 0


def chunk_sentences(
    sentences: list[str],
    count_tokens: Callable[[str], int],
    max_tokens: int = DEFAULT_CHUNK_TOKENS,
    overlap_sentences: int = 0,
) -> list[Chunk]:
    """Pack consecutive sentences into chunks of at most ``max_tokens`` tokens.

    A sentence longer than the budget is cut at word boundaries so nothing is
    silently truncated by the embedder.
    """
    pieces: list[tuple[str, int]] = []
    for sentence in sentences:
        n = count_tokens(sentence)
        if n <= max(max_tokens, MAX_SENTENCE_TOKENS):
            pieces.append((sentence, n))
        else:
            pieces.extend((p, count_tokens(p)) for p in _cut_long(sentence, n, max_tokens))
    chunks: list[Chunk] = []
    current: list[tuple[str, int]] = []
    for piece in pieces:
        if current and sum(n for _, n in current) + piece[1] > max_tokens:
            chunks.append(_make_chunk(current, len(chunks)))
            current = current[-overlap_sentences:] if overlap_sentences else []
        current.append(piece)
    if current:
        chunks.append(_make_chunk(current, len(chunks)))
    return chunks


def _make_chunk(pieces: list[tuple[str, int]], position: int) -> Chunk:
    sentences = [s for s, _ in pieces]
    return Chunk(
        text=" ".join(sentences), position=position, sentences=sentences,
        tokens=sum(n for _, n in pieces),
    )


def _cut_long(sentence: str, tokens: int, max_tokens: int) -> list[str]:
    words = sentence.split()
    parts = max(2, -(-tokens // max_tokens))
    size = -(-len(words) // parts)
    return [" ".join(words[i : i + size]) for i in range(0, len(words), size)]
