"""Request bodies capped while they are read, on every route of ``rag serve``.

Starlette's ``RequestBodyLimitMiddleware`` refuses a body whose ``Content-Length`` is
over the limit before reading it, and counts the chunks of one without a length, so
nothing over the limit is ever buffered (413). Gradio's routes cannot be given a limit
of their own, and its JSON routes read whatever they are sent: a 100 MB POST to
``/gradio_api/queue/join`` raised the server's peak RSS by 288 MB, even unauthenticated
with the login on (measured, scripts/body_limits.py). So this applies one limit to
every path but the ones that cap their bodies themselves: Gradio's upload route stops
a multipart body at ``max_file_size`` per file and spools files to disk (a 300 MB
upload: 413 after ~24 MB, +0.1 MB RSS) and ``/v1/chat/completions`` stops it at 1 MB
itself, answering in OpenAI's error shape. ``/mcp`` narrows the limit to 1 MB (in the
``mcp`` package).
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from rag.openai_api import CHAT_PATH

# Gradio's JSON bodies carry an event's inputs: the question and the conversation the
# browser keeps (30 turns with their citations and passages: well under 1 MB).
DEFAULT_MAX_BODY_BYTES = 5_000_000
# Paths whose handler caps the body itself (Gradio's multipart parser, per file; the API).
SELF_LIMITED = ("/gradio_api/upload", CHAT_PATH)


class BodyLimits:
    """``RequestBodyLimitMiddleware`` for every path except those in ``exempt``."""

    def __init__(self, app: ASGIApp, max_body_size: int = DEFAULT_MAX_BODY_BYTES,
                 exempt: Sequence[str] = SELF_LIMITED) -> None:
        self.app = app
        self.limited = RequestBodyLimitMiddleware(app, max_body_size)
        self.exempt = tuple(exempt)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        exempt = scope["type"] == "http" and scope.get("path", "").startswith(self.exempt)
        await (self.app if exempt else self.limited)(scope, receive, send)
