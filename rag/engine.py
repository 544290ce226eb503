"""The engine: the one object the CLI, the UI, the evaluation and the benchmark use.

It owns the embedder, the store and the answerers, and implements the rules
every front end shares: questions are checked, follow-ups are made standalone,
weakly supported questions are declined, a failing LLM falls back to the
extractive answer (marked as such), and citations only ever point at passages
that were actually retrieved.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from rag.answering import Answerer
from rag.answering.extractive import ExtractiveAnswerer
from rag.config import DEFAULT_CORPUS, Settings
from rag.types import Answer, AnswererError, Citation, Draft, Passage

DECLINE_TEXT = "Not found in the documents: the corpus does not hold an answer to this question."
LLM_ANSWERERS = ("openai", "ollama", "llamacpp")


class QuestionError(ValueError):
    """The question cannot be asked as given (empty, too long); message is one line."""


def check_question(question: str, max_chars: int) -> str:
    text = " ".join((question or "").split())
    if not text:
        raise QuestionError("the question is empty")
    if not re.search(r"\w", text):
        raise QuestionError("the question has no words, only punctuation or symbols")
    if len(text) > max_chars:
        raise QuestionError(
            f"the question is {len(text)} characters long; the limit is {max_chars} "
            "(RAG_MAX_QUESTION_CHARS)"
        )
    return text


_FOLLOW_UP = re.compile(
    r"^(and|but|so|also|what about|how about|why|then|i |a |ale |oraz |și |dar |und |et |y )|"
    r"\b(it|its|they|them|their|he|she|his|her|this|that|these|those|there|"
    r"to|tego|tym|ten|ta|oni|ono|acesta|aceasta|ei|lui|el)\b",
    re.I,
)


def condense_question(history: Sequence[tuple[str, str]], question: str) -> str:
    """Make a follow-up standalone for retrieval without an LLM.

    A short question, or one that leans on the conversation ("and what did NATO
    answer?", pronouns), is joined to the previous user question, which gives
    the embedder the missing subject. Self-contained questions pass unchanged.
    """
    previous = [q for q, _ in history if q.strip()]
    if not previous:
        return question
    if len(question.split()) <= 6 or _FOLLOW_UP.search(question):
        return f"{previous[-1].rstrip(' ?')}? {question}"
    return question


class Engine:
    def __init__(self, settings: Settings | None = None, embedder: Any = None) -> None:
        """``embedder``: an already loaded one to share (the benchmark, several engines)."""
        self.settings = settings or Settings.from_env()
        self._embedder: Any = embedder
        self._store: Any = None
        self._retriever: Any = None
        self._answerers: dict[str, Answerer] = {}

    # -- components, created on first use so 'rag status' stays light ---------------
    @property
    def embedder(self) -> Any:
        if self._embedder is None:
            from rag.embedding import make_embedder

            self._embedder = make_embedder(self.settings)
        return self._embedder

    @property
    def store(self) -> Any:
        if self._store is None:
            from rag.store import Store

            self._store = Store(self.settings)
        return self._store

    def _ready_store(self) -> Any:
        """The store opened for querying with our embedder (refuses a different one)."""
        store = self.store
        if store._sentences is None:
            store.open(self.embedder.name, self.embedder.dim, create=False)
        store._require()
        return store

    @property
    def retriever(self) -> Any:
        if self._retriever is None:
            from rag.retrieval import Retriever

            self._retriever = Retriever(self._ready_store(), self.embedder)
        return self._retriever

    # -- documents ----------------------------------------------------------------------
    def ingest(
        self, paths: Sequence[str | Path] | None = None, prune: bool = False, progress: Any = None
    ) -> Any:
        from rag.ingest import ingest_paths

        report = ingest_paths(
            paths or [DEFAULT_CORPUS], self.store, self.embedder, self.settings,
            prune=prune, progress=progress,
        )
        self._retriever = None  # background sample changes with the corpus
        return report

    def delete(self, name_or_path: str) -> list[str]:
        """Remove files from the store by full path or file name; returns removed paths."""
        store = self._ready_store()
        removed = []
        for manifest in store.files():
            if name_or_path in (manifest.get("path"), manifest.get("source")):
                store.delete_file(manifest["path"])
                removed.append(manifest["path"])
        self._retriever = None
        return removed

    def status(self) -> dict[str, Any]:
        store = self.store
        opened = store._sentences is not None or store.open(None, None, create=False)
        files = store.files() if opened else []
        return {
            "files": [
                {"source": m.get("source"), "chunks": m.get("chunks", 0),
                 "language": m.get("language", "und"), "path": m.get("path"),
                 "sentences": m.get("sentences", 0)}
                for m in files
            ],
            "chunks": sum(int(m.get("chunks", 0)) for m in files),
            "sentences": store.count() if opened else 0,
            "embedder": store.embedder_name if opened else "",
            "store": store.location,
        }

    # -- answering ----------------------------------------------------------------------
    def answerer_names(self) -> list[str]:
        names = ["extractive"]
        if self.settings.answerer in LLM_ANSWERERS:
            names.insert(0, self.settings.answerer)
        return names

    def answerer(self, name: str | None = None) -> Answerer:
        name = (name or self.settings.answerer or "extractive").lower()
        if name not in self._answerers:
            if name == "extractive":
                self._answerers[name] = ExtractiveAnswerer()
            elif name in LLM_ANSWERERS:
                from rag.answering.llm import make_llm_answerer

                self._answerers[name] = make_llm_answerer(replace(self.settings, answerer=name))
            else:
                raise ValueError(
                    f"unknown answerer {name!r}: choose extractive, openai, ollama or llamacpp"
                )
        return self._answerers[name]

    def _threshold(self) -> float:
        from rag.retrieval import default_threshold

        return self.settings.decline_threshold or default_threshold(self.embedder.name)

    def ask(
        self, question: str, top_k: int | None = None, answerer: str | None = None,
        history: Sequence[tuple[str, str]] = (),
    ) -> Answer:
        """Answer a question; the result carries its citations and which answerer wrote it."""
        final: Answer | None = None
        for event in self.ask_stream(question, top_k, answerer, history, stream=False):
            if isinstance(event, Answer):
                final = event
        assert final is not None
        return final

    def ask_stream(
        self, question: str, top_k: int | None = None, answerer: str | None = None,
        history: Sequence[tuple[str, str]] = (), stream: bool = True,
    ) -> Iterator[str | Answer]:
        """Yield answer text as it is produced, then the final ``Answer``."""
        started = time.perf_counter()
        question = check_question(question, self.settings.max_question_chars)
        standalone = condense_question(history, question)
        k = max(1, min(int(top_k or self.settings.top_k), 50))
        retrieval = self.retriever.retrieve(standalone, k)
        passages = retrieval.passages

        def finish(draft: Draft, fallback: str | None = None) -> Answer:
            declined = draft.declined or not draft.text.strip()
            text, citations = (draft.text, []) if declined else self._citations(draft.text,
                                                                                passages)
            if declined:
                text = DECLINE_TEXT
            elif not citations:  # an LLM answer citing nothing it was given is not grounded
                declined, text = True, DECLINE_TEXT
            return Answer(
                question=question, answer=text, answerer=draft.answerer, declined=declined,
                citations=citations, retrieved=passages,
                latency_ms=(time.perf_counter() - started) * 1000, fallback_reason=fallback,
                standalone_question=standalone if standalone != question else None,
                support=retrieval.support,
            )

        if not passages or retrieval.support < self._threshold():
            yield finish(Draft(text="", answerer=(answerer or self.settings.answerer),
                               declined=True))
            return
        name = (answerer or self.settings.answerer or "extractive").lower()
        try:
            chosen = self.answerer(name)
        except ValueError as exc:
            if name not in LLM_ANSWERERS:
                raise
            chosen, reason = None, f"{name} is not usable: {exc}"
        if isinstance(chosen, ExtractiveAnswerer):
            draft = chosen.draft(standalone, passages)
            yield draft.text
            yield finish(draft)
            return
        try:
            if chosen is None:
                raise AnswererError(reason)
            if stream:
                parts: list[str] = []
                for delta in chosen.stream(standalone, passages):
                    parts.append(delta)
                    yield delta
                from rag.answering.citations import is_decline

                text = "".join(parts)
                draft = Draft(text=text, answerer=chosen.name, declined=is_decline(text))
            else:
                draft = chosen.draft(standalone, passages)
            answer = finish(draft)
            if not answer.declined or draft.declined:
                yield answer
                return
            reason = f"{chosen.name} cited none of the passages it was given"
        except AnswererError as exc:
            reason = f"{chosen.name} failed: {exc}" if chosen is not None else str(exc)
        fallback = self.answerer("extractive").draft(standalone, passages)
        fallback = replace(fallback, answerer="extractive (fallback)")
        yield fallback.text
        yield finish(fallback, fallback=reason)

    def _citations(
        self, text: str, passages: Sequence[Passage]
    ) -> tuple[str, list[Citation]]:
        """The text with invalid markers removed, and a citation per valid marker."""
        from rag.answering.citations import parse_citations

        by_n = {p.n: p for p in passages}
        parsed = parse_citations(text, passages)
        return parsed.text, [
            Citation(
                n=n, source=by_n[n].source, text=by_n[n].sentence or by_n[n].text,
                score=by_n[n].score, passage_text=by_n[n].text, language=by_n[n].language,
            )
            for n in parsed.cited
        ]
