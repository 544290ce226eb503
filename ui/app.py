"""The Gradio chat app: streamed, cited answers, follow-ups, and a documents panel.

Everything the app knows comes from ``Engine``; this module only renders and routes.
All engine calls share one concurrency group, so an upload never races a question
over the same store, and errors reach the person as one line (tracebacks go to the log).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr

from rag.config import DEFAULT_CORPUS, Settings
from rag.engine import Engine, QuestionError
from rag.types import Answer
from ui.render import (
    answer_html,
    documents_html,
    error_html,
    esc,
    report_html,
    streaming_html,
    user_html,
)
from ui.uploads import ALLOWED_SUFFIXES, vet_uploads

log = logging.getLogger(__name__)

ENGINE_QUEUE = "engine"  # one concurrency group for everything that touches the store
LOOPBACK = ("127.0.0.1", "localhost", "::1")
PLACEHOLDER = (
    "**Ask a question about your documents**, in any language — e.g. "
    "*What did Russia demand about 1997?* Answers quote the documents and cite them as [n]."
)
CSS = """
.rag-text { line-height: 1.5; }
.rag-marker { font-weight: 600; color: var(--color-accent); }
.rag-sources { margin-top: .6em; border-top: 1px solid var(--border-color-primary);
  padding-top: .4em; }
.rag-sources-title { font-size: .8em; text-transform: uppercase; letter-spacing: .05em;
  opacity: .7; }
.rag-source { margin: .35em 0; }
.rag-source summary { cursor: pointer; }
.rag-file { font-family: var(--font-mono); font-size: .9em; }
.rag-lang, .rag-score { font-size: .85em; opacity: .75; }
.rag-quote { display: block; margin: .2em 0 0 1.2em; font-style: italic; }
.rag-passage { margin: .4em 0 .4em 1.2em; padding-left: .6em;
  border-left: 3px solid var(--color-accent); }
.rag-searched, .rag-note { font-size: .8em; opacity: .75; margin-top: .4em; }
.rag-fallback { color: var(--color-orange-600, #c2410c); opacity: 1; }
.rag-declined { font-weight: 600; }
.rag-error { color: var(--error-text-color, #b91c1c); }
table.rag-docs { width: 100%; font-size: .9em; border-collapse: collapse; }
table.rag-docs th, table.rag-docs td { text-align: left; padding: .15em .4em;
  border-bottom: 1px solid var(--border-color-primary); }
td.rag-num { text-align: right; }
.rag-report-line { font-size: .9em; }
"""


def _theme() -> gr.themes.Base:
    """System fonts only: the app must not reach out to a font CDN when offline."""
    return gr.themes.Soft(
        font=["system-ui", "Segoe UI", "Roboto", "sans-serif"],
        font_mono=["ui-monospace", "DejaVu Sans Mono", "monospace"],
    )


def redact(text: str, settings: Settings) -> str:
    """``text`` with every secret the settings hold replaced by ``***``.

    Errors from model servers can echo request headers back; whatever the answerers
    do about that, nothing shown in the page or returned by the API carries a key.
    """
    for secret in settings.secrets():
        if secret:
            text = text.replace(secret, "***")
    return text


def one_line(exc: BaseException, settings: Settings) -> str:
    """The first line of an error, without secrets: what the person sees instead of a trace."""
    return redact((str(exc).strip().splitlines() or [type(exc).__name__])[0][:300], settings)


def render_chat(
    turns: list[dict[str, Any]], show_searched: bool, settings: Settings
) -> list[dict[str, str]]:
    """Chatbot messages for the conversation so far (re-rendered when the toggle changes)."""
    messages: list[dict[str, str]] = []
    for turn in turns:
        messages.append({"role": "user", "content": user_html(turn["question"])})
        if turn.get("error"):
            content = error_html(turn["error"])
        elif turn.get("answer") is not None:
            content = answer_html(turn["answer"], show_searched)
        else:
            content = streaming_html(turn.get("partial", ""))
        messages.append({"role": "assistant", "content": redact(content, settings)})
    return messages


def build_app(engine: Engine) -> gr.Blocks:
    """The chat app over ``engine``; launch it with ``launch_options`` (theme, CSS, limits)."""
    settings = engine.settings
    uploads_dir = Path(settings.data_dir) / "uploads"
    answerers = engine.answerer_names()

    def documents() -> tuple[str, Any]:
        """The files table and the remove choices (labelled by name, valued by full path,
        so removing an upload never takes a same-named corpus file with it)."""
        files = [f for f in engine.status()["files"] if f.get("path")]
        names = [str(f.get("source") or Path(f["path"]).name) for f in files]
        choices = sorted(
            (name if names.count(name) == 1 else f"{name} ({f['path']})", str(f["path"]))
            for name, f in zip(names, files, strict=True)
        )
        return documents_html(files), gr.Dropdown(choices=choices, value=None)

    def respond(
        question: str, turns: list[dict[str, Any]] | None, top_k: float, answerer: str,
        show_searched: bool,
    ) -> Iterator[tuple[str, list[dict[str, str]], list[dict[str, Any]]]]:
        turns = list(turns or [])
        history = [(t["question"], t["answer"].answer) for t in turns if t.get("answer")]
        turn: dict[str, Any] = {"question": question or "", "answer": None, "error": None,
                                "partial": ""}
        turns.append(turn)
        yield "", render_chat(turns, show_searched, settings), turns
        try:
            for event in engine.ask_stream(question or "", int(top_k), answerer, history):
                if isinstance(event, Answer):
                    turn["answer"] = event
                else:
                    turn["partial"] += event
                    yield "", render_chat(turns, show_searched, settings), turns
        except QuestionError as exc:
            turn["error"] = f"Cannot ask that: {one_line(exc, settings)}"
        except Exception as exc:
            log.exception("answering failed")
            turn["error"] = f"Could not answer: {one_line(exc, settings)}"
        if turn["answer"] is None and not turn["error"]:
            turn["error"] = "Could not answer: the engine returned no answer"
        yield "", render_chat(turns, show_searched, settings), turns

    def upload(
        files: list[Any] | None,
        progress: gr.Progress = gr.Progress(),  # noqa: B008 - Gradio finds it by this default
    ) -> tuple[Any, ...]:
        paths = [f if isinstance(f, str) else getattr(f, "name", str(f)) for f in files or []]
        try:
            vetted = vet_uploads(paths, uploads_dir, settings.upload_max_mb)
        except OSError as exc:
            log.exception("saving uploads failed")
            return None, report_html([f"could not save the upload: {one_line(exc, settings)}"]), \
                *documents()
        lines: list[str] = []
        if vetted.accepted:

            def on_file(done: int, total: int, name: str) -> None:
                desc = f"Ingesting {name}" if name else "Ingested"
                progress((done, total), desc=desc, unit="files")

            try:
                report = engine.ingest(vetted.accepted, progress=on_file)
            except Exception as exc:
                log.exception("ingest failed")
                lines.insert(0, f"ingest failed: {one_line(exc, settings)}")
            else:
                for label, group in (("added", report.added), ("updated", report.updated),
                                     ("already up to date", report.unchanged)):
                    lines += [f"{label}: {Path(p).name}" for p in group]
                for err in report.errors:
                    lines.append(f"skipped {Path(err.path).name}: {err.reason}")
                    if Path(err.path).resolve().parent == uploads_dir.resolve():
                        Path(err.path).unlink(missing_ok=True)
                lines.append(report.summary())
        lines += vetted.rejected
        if not lines:
            lines = ["no files received"]
        return None, report_html(lines), *documents()

    def remove(path: str | None) -> tuple[Any, ...]:
        if not path:
            return report_html(["choose a file to remove"]), *documents()
        name = Path(path).name
        try:
            removed = engine.delete(path)
        except Exception as exc:
            log.exception("delete failed")
            return report_html([f"could not remove {name}: {one_line(exc, settings)}"]), \
                *documents()
        for path in removed:  # drop our own copy of an uploaded file, never anything else
            if Path(path).resolve().parent == uploads_dir.resolve():
                Path(path).unlink(missing_ok=True)
        line = f"removed {name}" if removed else f"{name} is not in the store"
        return report_html([line]), *documents()

    def ask(question: str, top_k: int = settings.top_k, answerer: str = "") -> dict[str, Any]:
        """Answer a question from the documents; returns the ``rag ask --json`` dict."""
        try:
            result = engine.ask(question, top_k=top_k, answerer=answerer or None).to_dict()
            if result["fallback_reason"]:
                result["fallback_reason"] = redact(result["fallback_reason"], settings)
            return result
        except QuestionError as exc:
            raise gr.Error(one_line(exc, settings)) from exc
        except Exception as exc:
            log.exception("answering failed")
            raise gr.Error(f"could not answer: {one_line(exc, settings)}") from exc

    with gr.Blocks(title="RAG assistant", analytics_enabled=False) as app:
        turns = gr.State([])
        gr.Markdown("## RAG assistant — answers from your documents, with citations")
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                chat = gr.Chatbot(
                    elem_id="chat", show_label=False, height=600, placeholder=PLACEHOLDER,
                    sanitize_html=True, render_markdown=True, allow_tags=False,
                    latex_delimiters=[], feedback_options=None, buttons=[],
                    layout="bubble",
                )
                with gr.Row():
                    question = gr.Textbox(
                        elem_id="question", show_label=False, scale=6, lines=1, max_lines=6,
                        placeholder="Ask about your documents (any language)…", autofocus=True,
                    )
                    ask_button = gr.Button("Ask", elem_id="ask", variant="primary", scale=1)
                with gr.Row():
                    show_searched = gr.Checkbox(
                        True, elem_id="show-searched", label="Show what a follow-up searched for",
                    )
                    clear = gr.Button("New conversation", elem_id="clear", size="sm", scale=0)
            with gr.Column(scale=2):
                with gr.Accordion("Answer settings", open=True):
                    top_k = gr.Slider(1, 20, value=settings.top_k, step=1, label="Passages (top-k)",
                                      elem_id="top-k")
                    answerer = gr.Dropdown(answerers, value=answerers[0], label="Answerer",
                                           elem_id="answerer")
                with gr.Accordion("Documents", open=True):
                    docs = gr.HTML(elem_id="docs")
                    files = gr.File(
                        label="Upload documents", file_count="multiple",
                        file_types=list(ALLOWED_SUFFIXES), elem_id="upload", height=140,
                    )
                    gr.Markdown(
                        f"<small>{esc(', '.join(ALLOWED_SUFFIXES))}; up to "
                        f"{settings.upload_max_mb:g} MB each</small>", elem_id="upload-rules",
                    )
                    report = gr.HTML(elem_id="upload-report")
                    to_remove = gr.Dropdown([], label="Remove a file", elem_id="remove-file")
                    remove_button = gr.Button("Remove", elem_id="remove", variant="stop",
                                              size="sm")
                gr.Markdown(f"<small>Store: {esc(settings.store_location())}</small>")

        chat_inputs = [question, turns, top_k, answerer, show_searched]
        chat_outputs = [question, chat, turns]
        for trigger in (question.submit, ask_button.click):
            trigger(respond, chat_inputs, chat_outputs, api_visibility="private",
                    concurrency_id=ENGINE_QUEUE, show_progress="hidden")
        show_searched.change(lambda t, show: render_chat(t or [], show, settings),
                             [turns, show_searched], chat, api_visibility="private", queue=False)
        clear.click(lambda: ([], []), None, [chat, turns], api_visibility="private", queue=False)
        chat.clear(lambda: [], None, turns, api_visibility="private", queue=False)  # its bin icon
        files.upload(upload, files, [files, report, docs, to_remove], api_visibility="private",
                     concurrency_id=ENGINE_QUEUE, show_progress_on=docs)
        remove_button.click(remove, to_remove, [report, docs, to_remove],
                            api_visibility="private", concurrency_id=ENGINE_QUEUE,
                            show_progress_on=docs)
        app.load(documents, None, [docs, to_remove], api_visibility="private")
        gr.api(ask, api_name="ask", concurrency_id=ENGINE_QUEUE)
    return app


def launch_options(settings: Settings, host: str, port: int) -> dict[str, Any]:
    """Keyword arguments for ``Blocks.launch``: binding, login, upload limit, look."""
    password = settings.ui.password.get_secret_value()
    auth = (settings.ui.user, password) if settings.ui.user and password else None
    return {
        "server_name": host, "server_port": port, "auth": auth,
        "auth_message": "Log in to the RAG assistant" if auth else None,
        "max_file_size": int(settings.upload_max_mb * 1e6), "show_error": False,
        "ssr_mode": False, "theme": _theme(), "css": CSS, "footer_links": ["api"],
        "enable_monitoring": False, "mcp_server": False, "pwa": False,
        # bounds the per-session state that every API caller without a session adds
        "state_session_capacity": settings.ui.max_sessions,
    }


def serve(host: str = "127.0.0.1", port: int = 7860) -> int:
    """Start the app on ``host:port`` (loopback by default); blocks until stopped."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    settings = Settings()
    engine = Engine(settings)
    if not engine.status()["files"]:
        print(f"The store is empty: ingesting the sample corpus from {DEFAULT_CORPUS} …",
              flush=True)
        print(engine.ingest([DEFAULT_CORPUS]).summary(), flush=True)
    engine.retriever  # noqa: B018 - load the embedding model now, not on the first question
    if bool(settings.ui.user) != bool(settings.ui.password.get_secret_value()):
        print("Login is off: set both RAG_UI_USER and RAG_UI_PASSWORD to require one.",
              flush=True)
    options = launch_options(settings, host, port)
    if host not in LOOPBACK and not options["auth"]:
        print(f"Warning: serving on {host} without a login (set RAG_UI_USER/RAG_UI_PASSWORD).",
              flush=True)
    app = build_app(engine)
    app.queue(default_concurrency_limit=1)
    app.launch(**options)
    return 0
