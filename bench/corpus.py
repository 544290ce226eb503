"""Synthetic corpora made from the sample corpus's own sentences (not random strings).

Each synthetic sentence joins thirds of three corpus sentences, so texts stay
Polish/Romanian news prose with its vocabulary and length, yet are all distinct
(no embedding cache or deduplication can make them cheaper than real text).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.chunking import merge_short_sentences, split_sentences
from rag.config import DEFAULT_CORPUS
from rag.loading import load_document


@dataclass(frozen=True)
class CorpusSentence:
    source: str
    text: str


def corpus_sentences(folder: Path = DEFAULT_CORPUS) -> list[CorpusSentence]:
    out = []
    for path in sorted(folder.iterdir()):
        if path.is_file():
            doc = load_document(path, 10**8)
            out += [CorpusSentence(path.name, s)
                    for s in merge_short_sentences(split_sentences(doc.text))]
    return out


def _thirds(words: list[str]) -> tuple[list[str], list[str], list[str]]:
    a, b = len(words) // 3, 2 * len(words) // 3
    return words[:a], words[a:b], words[b:]


class SentenceMixer:
    """Distinct synthetic sentences; ``parts`` says which corpus sentences each one mixes."""

    def __init__(self, sentences: list[CorpusSentence], seed: int = 0) -> None:
        self.words = [_thirds(s.text.split()) for s in sentences]
        self.rng = random.Random(seed)
        self.seen: set[tuple[int, int, int]] = set()

    def next(self) -> tuple[str, tuple[int, int, int]]:
        n = len(self.words)
        if len(self.seen) >= n**3:
            raise ValueError("the corpus has no more distinct sentence mixes")
        while True:
            parts = (self.rng.randrange(n), self.rng.randrange(n), self.rng.randrange(n))
            if parts not in self.seen:
                self.seen.add(parts)
                break
        words = self.words[parts[0]][0] + self.words[parts[1]][1] + self.words[parts[2]][2]
        text = " ".join(words).rstrip(".") + "."
        return text[0].upper() + text[1:], parts

    def sentences(self, count: int) -> Iterator[tuple[str, tuple[int, int, int]]]:
        for _ in range(count):
            yield self.next()


def as_paragraphs(sentences: list[str], per_paragraph: int = 4) -> str:
    """Sentences laid out as a news text: paragraphs of a few sentences."""
    return "\n\n".join(
        " ".join(sentences[i : i + per_paragraph]) for i in range(0, len(sentences), per_paragraph)
    )


def write_synthetic_files(
    folder: Path, files: int, sentences_per_file: int, seed: int = 0
) -> list[Path]:
    """A folder of text files of mixed sentences, in paragraphs of four sentences."""
    folder.mkdir(parents=True, exist_ok=True)
    mixer = SentenceMixer(corpus_sentences(), seed)
    paths = []
    for i in range(files):
        lines = [text for text, _ in mixer.sentences(sentences_per_file)]
        path = folder / f"synthetic_{i:05d}.txt"
        path.write_text(as_paragraphs(lines) + "\n", encoding="utf-8")
        paths.append(path)
    return paths


def mixed_vector(part_vectors: np.ndarray, parts: tuple[int, int, int],
                 weights: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> np.ndarray:
    """A stand-in vector for a mixed sentence: the normalised mean of its parts' vectors.

    Used only by the scale benchmark, where embedding 300k sentences for real
    would take hours on this CPU; the embedding cost is measured separately.
    """
    v = sum(w * part_vectors[p] for w, p in zip(weights, parts, strict=True))
    return (v / np.linalg.norm(v)).astype(np.float32)
