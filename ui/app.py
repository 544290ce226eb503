"""The Gradio chat app: a header, the chat column and the documents column, wired together.

Everything the app knows comes from ``Engine``; the panels (``ui.chat``,
``ui.documents``) only render and route. Questions and document changes run in
separate concurrency groups, so an upload never holds a question up; errors reach
the person as one line without setting names or secrets (tracebacks go to the log).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import gradio as gr
from rag.ui.assets import CSS, page_js
from rag.ui.body_limits import BodyLimits
from rag.ui.chat import (
    ASK_CONCURRENCY,
    ASK_QUEUE,
    chat_panel,
    make_respond,
    plain,
    restore,
    wire_chat,
)
from rag.ui.documents import Documents, documents_panel
from rag.ui.examples import load_examples
from rag.ui.live_engine import LiveEngine
from rag.ui.login import ClientAddress, SlowLogin
from rag.ui.passage_page import PassagePage, passage_url
from rag.ui.query_first import QueryFirst
from rag.ui.uploads import Quota
from starlette.middleware import Middleware

from rag import errors
from rag.config import DEFAULT_CORPUS, Settings
from rag.engine import Engine, QuestionError, in_use

log = logging.getLogger(__name__)

LOOPBACK = ("127.0.0.1", "localhost", "::1")
# Gradio's temporary upload copies older than an hour are deleted every 10 minutes
# (our handler deletes its own at once; this catches uploads sent without a handler).
DELETE_CACHE = (600, 3600)


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
    return errors.redact(text, settings.secrets())


def without_paths(text: str, settings: Settings) -> str:
    """``text`` with the server's own folders named in words: the page shows no paths."""
    for folder, words in ((settings.chroma.dir, "the document store"),
                          (settings.data_dir, "the app's data folder")):
        if folder:
            text = text.replace(folder, words)
    return text


def one_line(exc: BaseException, settings: Settings) -> str:
    """The first line of an error, without secrets: what the person sees instead of a trace."""
    return errors.one_line(exc, settings.secrets())


def _corpus_folders(engine: Engine) -> list[Path]:
    """Where example questions may live: the sample corpus and every stored file's folder."""
    folders = [DEFAULT_CORPUS]
    folders += [Path(f["path"]).parent for f in engine.status()["files"] if f.get("path")]
    return folders


def _advanced(answerers: list[str], top_k: int) -> tuple[Any, Any, Any]:
    """Folded settings: how many passages, which answerer (only if there is a choice)."""
    with gr.Accordion("Advanced settings", open=False, elem_id="advanced"):
        k = gr.Slider(1, 20, value=top_k, step=1, label="Passages to read per question",
                      elem_id="top-k")
        answerer = gr.Dropdown(answerers, value=answerers[0], label="Who writes the answer",
                               elem_id="answerer", visible=len(answerers) > 1)
        searched = gr.Checkbox(True, elem_id="show-searched",
                               label="Show what a follow-up question searched for")
    return k, answerer, searched


def _api_ask(live: LiveEngine, settings: Settings) -> Any:
    def ask(question: str, top_k: int = settings.top_k, answerer: str = "") -> dict[str, Any]:
        """Answer a question from the documents; returns the ``rag ask --json`` dict."""
        try:
            with in_use(live) as engine:
                result = engine.ask(question, top_k=top_k, answerer=answerer or None).to_dict()
            if result["fallback_reason"]:
                result["fallback_reason"] = redact(result["fallback_reason"], settings)
            return result
        except QuestionError as exc:
            raise gr.Error(one_line(exc, settings)) from exc
        except Exception as exc:
            log.exception("answering failed")
            raise gr.Error(f"could not answer: {one_line(exc, settings)}") from exc

    return ask


def build_app(engine: Engine | LiveEngine, quota: Quota | None = None) -> gr.Blocks:
    """The chat app over ``engine``; launch it with ``launch_options`` (theme, CSS, limits)."""
    live = engine if isinstance(engine, LiveEngine) else LiveEngine(engine)
    settings = live.engine.settings
    quota = quota or Quota.for_file_limit(settings.upload_max_mb)
    examples = [e.question for e in load_examples(_corpus_folders(live.engine))]
    def shown(error: BaseException | str) -> str:
        text = one_line(error, settings) if isinstance(error, BaseException) else str(error)
        return plain(without_paths(redact(text, settings), settings))

    docs = Documents(live, Path(settings.data_dir) / "uploads", quota, shown)
    with gr.Blocks(title="Ask your documents", analytics_enabled=False,
                   delete_cache=DELETE_CACHE) as app:
        turns = gr.BrowserState([], storage_key="rag-conversation")
        header = gr.HTML(elem_id="header", js_on_load=None)
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=340):
                panel = chat_panel(examples)
            with gr.Column(scale=2, min_width=300):
                doc_panel = documents_panel(quota)
                top_k, answerer, show_searched = _advanced(live.engine.answerer_names(),
                                                           settings.top_k)
        wire_chat(panel, turns, [top_k, answerer, show_searched], show_searched,
                  make_respond(live, lambda text: without_paths(redact(text, settings), settings)))
        docs.wire(doc_panel, header)
        app.load(docs.refresh, None, [doc_panel.docs, header, doc_panel.to_remove],
                 api_visibility="private", queue=False, show_progress="hidden")
        app.load(restore, [turns, show_searched], panel.chat, api_visibility="private",
                 queue=False, show_progress="hidden")
        gr.api(_api_ask(live, settings), api_name="ask", concurrency_id=ASK_QUEUE,
               concurrency_limit=ASK_CONCURRENCY)
    app.rag_live_engine = live  # type: ignore[attr-defined] - for tests and serve()
    return app


def launch_options(settings: Settings, host: str, port: int) -> dict[str, Any]:
    """Keyword arguments for ``Blocks.launch``: binding, login (slowed per client
    address), upload and request body limits, look."""
    password = settings.ui.password.get_secret_value()
    auth = SlowLogin(settings.ui.user, password).check if settings.ui.user and password \
        else None
    return {
        "server_name": host, "server_port": port, "auth": auth,
        "auth_message": "Log in to the RAG assistant" if auth else None,
        "max_file_size": int(settings.upload_max_mb * 1e6), "show_error": False,
        "ssr_mode": False, "theme": _theme(), "css": CSS, "footer_links": ["api"],
        "js": page_js(settings.max_question_chars),
        "enable_monitoring": False, "mcp_server": False, "pwa": False,
        # bounds the per-session state that every API caller without a session adds
        "state_session_capacity": settings.ui.max_sessions,
        "app_kwargs": {"middleware": [Middleware(ClientAddress), Middleware(BodyLimits)]},
    }


def warm_gradio_event_path() -> None:
    """Gradio enters ``utils.MatplotlibBackendMananger`` around every event, which
    imports matplotlib (when installed) the first time: measured ~450 ms on this
    2-core VM, paid by the first visitor's page load (its two load events: first
    page 2.1 s to interactive, later pages 1.2-1.5 s). Entering it once at start
    moves that cost before the first visitor."""
    from gradio.utils import MatplotlibBackendMananger

    with MatplotlibBackendMananger():
        pass


def serve(host: str = "127.0.0.1", port: int = 7860) -> int:
    """Start the app on ``host:port`` (loopback by default); blocks until stopped."""
    settings = Settings()
    engine = Engine(settings)
    engine = Engine(settings, embedder=QueryFirst(engine.embedder))  # questions before ingests
    if not engine.status()["files"]:
        print(f"The store is empty: ingesting the sample corpus from {DEFAULT_CORPUS} …",
              flush=True)
        print(engine.ingest([DEFAULT_CORPUS]).summary(), flush=True)
    # load the embedding model and the vector index now, not on the first question
    engine.retriever.retrieve("warm-up", 1)
    warm_gradio_event_path()
    if bool(settings.ui.user) != bool(settings.ui.password.get_secret_value()):
        print("Login is off: set both RAG_UI_USER and RAG_UI_PASSWORD to require one.",
              flush=True)
    options = launch_options(settings, host, port)
    if host not in LOOPBACK and not options["auth"]:
        print(f"Warning: serving on {host} without a login (set RAG_UI_USER/RAG_UI_PASSWORD).",
              flush=True)
    live = LiveEngine(engine)  # one live engine for the page, /v1 and /mcp
    app = build_app(live)
    app.queue(default_concurrency_limit=1)
    from rag.mcp_server import http_routes
    from rag.openai_api import api_routes  # /v1/chat/completions, /v1/models: same port

    mcp_routes, mcp_lifespan = http_routes(live, settings, host)
    routes = [*api_routes(live, settings, host, link=passage_url), *mcp_routes,
              *PassagePage(live).routes()]
    options["app_kwargs"].update(routes=routes, lifespan=mcp_lifespan)
    app.launch(**options)
    return 0
