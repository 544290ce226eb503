"""The engine: the one object the CLI, the UI, the evaluation and the benchmark use.

It owns the embedder, the store and the answerers, and implements the rules
every front end shares: questions are checked, follow-ups are made standalone,
weakly supported questions are declined, a failing LLM falls back to the
extractive answer (marked as such), and citations only ever point at passages
that were actually retrieved.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.answering import Answerer
from rag.config import DEFAULT_CORPUS, Settings
from rag.types import (
    ANSWERED,
    DECLINED,
    NOT_STATED,
    Answer,
    AnswererError,
    Citation,
    Draft,
    Passage,
)

if TYPE_CHECKING:
    from rag.retrieval import Retrieval

log = logging.getLogger(__name__)

DECLINE_TEXT = "Not found in the documents: the corpus does not hold an answer to this question."


@dataclass(frozen=True)
class Turn:
    """One question on its way through the answer policy."""

    question: str  # as asked, whitespace-normalised
    standalone: str  # what was searched for (a follow-up joined to the conversation)
    retrieval: Retrieval
    started: float  # perf_counter() when the question arrived


class _Unverified(Exception):
    """An LLM reply with claims, none of which could be shown (no quote found, or removed
    by the claim check): fall back, saying why and which claims were removed."""

    def __init__(self, reason: str, removed: Sequence[dict[str, Any]] = ()) -> None:
        super().__init__(reason)
        self.removed = list(removed)


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


def current(source: Any) -> Engine:
    """``source`` itself, or, for anything with ``fresh()`` (the app's live engine, reopened
    when another process changed the store), its engine as of now."""
    fresh = getattr(source, "fresh", None)
    return fresh() if callable(fresh) else source


@contextlib.contextmanager
def in_use(source: Any) -> Iterator[Engine]:
    """The current engine, kept from being reopened until the block ends: a reopen clears
    Chroma's client cache, which would pull the store from under a question still being
    answered (the app's live engine has ``using()``; a plain engine is just yielded)."""
    engine = current(source)
    using = getattr(source, "using", None)
    with using() if callable(using) else contextlib.nullcontext(engine) as engine:
        yield engine


class Engine:
    def __init__(
        self, settings: Settings | None = None, embedder: Any = None, *,
        retriever: Any = None, answerers: Mapping[str, Answerer] | None = None,
        claim_checker: Any = None, glosser: Any = None,
    ) -> None:
        """Components are built from the settings on first use; pass them to share or test:
        ``embedder`` an already loaded one (the benchmark, several engines), ``retriever``
        anything with ``retrieve(question, k) -> Retrieval``, ``answerers`` by name,
        ``claim_checker`` anything with ``check(claim, quote, passages) -> Verdict``
        (``rag.answering.claim_check``), ``glosser`` a ``rag.glosses.Glosser``."""
        self.settings = settings or Settings()
        self._embedder: Any = embedder
        self._store: Any = None
        self._retriever: Any = retriever
        self._answerers: dict[str, Answerer] = dict(answerers or {})
        self._claim_checker: Any = claim_checker
        self._glosser: Any = glosser

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
        """The store opened for querying with our embedder (refuses a different one, and a
        damaged vector index: one line saying to repair it, never a crash or "not found")."""
        store = self.store
        if not store.is_open:
            store.require_sound_index()
            store.open_for(self.embedder)
        store.require_ingested()
        return store

    @property
    def retriever(self) -> Any:
        if self._retriever is None:
            from rag.retrieval import Retriever

            self._retriever = Retriever(self._ready_store(), self.embedder)
        return self._retriever

    # -- documents ----------------------------------------------------------------------
    def ingest(
        self, paths: Sequence[str | Path] | None = None, prune: bool = False, progress: Any = None,
        reembed: bool = False,
    ) -> Any:
        """Add files (default: the sample corpus); ``reembed``: first rebuild a store that
        another embedder built with this one."""
        from rag.ingest import ingest_paths

        report = ingest_paths(
            paths or [DEFAULT_CORPUS], self.store, self.embedder, self.settings,
            prune=prune, progress=progress, reembed=reembed,
        )
        self._retriever = None  # background sample changes with the corpus
        return report

    def delete(self, name_or_path: str) -> tuple[list[str], list[str]]:
        """Remove files from the store by full path or file name.

        Holds the ingest lock and first finishes what an interrupted run left. Returns
        the paths removed now, and those of this name whose interrupted delete it just
        finished (a retry after a killed delete: done, not "not in the store").
        """
        from rag.index_guard import record_sound
        from rag.ingest import ingest_lock

        store = self._ready_store()
        removed = []
        with ingest_lock(self.settings):
            finished = [r.path for r in store.recover() if r.op == "delete"
                        and name_or_path in (r.path, Path(r.path).name)]
            for manifest in store.files():
                if name_or_path in (manifest.path, manifest.source):
                    store.delete_file(manifest.path)
                    removed.append(manifest.path)
            record_sound(self.settings)
        self._retriever = None
        return removed, finished

    def passage(self, chunk_id: str) -> Passage | None:
        """The stored passage ``chunk_id`` names (the page a citation link opens), or None
        when its file version is no longer in the store (edited or removed since)."""
        from rag.store import path_key

        store = self._ready_store()
        file_key, _, rest = chunk_id.partition(":")
        version, _, position = rest.partition(":")
        manifest = next((m for m in store.files() if path_key(m.path) == file_key
                         and version and m.content_hash[:len(version)] == version), None)
        if manifest is None or not position.isdigit():
            return None
        sentences = store.chunk_sentences({chunk_id: None}).get(chunk_id)
        if not sentences:
            return None
        return Passage(n=0, chunk_id=chunk_id, source=manifest.source, path=manifest.path,
                       text=" ".join(text for _, text in sentences), score=0.0,
                       language=manifest.language, position=int(position))

    def status(self) -> dict[str, Any]:
        """The store's typed status as the ``rag status --json`` dict (``problems``: warnings
        such as counts that disagree or an interrupted operation)."""
        status = self.store.status()
        return {
            "files": [
                {"source": m.source, "chunks": m.chunks, "language": m.language,
                 "path": m.path, "sentences": m.sentences}
                for m in status.files
            ],
            "chunks": status.chunks,
            "sentences": status.sentences,
            "embedder": status.embedder,
            "store": status.location,
            "problems": status.problems,
        }

    # -- answering ----------------------------------------------------------------------
    # The answer policy, one step a method: prepare (check, condense, retrieve), decide
    # (decline on weak support), draft (the chosen answerer writes), verify (only markers
    # of passages that were sent become citations), fall back (an LLM that failed or cited
    # nothing gives way to the extractive answer, with the reason), finish (the Answer).
    def answerer_names(self) -> list[str]:
        """The answerers a person can pick: the configured one, any that offers itself
        (the local model once installed), and extractive."""
        from rag.registry import ANSWERERS

        configured = ANSWERERS.get(self.settings.answerer or "extractive").name
        names = [configured]
        for backend in ANSWERERS.backends():
            if backend.offered is not None and backend.name not in names \
                    and backend.offered(self.settings):
                names.append(backend.name)
        return names if "extractive" in names else [*names, "extractive"]

    def answerer(self, name: str | None = None) -> Answerer:
        """The answerer called ``name`` (built once); ValueError when unknown or misconfigured."""
        name = (name or self.settings.answerer or "extractive").lower()
        if name not in self._answerers:
            from rag.registry import ANSWERERS

            self._answerers[name] = ANSWERERS.create(name, self.settings.with_answerer(name))
        return self._answerers[name]

    def ask(
        self, question: str, top_k: int | None = None, answerer: str | None = None,
        history: Sequence[tuple[str, str]] = (),
    ) -> Answer:
        """Answer a question; the result carries its citations and which answerer wrote it."""
        steps = self._respond(self._prepare(question, top_k, history), answerer, stream=False)
        while True:
            try:
                next(steps)
            except StopIteration as done:
                return done.value

    def ask_stream(
        self, question: str, top_k: int | None = None, answerer: str | None = None,
        history: Sequence[tuple[str, str]] = (),
    ) -> Iterator[str | Answer]:
        """Yield answer text as it is produced, then the final ``Answer``."""
        answer = yield from self._respond(self._prepare(question, top_k, history), answerer)
        yield answer

    def _prepare(
        self, question: str, top_k: int | None, history: Sequence[tuple[str, str]]
    ) -> Turn:
        started = time.perf_counter()
        question = check_question(question, self.settings.max_question_chars)
        k = max(1, min(int(top_k or self.settings.top_k), 50))
        from rag.conversation import retrieve_in_context

        retrieval, standalone = retrieve_in_context(
            self.retriever, question, history, k,
            answered_at=self._stated_threshold() or self._threshold())
        return Turn(question, standalone, retrieval, started)

    def _respond(
        self, turn: Turn, answerer: str | None, stream: bool = True
    ) -> Generator[str, None, Answer]:
        name = (answerer or self.settings.answerer or "extractive").lower()
        status = self.status_for(turn.retrieval)
        if status == DECLINED:
            return self._finish(turn, Draft(text="", answerer=name, declined=True))
        if status == NOT_STATED:  # the closest quotes, marked as not an answer; no LLM call
            draft = self.answerer("extractive").closest(turn.standalone, turn.retrieval.passages)
            if stream and draft.text:
                yield draft.text
            return self._finish(turn, draft, status=NOT_STATED)
        chosen = None
        try:
            chosen = self._usable_answerer(name)
            draft = yield from self._draft(chosen, turn, stream)
            answer = self._finish(turn, draft)
            if not answer.declined or draft.declined or chosen.name == "extractive":
                if stream and getattr(chosen, "structured", False):
                    yield answer.answer  # shown once its quotes are checked
                return answer
            reason = f"{chosen.name} cited none of the passages it was given"
        except _Unverified as exc:
            reason = f"{chosen.name if chosen is not None else name}: {exc}"
            return (yield from self._fall_back(turn, reason, exc.removed))
        except AnswererError as exc:
            reason = f"{chosen.name} failed: {exc}" if chosen is not None else str(exc)
        return (yield from self._fall_back(turn, reason))

    def status_for(self, retrieval: Retrieval) -> str:
        """Which honest outcome the answerability signal allows: declined below the decline
        threshold, "not stated" up to the stated threshold, else answered."""
        if not retrieval.passages or retrieval.support < self._threshold():
            return DECLINED
        return NOT_STATED if retrieval.support < self._stated_threshold() else ANSWERED

    def _threshold(self) -> float:
        from rag.retrieval import default_threshold

        return self.settings.decline_threshold or default_threshold(self.embedder.name)

    def _stated_threshold(self) -> float:
        """The band's upper end; a decline threshold set by hand alone means no band (the
        calibrated band belongs with the calibrated decline threshold)."""
        from rag.retrieval import default_stated_threshold

        if self.settings.stated_threshold or self.settings.decline_threshold:
            return self.settings.stated_threshold
        return default_stated_threshold(self.embedder.name)

    def _usable_answerer(self, name: str) -> Answerer:
        """The answerer, or AnswererError when a known LLM answerer is misconfigured
        (so the person gets the extractive answer and the reason, not an error)."""
        from rag.registry import ANSWERERS

        backend = ANSWERERS.get(name) if name not in self._answerers else None
        try:
            return self.answerer(name)
        except ValueError as exc:
            if backend is None or not backend.uses_llm:
                raise
            raise AnswererError(f"{name} is not usable: {exc}") from exc

    @staticmethod
    def _draft(chosen: Answerer, turn: Turn, stream: bool) -> Generator[str, None, Draft]:
        passages = turn.retrieval.passages
        if not stream:
            return chosen.draft(turn.standalone, passages)
        # A structured (JSON) reply is shown once its quotes are checked, not as it streams.
        shown = not getattr(chosen, "structured", False)
        parts: list[str] = []
        for delta in chosen.stream(turn.standalone, passages):
            parts.append(delta)
            if shown:
                yield delta
        from rag.answering.claims import reply_declines

        text = "".join(parts)
        return Draft(text=text, answerer=chosen.name, declined=reply_declines(text))

    def _fall_back(self, turn: Turn, reason: str, removed: Sequence[dict[str, Any]] = ()
                   ) -> Generator[str, None, Answer]:
        draft = self.answerer("extractive").draft(turn.standalone, turn.retrieval.passages)
        draft = replace(draft, answerer="extractive (fallback)")
        yield from draft.text.splitlines(keepends=True)
        answer = self._finish(turn, draft, fallback=reason)
        if removed:
            from rag.answering.claim_check import removal_note

            answer.removed_claims, answer.removal_note = list(removed), removal_note(removed, 0)
        return answer

    def _finish(self, turn: Turn, draft: Draft, fallback: str | None = None,
                status: str = ANSWERED) -> Answer:
        passages = turn.retrieval.passages
        declined = draft.declined or not draft.text.strip()
        checked = None if declined else self._checked(draft, passages)
        if checked is None:
            text, citations = (draft.text, []) if declined else self._citations(draft.text,
                                                                                passages)
        else:  # an LLM's reply: quotes verified, markers ours, sentences scored
            if checked.failure:
                raise _Unverified(checked.failure, checked.removed)
            declined, text, citations = checked.declined, checked.text, checked.citations
        if declined or not citations:  # an answer citing nothing it was given is not grounded
            declined, text = True, DECLINE_TEXT
        return Answer(
            question=turn.question, answer=text, answerer=draft.answerer, declined=declined,
            citations=citations, retrieved=list(passages),
            latency_ms=(time.perf_counter() - turn.started) * 1000, fallback_reason=fallback,
            standalone_question=turn.standalone if turn.standalone != turn.question else None,
            support=turn.retrieval.support,
            sentences=[s.to_dict() for s in checked.sentences] if checked else [],
            warnings=checked.warnings if checked else [], status=status,
            removed_claims=checked.removed if checked else [],
            removal_note=self._removal_note(checked),
            glosses=self._cached_glosses(turn.question, draft, citations, passages),
            embedder=str(getattr(self.embedder, "name", "")),
        )

    @staticmethod
    def _removal_note(checked: Any) -> str | None:
        if checked is None or not checked.removed:
            return None
        from rag.answering.claim_check import removal_note

        return removal_note(checked.removed, len(checked.sentences))

    @property
    def claim_checker(self) -> Any:
        """The claim check of LLM replies (built on first use, on the engine's embedder)."""
        if self._claim_checker is None:
            from rag.answering.claim_check import ClaimChecker
            from rag.answering.claim_judge import local_judge

            self._claim_checker = ClaimChecker.for_embedder(self.embedder,
                                                            judge=local_judge(self.settings))
        return self._claim_checker

    # -- glosses (rag.glosses) ------------------------------------------------------------
    @property
    def glosser(self) -> Any:
        """Glosses of extractive answers, or None: RAG_GLOSSES=off, or no local model
        installed (what the ``local`` answerer's ``offered`` checks; nothing is loaded)."""
        if self._glosser is None:
            self._glosser = False
            from rag.answering.local import installed

            if self.settings.glosses != "off" and installed(self.settings):
                from rag.glosses import THRESHOLDS, Glosser, LocalTranslator

                model = getattr(self.claim_checker, "model", None)
                if model is None:
                    from rag.similarity import similarity_model

                    model = similarity_model(self.embedder)
                if model.family in THRESHOLDS:
                    translator = LocalTranslator(self.settings)
                    self._glosser = Glosser(self._ready_store(), model, translator,
                                            self.settings.gloss_timeout,
                                            translator_name=translator.name)
        return self._glosser or None

    def _gloss_target(self, answer: Answer) -> str | None:
        """The language to gloss ``answer``'s quotes into, or None when none is wanted."""
        if answer.declined or not answer.citations or not answer.answerer.startswith(
                "extractive"):
            return None
        from rag.glosses import target_language

        return target_language(answer.question)

    def _cached_glosses(self, question: str, draft: Draft, citations: Sequence[Citation],
                        passages: Sequence[Passage]) -> list[dict[str, Any]]:
        """The glosses already cached for an extractive answer's quotes (no model asked)."""
        if not citations or not draft.answerer.startswith("extractive"):
            return []
        answer = Answer(question, "", draft.answerer, False, list(citations), list(passages))
        try:
            target = self._gloss_target(answer)
            return self.glosser.cached(answer, target) if target and self.glosser else []
        except Exception:  # noqa: BLE001 - a gloss never costs the answer
            log.exception("could not read the gloss cache")
            return []

    def glosses(self, answer: Answer) -> Iterator[dict[str, Any]]:
        """The glosses ``answer`` does not carry yet, each as soon as it is translated and
        checked (the page and ``rag ask`` add them under the quotes); nothing when glosses
        are off, no model is installed, or the model fails (logged, never raised)."""
        target = self._gloss_target(answer)
        if target is None or not self.glosser:
            return
        try:
            yield from self.glosser.stream(answer, target)
        except Exception:  # noqa: BLE001 - a gloss never costs the answer
            log.exception("glossing failed")

    def _checked(self, draft: Draft, passages: Sequence[Passage]) -> Any:
        """An LLM reply checked against the passages: quotes found, markers ours, every claim
        through the claim check (removed when it fails)."""
        if draft.answerer.startswith("extractive"):
            return None
        from rag.answering.claims import check_reply

        return check_reply(draft.text, passages, self.claim_checker)

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
