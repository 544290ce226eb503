"""The chat column: example questions, the conversation, the question box.

The conversation lives in the browser (``gr.BrowserState``) as plain dicts, so a
reload keeps it and the server keeps nothing per person. Questions run in their
own concurrency group, never behind an upload, and on the engine as it is now
(``LiveEngine.fresh``: an ingest by another process is seen before the next question).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import gradio as gr
from rag.ui.live_engine import LiveEngine
from rag.ui.render import answer_record, chat_html, examples_html

from rag.documents import document_title
from rag.engine import QuestionError, in_use
from rag.types import Answer

log = logging.getLogger(__name__)
ASK_QUEUE = "ask"
ASK_CONCURRENCY = 4  # questions at once (the embedder serialises its own calls)
MAX_TURNS = 30  # kept in the browser; older turns drop off the top
_SETTING_IN_PARENS = re.compile(r"\s*\(\s*RAG_[A-Z0-9_]+\s*\)")
_SETTING_NAME = re.compile(r"\bRAG_[A-Z0-9_]+\b")


def plain(text: str) -> str:
    """Engine messages without setting names: those are for the CLI and the logs."""
    return _SETTING_NAME.sub("a server setting", _SETTING_IN_PARENS.sub("", text)).strip()


@dataclass
class ChatPanel:
    chat: gr.HTML
    question: gr.Textbox
    ask: gr.Button
    note: gr.HTML
    clear: gr.Button


def chat_panel(examples: list[str]) -> ChatPanel:
    """Build the chat column's components in the current layout context."""
    gr.HTML(examples_html(examples), elem_id="examples", js_on_load=None)
    chat = gr.HTML(chat_html([]), elem_id="chat", js_on_load=None)
    with gr.Row(elem_id="ask-row", equal_height=True):
        question = gr.Textbox(
            elem_id="question", label="Your question", show_label=False, scale=8,
            min_width=0, lines=1, max_lines=6, autofocus=True, submit_btn=False,
            placeholder="Ask in any language…",
        )
        ask = gr.Button("Ask", elem_id="ask", variant="primary", scale=1, min_width=64)
    note = gr.HTML(elem_id="question-note", js_on_load=None)
    clear = gr.Button("New conversation", elem_id="clear", size="sm", variant="secondary")
    return ChatPanel(chat, question, ask, note, clear)


def _titles(answer: Answer) -> dict[str, str]:
    return {p.source: document_title(p.path, p.source) for p in answer.retrieved if p.path}


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


def _error(exc: Exception, redact: Callable[[str], str]) -> str:
    if isinstance(exc, QuestionError):
        return f"Cannot ask that: {plain(redact(first_line(exc)))}"
    log.exception("answering failed")
    return f"Could not answer: {plain(redact(first_line(exc)))}"


def waiting_status(answerer: str | None) -> str:
    """What the page says while an LLM writes (its quotes are checked before anything shows)."""
    if not answerer or answerer.startswith("extractive"):
        return ""
    return "Writing the answer, then checking every quote against the documents…"


def make_respond(live: LiveEngine, redact: Callable[[str], str]) -> Any:
    """The Ask handler; ``redact`` takes secrets out of any text shown."""
    limit = live.engine.settings.max_question_chars

    def respond(question: str, turns: list[dict[str, Any]] | None, top_k: float,
                answerer: str | None, show_searched: bool) -> Iterator[tuple[Any, ...]]:
        question = question or ""
        if not question.strip():  # the button is disabled; Enter in an empty box does nothing
            yield gr.skip(), gr.skip(), gr.skip(), ""
            return
        if len(question) > limit:  # nothing posted, the draft stays in the box
            yield gr.skip(), gr.skip(), gr.skip(), (
                f'<div class="rag-error" role="alert">Your question is {len(question):,} '
                f"characters long; questions can be up to {limit:,}. Shorten it and ask "
                "again.</div>")
            return
        turns = list(turns or [])[-(MAX_TURNS - 1):]
        history = [(t["question"], t["answer"]["answer"]) for t in turns if t.get("answer")]
        turn: dict[str, Any] = {"question": question, "answer": None, "partial": "",
                                "status": waiting_status(answerer or live.settings.answerer)}
        turns.append(turn)
        yield "", chat_html(turns, show_searched), gr.skip(), ""
        final: Answer | None = None
        try:
            with in_use(live) as engine:
                for event in engine.ask_stream(question, int(top_k), answerer or None, history):
                    if isinstance(event, Answer):
                        final = event
                        turn["answer"] = answer_record(event, _titles(event))
                        reason = turn["answer"].get("fallback_reason")
                        turn["answer"]["fallback_reason"] = plain(redact(reason)) if reason \
                            else reason
                    else:
                        turn["partial"] += event
                        yield gr.skip(), chat_html(turns, show_searched), gr.skip(), gr.skip()
        except Exception as exc:  # noqa: BLE001 - every failure is one line in the chat
            turn["error"] = _error(exc, redact)
        if turn["answer"] is None and not turn.get("error"):
            turn["error"] = "Could not answer: the engine returned no answer"
        turn.pop("partial", None)
        turn.pop("status", None)
        yield gr.skip(), chat_html(turns, show_searched), turns, gr.skip()
        if final is not None and not turn.get("error"):
            yield from _add_glosses(live, engine, final, turn, turns, show_searched)

    return respond


def _add_glosses(live: LiveEngine, engine: Any, answer: Answer, turn: dict[str, Any],
                 turns: list[dict[str, Any]], show_searched: bool) -> Iterator[tuple[Any, ...]]:
    """Glosses under the quotes of a shown answer, each as the local model writes it (the
    answer is on the page already; a failing model just stops them, rag.glosses)."""
    more = getattr(engine, "glosses", None)  # an engine without glosses (tests) has none
    if more is None:
        return
    glosses = turn["answer"].setdefault("glosses", [])
    with live.using():
        for gloss in more(answer):
            glosses.append(gloss)
            yield gr.skip(), chat_html(turns, show_searched), turns, gr.skip()


def wire_chat(panel: ChatPanel, turns: gr.BrowserState, settings_inputs: list[Any],
              show_searched: gr.Checkbox, respond: Any) -> None:
    """Ask (button or Enter), re-render on the toggle, start over, restore on load."""
    outputs = [panel.question, panel.chat, turns, panel.note]
    for trigger in (panel.question.submit, panel.ask.click):
        trigger(respond, [panel.question, turns, *settings_inputs], outputs,
                api_visibility="private", concurrency_id=ASK_QUEUE,
                concurrency_limit=ASK_CONCURRENCY, show_progress="hidden")
    show_searched.change(lambda t, show: chat_html(t or [], show), [turns, show_searched],
                         panel.chat, api_visibility="private", queue=False)
    panel.clear.click(lambda: (chat_html([]), [], ""), None, [panel.chat, turns, panel.note],
                      api_visibility="private", queue=False)


def restore(turns: list[dict[str, Any]] | None, show: bool) -> str:
    """The saved conversation, re-rendered (tolerates turns saved by older versions)."""
    try:
        return chat_html([t for t in turns or [] if isinstance(t, dict)], show)
    except Exception:  # noqa: BLE001 - a damaged saved conversation must not break the page
        log.exception("could not restore a saved conversation")
        return chat_html([]) + ('<div class="rag-note">The saved conversation could not be '
                                "shown.</div>")
