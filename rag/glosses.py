"""Glosses: a checked machine translation under each quote the asker may not be able to read.

The extractive answer quotes the documents in their own language (Polish, Romanian...),
which most askers of an English question cannot read. When a local model is installed
(``make install-llm``), each quote not in the question's language gets a translation
into it, labelled as machine translation, shown only when it passes the gloss check:

- the translation and its sentence, embedded in the similarity model's two roles
  (``rag.similarity``), score at least the threshold calibrated for the model family
  on the dev half of the gloss set (``python -m rag.eval.gloss_set --calibrate``);
- every number of the translation is in the sentence (``rag.answering.numbers``);
- the translation is in the target language (the 1.5B model sometimes echoes the
  source, or announces "The Polish sentence ... translates as:").

Translations are cached in the store's ``<collection>-glosses`` collection, keyed by
the sentence's record id and the language, with the verdict (a failed gloss is not
asked again), and deleted with their document (``Store._drop_glosses``).
``rag translate --to en`` fills the cache ahead of time. Nothing here may hold up an
answer: each translation has a timeout, and a missing model or a failing server ends
the glossing quietly (logged), never the answer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from rag.answering.numbers import missing_numbers

log = logging.getLogger(__name__)

# Chosen on the dev half of the gloss set (docs/evaluation.md, "Glosses"): the highest
# threshold that keeps >= 90 % of the faithful translations of the dev sentences.
THRESHOLDS = {"e5": 0.87, "gemma": 0.76}
LANGUAGES = {"en": "English", "pl": "Polish", "ro": "Romanian", "de": "German",
             "fr": "French", "es": "Spanish", "it": "Italian", "uk": "Ukrainian",
             "ru": "Russian", "nl": "Dutch", "pt": "Portuguese", "cs": "Czech"}
SYSTEM = "You translate news sentences into plain {target}. Reply with the translation only."
MAX_TOKENS = 200
MIN_QUESTION_CHARS = 12  # shorter questions are too short for their language to be known


def translation_prompt(sentence: str, language: str, title: str, before: Sequence[str],
                       target: str = "en") -> str:
    """The user message: the article's title and the two sentences before give the context."""
    name = LANGUAGES.get(language, "the source language")
    into = LANGUAGES.get(target, target)
    context = " ".join(before[-2:]) or "(none)"
    return (f"Article title: {title}\nPreceding text: {context}\n\nTranslate this {name} "
            f"sentence of the article into {into}, and reply with the {into} translation "
            f"only:\n{sentence}")


@dataclass(frozen=True)
class GlossVerdict:
    passed: bool
    similarity: float
    reason: str = ""


def check_gloss(model: Any, threshold: float, sentence: str, gloss: str,
                target: str) -> GlossVerdict:
    """Does ``gloss`` say what ``sentence`` says, in ``target``? (see the module doc)"""
    from rag.chunking import detect_language

    text = " ".join(gloss.split())
    if not text:
        return GlossVerdict(False, 0.0, "empty")
    similarity = float(model.claims([text])[0] @ model.sources([sentence])[0])
    if similarity < threshold:
        return GlossVerdict(False, similarity, f"similarity {similarity:.2f} < {threshold:.2f}")
    missing = missing_numbers(text, sentence)
    if missing:
        return GlossVerdict(False, similarity, f"{', '.join(missing)} not in the sentence")
    language = detect_language(text)
    if language != target:
        return GlossVerdict(False, similarity, f"written in {language}, not {target}")
    return GlossVerdict(True, similarity)


def target_language(question: str) -> str | None:
    """The question's language when it is known and glossable, else None."""
    from rag.chunking import detect_language

    if len(question.strip()) < MIN_QUESTION_CHARS:
        return None
    code = detect_language(question)
    return code if code in LANGUAGES else None


@dataclass(frozen=True)
class Sentence:
    """A stored sentence to gloss: its record id, text, file and context."""

    record_id: str
    text: str
    language: str
    path: str
    content_hash: str
    title: str
    before: tuple[str, ...]


class LocalTranslator:
    """Translations from the local model, one prompt at a time (the answerer's server)."""

    def __init__(self, settings: Any) -> None:
        from rag.answering.local import LocalPrompt

        self.chat = LocalPrompt(settings)
        self.name = self.chat.name

    def __call__(self, prompt: str, target: str, timeout_s: float) -> str:
        """The model's translation; raises on a timeout or a server failure."""
        system = SYSTEM.replace("{target}", LANGUAGES.get(target, target))
        reply = self.chat(system, prompt, timeout_s, max_tokens=MAX_TOKENS)
        return (reply.choices[0].message.content or "").strip()


Translate = Callable[[str, str, float], str]


class Glosser:
    """Glosses for the quotes of extractive answers: from the cache, else translated."""

    def __init__(self, store: Any, model: Any, translate: Translate, timeout_s: float,
                 threshold: float | None = None, translator_name: str = "") -> None:
        self.store = store
        self.model = model
        self.translate = translate
        self.timeout_s = timeout_s
        self.threshold = THRESHOLDS[model.family] if threshold is None else threshold
        self.translator_name = translator_name

    # -- the cache ----------------------------------------------------------------------
    def _collection(self, create: bool) -> Any:
        return self.store.glosses(create=create)

    def _cached(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        collection = self._collection(False)
        if collection is None or not ids:
            return {}
        got = collection.get(ids=list(ids), include=["documents", "metadatas"])
        return {i: {**(m or {}), "text": d or ""}
                for i, d, m in zip(got["ids"], got["documents"], got["metadatas"], strict=True)}

    def _remember(self, sentence: Sentence, target: str, text: str,
                  verdict: GlossVerdict) -> None:
        self._collection(True).upsert(
            ids=[f"{sentence.record_id}:{target}"], embeddings=[[0.0]], documents=[text],
            metadatas=[{"path": sentence.path, "content_hash": sentence.content_hash,
                        "target": target, "passed": verdict.passed,
                        "similarity": round(verdict.similarity, 4), "reason": verdict.reason,
                        "family": self.model.family, "translator": self.translator_name}])

    def _verdict(self, cached: dict[str, Any], sentence: str, target: str) -> GlossVerdict:
        """The cached verdict, or a new one when another similarity model made it."""
        if cached.get("family") == self.model.family:
            return GlossVerdict(bool(cached.get("passed")), float(cached.get("similarity", 0)),
                                str(cached.get("reason", "")))
        return check_gloss(self.model, self.threshold, sentence, cached["text"], target)

    # -- which sentences ----------------------------------------------------------------
    def quoted_sentences(self, answer: Any, target: str) -> list[tuple[int, Sentence]]:
        """(citation number, sentence) for each quote of ``answer`` not in ``target``."""
        from rag.documents import document_title

        passages = {p.n: p for p in answer.retrieved}
        wanted = [(c, passages[c.n]) for c in answer.citations
                  if c.n in passages and c.language not in (target, "und")]
        if not wanted:
            return []
        chunks = self.store.chunk_sentences({p.chunk_id: None for _, p in wanted})
        out = []
        for citation, passage in wanted:
            sentences = chunks.get(passage.chunk_id, [])
            texts = [text for _, text in sentences]
            if citation.text not in texts:
                continue
            at = texts.index(citation.text)
            manifest = self.store.manifest(passage.path)
            if manifest is None:
                continue
            out.append((citation.n, Sentence(
                f"{passage.chunk_id}:{sentences[at][0]}", citation.text, citation.language,
                passage.path, manifest.content_hash,
                document_title(passage.path, passage.source), tuple(texts[max(0, at - 2):at]))))
        return out

    # -- glosses ------------------------------------------------------------------------
    def cached(self, answer: Any, target: str) -> list[dict[str, Any]]:
        """The glosses already in the cache that pass the check (no model is asked)."""
        quoted = self.quoted_sentences(answer, target)
        found = self._cached([f"{s.record_id}:{target}" for _, s in quoted])
        out = []
        for n, sentence in quoted:
            hit = found.get(f"{sentence.record_id}:{target}")
            if hit is not None and self._verdict(hit, sentence.text, target).passed:
                out.append(gloss_dict(n, target, hit["text"]))
        return out

    def gloss(self, sentence: Sentence, target: str) -> tuple[str, GlossVerdict]:
        """Translate one sentence, check it and remember both (raises on a model failure)."""
        prompt = translation_prompt(sentence.text, sentence.language, sentence.title,
                                    sentence.before, target)
        text = self.translate(prompt, target, self.timeout_s)
        verdict = check_gloss(self.model, self.threshold, sentence.text, text, target)
        self._remember(sentence, target, text, verdict)
        return text, verdict

    def stream(self, answer: Any, target: str) -> Iterator[dict[str, Any]]:
        """Each passing gloss of ``answer`` not already on it, as soon as it is known; stops
        quietly at the first failure of the model (timeout, server down)."""
        have = {g["n"] for g in getattr(answer, "glosses", [])}
        quoted = [(n, s) for n, s in self.quoted_sentences(answer, target) if n not in have]
        found = self._cached([f"{s.record_id}:{target}" for _, s in quoted])
        for n, sentence in quoted:
            hit = found.get(f"{sentence.record_id}:{target}")
            if hit is not None:
                if self._verdict(hit, sentence.text, target).passed:
                    yield gloss_dict(n, target, hit["text"])
                continue
            try:
                text, verdict = self.gloss(sentence, target)
            except Exception as exc:  # noqa: BLE001 - a gloss is a nicety: never an error
                log.warning("no gloss: %s", " ".join(str(exc).split())[:200])
                return
            if verdict.passed:
                yield gloss_dict(n, target, text)


def gloss_dict(n: int, target: str, text: str) -> dict[str, Any]:
    """A gloss as answers carry it (``Answer.glosses``, ``rag ask --json``, ``/v1``)."""
    return {"n": n, "language": target, "text": text, "label": "machine translation"}


@dataclass
class FillReport:
    """What ``rag translate`` did: sentences glossed (passed, failed), cached, seconds."""

    passed: int = 0
    failed: int = 0
    cached: int = 0
    errors: int = 0
    seconds: float = 0.0

    @property
    def asked(self) -> int:
        return self.passed + self.failed

    def summary(self, target: str) -> str:
        per = f", {self.seconds / self.asked:.1f} s per gloss" if self.asked else ""
        return (f"{self.asked} sentences translated into {target}: {self.passed} passed the "
                f"check, {self.failed} did not (not shown); {self.cached} were already in the "
                f"cache; {self.errors} failed{per}")


def fill(glosser: Glosser, target: str,
         progress: Callable[[int, int, str], None] | None = None) -> FillReport:
    """Gloss every stored sentence not in ``target`` that the cache lacks (``rag translate``).

    A sentence's context is its article's title and the two sentences before it."""
    from rag.documents import document_title

    records = sorted(glosser.store.records(),
                     key=lambda r: (r.meta.path, r.meta.chunk, r.meta.sentence))
    todo = [r for r in records if r.meta.language != target]
    found = glosser._cached([f"{r.id}:{target}" for r in todo])
    report = FillReport(cached=sum(f"{r.id}:{target}" in found for r in todo))
    before: dict[str, list[str]] = {}
    done = 0
    for record in records:
        texts = before.setdefault(record.meta.path, [])
        if record.meta.language != target and f"{record.id}:{target}" not in found:
            sentence = Sentence(record.id, record.text, record.meta.language, record.meta.path,
                                record.meta.content_hash,
                                document_title(record.meta.path, record.meta.source),
                                tuple(texts[-2:]))
            started = time.perf_counter()
            try:
                _, verdict = glosser.gloss(sentence, target)
            except Exception as exc:  # noqa: BLE001 - counted and reported, the run goes on
                log.warning("no gloss: %s", " ".join(str(exc).split())[:200])
                report.errors += 1
            else:
                report.seconds += time.perf_counter() - started
                report.passed += verdict.passed
                report.failed += not verdict.passed
            done += 1
            if progress is not None:
                progress(done, len(todo) - report.cached, record.meta.source)
        texts.append(record.text)
    return report
