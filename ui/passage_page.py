"""The page a citation's link opens: one stored passage, its quoted sentence marked.

The ``/v1`` API gives every citation a URL (OpenAI's ``url_citation``), which clients
such as Open WebUI show as a clickable source; it points here. The same rules as the
chat page apply: with a login (``RAG_UI_USER``) the page needs Gradio's login cookie;
only text from the store is shown, found by its chunk id (never a file read by a path
from the URL: stored uploads and the documents' folders stay unserved, and no path is
shown); document text is escaped, never HTML, and the page forbids every script. The
quote from the link is marked only where the passage holds it, so a crafted link
cannot put words in a document's mouth. The file name in the link is there for people
reading it (Open WebUI lists sources by URL) and must match. A link to a file version
that has since been edited or removed answers 404.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import quote as url_quote
from urllib.parse import urlencode

from rag.ui.render import esc, esc_name, highlight
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from rag.display import language_name
from rag.documents import document_title
from rag.engine import in_use
from rag.types import Passage

log = logging.getLogger(__name__)

PATH = "/passage/{chunk_id}/{name}"
CHUNK_ID = re.compile(r"[0-9a-f]{16}:[0-9a-f]{1,64}:\d{1,9}")  # rag.store.chunk_key's shape
HEADERS = {"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
           "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
           "Cache-Control": "no-store"}
STYLE = """body { font: 16px/1.6 system-ui, sans-serif; max-width: 46em; margin: 2em auto;
  padding: 0 1em; } h1 { font-size: 1.3em; margin-bottom: .2em; }
.meta { opacity: .75; font-size: .9em; } .file { font-family: ui-monospace, monospace; }
blockquote { margin: 1em 0; padding: .6em 1em; border-left: 4px solid #8884; }
mark { padding: 0 .1em; }"""


def passage_url(base_url: str, passage: Passage, quote: str) -> str:
    """The link that opens ``passage`` with ``quote`` marked (``base_url``: the app's root)."""
    path = PATH.format(chunk_id=url_quote(passage.chunk_id, safe=":"),
                       name=url_quote(passage.source, safe=""))
    return f"{base_url.rstrip('/')}{path}?{urlencode({'q': quote})}"


def logged_in(request: Request) -> bool:
    """Gradio's own rule (its ``/gradio_api/user`` route): no login asked, or a token it
    issued at ``/login`` in one of its two cookies."""
    app = request.app
    if getattr(app, "auth", None) is None:
        return True
    cookie = getattr(app, "cookie_id", "")
    token = (request.cookies.get(f"access-token-{cookie}")
             or request.cookies.get(f"access-token-unsecure-{cookie}"))
    return token is not None and token in getattr(app, "tokens", {})


def marked(text: str, quote: str) -> str:
    """The escaped passage, with ``quote`` marked only where the passage holds it."""
    if quote.strip() and " ".join(quote.split()) in " ".join(text.split()):
        return highlight(text, quote)
    return esc(text)


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    html = (f'<!doctype html><html><head><meta charset="utf-8"><meta name="viewport" '
            f'content="width=device-width, initial-scale=1"><title>{esc(title)}</title>'
            f"<style>{STYLE}</style></head><body>{body}</body></html>")
    return HTMLResponse(html, status_code=status, headers=HEADERS)


def passage_html(passage: Passage, quote: str) -> str:
    title = document_title(passage.path, passage.source)
    return (f"<h1>{esc(title)}</h1><div class=\"meta\"><span class=\"file\">"
            f"{esc_name(passage.source)}</span> · {esc(language_name(passage.language))} · "
            f"passage {passage.position + 1}</div>"
            f"<blockquote>{marked(passage.text, quote)}</blockquote>")


class PassagePage:
    """The ``/passage/{chunk_id}`` route over an engine (or the app's live engine)."""

    def __init__(self, engine: Any) -> None:
        self.source = engine

    def routes(self) -> list[Route]:
        return [Route(PATH, self.page, methods=["GET"])]

    def _lookup(self, chunk_id: str) -> Passage | None:
        with in_use(self.source) as engine:
            return engine.passage(chunk_id)

    async def page(self, request: Request) -> Response:
        if not logged_in(request):
            return _page("Log in first", '<p>Log in to the <a href="/">RAG assistant</a>, '
                         "then open this link again.</p>", 401)
        chunk_id = request.path_params["chunk_id"]
        passage = None
        try:
            if CHUNK_ID.fullmatch(chunk_id):
                passage = await run_in_threadpool(self._lookup, chunk_id)
        except Exception:  # noqa: BLE001 - the log has the trace, the page one line
            log.exception("reading a cited passage failed")
            return _page("Not available", "<p>The documents cannot be read just now; try "
                         "again later.</p>", 503)
        if passage is None or passage.source != request.path_params["name"]:
            return _page("Passage not found", "<p>This passage is not in the documents any "
                         "more: its file was changed or removed since the answer.</p>", 404)
        quote = request.query_params.get("q", "")
        return _page(document_title(passage.path, passage.source),
                     passage_html(passage, quote))
