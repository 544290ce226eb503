"""OpenAI-compatible ``/v1/chat/completions`` and ``/v1/models`` over an ``Engine``.

Served by ``rag serve`` in the same process and on the same port as the chat page, so
any OpenAI client (Open WebUI, LibreChat, the ``openai`` package, curl) can ask the
documents. The last user message is the question; earlier user/assistant messages are
the conversation, passed to the engine as ``history`` exactly as the chat page does, so
follow-ups are condensed the same way. System messages are ignored: the answerers
keep their own grounding rules.

The answer text carries its ``[n]`` markers; the citations travel twice: as OpenAI
``url_citation`` annotations (``message.annotations``, or ``delta.annotations`` in a
stream), which clients such as Open WebUI show as sources, each spanning its ``[n]``
and linking to the passage in the app; and in an extra ``rag`` object (on the
response, or on the last chunk of a stream) with scores and languages, which OpenAI
clients ignore. A stream sends the text in the pieces the answerer produces.
Plain Starlette routes rather than FastAPI models: every malformed body must get a 400
with a one-line reason in OpenAI's error shape, not FastAPI's 422 validation list. The
body is capped while it is read (``read_body``): a 413 in OpenAI's error shape before an
oversize body is buffered.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from rag.api_access import ApiAccess
from rag.config import Settings
from rag.documents import document_title
from rag.engine import QuestionError, in_use
from rag.errors import one_line, redact
from rag.markers import MARKER, group_numbers
from rag.types import Answer, Passage

log = logging.getLogger(__name__)

MODEL = "rag"  # the configured answerer; "rag:NAME" picks one of engine.answerer_names()
MAX_BODY_BYTES = 1_000_000
CHAT_PATH = "/v1/chat/completions"
ROLES = ("system", "developer", "user", "assistant", "tool", "function")
# (the request's base URL, a cited passage, its quote) -> a link that opens the passage
PassageLink = Callable[[str, Passage, str], str]


class ApiError(Exception):
    """A request the API refuses: HTTP status, OpenAI error type and a one-line message."""

    def __init__(self, status: int, message: str, kind: str = "invalid_request_error",
                 code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.kind, self.code = status, kind, code

    def response(self) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if self.status == 401 else None
        body = {"error": {"message": str(self), "type": self.kind, "param": None,
                          "code": self.code}}
        return JSONResponse(body, status_code=self.status, headers=headers)


async def read_body(request: Request) -> bytes:
    """The body, refused (413) once over ``MAX_BODY_BYTES``: by its ``Content-Length``
    before any of it is read, else by counting the chunks as they arrive.

    Not Starlette's ``max_body_size``, which stops the body as well but answers in plain
    text ("Content Too Large"), which OpenAI clients show as an unexplained failure."""
    too_large = ApiError(413, f"the request is over {MAX_BODY_BYTES // 1_000_000} MB: "
                         "send a shorter conversation", code="request_too_large")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise too_large
    return bytes(body)


@dataclass(frozen=True)
class ChatRequest:
    """What the engine needs from a chat completion body."""

    model: str
    question: str
    history: list[tuple[str, str]]
    stream: bool
    top_k: int | None


def _text(content: Any, where: str) -> str:
    """A message's text: a string, or OpenAI's list of content parts (text parts joined)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        if all(isinstance(t, str) for t in texts):
            return "\n".join(texts)  # type: ignore[arg-type]
    raise ApiError(400, f"{where}.content must be a string or a list of text parts")


def conversation(messages: Any) -> tuple[str, list[tuple[str, str]]]:
    """The last user message, and the (question, answer) turns before it."""
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "'messages' must be a non-empty list of {role, content} objects")
    turns: list[tuple[str, str]] = []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise ApiError(400, f"{where} must be an object whose role is one of "
                                f"{', '.join(ROLES)}")
        text = _text(message.get("content"), where)
        if message["role"] == "user":
            turns.append((text, ""))
        elif message["role"] == "assistant" and turns and not turns[-1][1]:
            turns[-1] = (turns[-1][0], text)
    if not turns:
        raise ApiError(400, "'messages' holds no user message: nothing to answer")
    last_user = max(i for i, m in enumerate(messages) if m["role"] == "user")
    if any(m["role"] == "assistant" for m in messages[last_user + 1:]):
        raise ApiError(400, "the last message to answer must come from the user")
    return turns[-1][0], turns[:-1]


def parse_request(body: bytes, models: dict[str, str | None]) -> ChatRequest:
    """Validate a chat completion body; every problem is an ``ApiError`` with one line."""
    try:
        data = json.loads(body)
    except UnicodeDecodeError as exc:
        raise ApiError(400, "the body is not UTF-8 text") from exc
    except json.JSONDecodeError as exc:
        raise ApiError(400, f"the body is not valid JSON: {exc.msg} at line {exc.lineno} "
                            f"column {exc.colno}") from exc
    if not isinstance(data, dict):
        raise ApiError(400, "the body must be a JSON object")
    model = data.get("model", MODEL)
    if not isinstance(model, str):
        raise ApiError(400, "'model' must be a string")
    if model not in models:
        raise ApiError(404, f"unknown model {model!r}; available: {', '.join(models)}",
                       code="model_not_found")
    stream = data.get("stream", False)
    if not isinstance(stream, bool):
        raise ApiError(400, "'stream' must be true or false")
    top_k = data.get("top_k")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int)
                              or not 1 <= top_k <= 50):
        raise ApiError(400, "'top_k' must be an integer from 1 to 50")
    question, history = conversation(data.get("messages"))
    return ChatRequest(model, question, history, stream, top_k)


def rag_field(answer: Answer, redact: Callable[[str], str]) -> dict[str, Any]:
    """The extra ``rag`` object: citations and how the answer was made."""
    return {
        "citations": [
            {"n": c.n, "source": c.source, "quote": c.text, "score": round(c.score, 4),
             "language": c.language}
            for c in answer.citations
        ],
        "answer": answer.answer,
        "answerer": answer.answerer,
        "status": answer.status,
        "declined": answer.declined,
        "fallback_reason": redact(answer.fallback_reason) if answer.fallback_reason else None,
        "standalone_question": answer.standalone_question,
        "support": round(answer.support, 4),
        "removed_claims": answer.removed_claims,
        "removal_note": answer.removal_note,
        "glosses": answer.glosses,
    }


def closing_text(streamed: str, final: str) -> str:
    """What to send after the streamed deltas so the client ends up with the final answer.

    The engine streams an answerer's text as it comes; its final answer can differ (a
    decline sends nothing first, an answer citing nothing falls back to the quotes).
    Text already sent cannot be taken back, so the final answer is appended when the
    stream does not already end with it.
    """
    if not streamed.strip():
        return final
    if streamed.rstrip().endswith(final.strip()):
        return ""
    return "\n\n" + final


def url_citations(answer: Answer, content: str, base_url: str,
                  link: PassageLink) -> list[dict[str, Any]]:
    """An OpenAI ``url_citation`` per citation: its document's title and file, a link to
    its passage, and the span of its first ``[n]`` in ``content`` (``content[start:end]``
    is the marker). ``content`` is what the client received, which ends with the final
    answer (a stream may have sent an LLM's text before it), so markers are looked for
    from there on."""
    passages = {p.n: p for p in answer.retrieved}
    quotes = {c.n: c.text for c in answer.citations if c.n in passages}
    start = max(content.rfind(answer.answer.strip()), 0)
    out: list[dict[str, Any]] = []
    for match in MARKER.finditer(content, start):
        for n in group_numbers(match.group("body")):
            if n not in quotes:
                continue
            passage, quote = passages[n], quotes.pop(n)
            title = document_title(passage.path, passage.source)
            out.append({"type": "url_citation", "url_citation": {
                "start_index": match.start("open"), "end_index": match.end(),
                "title": passage.source if title == passage.source
                else f"{title} ({passage.source})",
                "url": link(base_url, passage, quote)}})
    return out


class OpenAIApi:
    """The routes, bound to one engine; ``api_key`` empty means no key is asked for.

    ``login_required``: the chat page asks for a login; with no key set the API then
    refuses every call, so it never opens a way around the login. ``engine``: an
    ``Engine``, or anything with ``fresh() -> Engine`` (the app's live engine, reopened
    when another process changed the store), asked for the current engine per request.
    ``link``: builds each citation's URL (the app's passage page); without it the
    answers carry no ``url_citation`` annotations.
    """

    def __init__(self, engine: Any, api_key: str = "", login_required: bool = False,
                 secrets: Sequence[str] = (), link: PassageLink | None = None) -> None:
        self.source = engine
        self.access = ApiAccess(api_key, login_required)
        self.link = link
        self._secrets = [s for s in (*secrets, api_key) if s]

    def redact(self, text: str) -> str:
        return redact(text, self._secrets)

    def routes(self) -> list[Route]:
        return [
            Route("/v1/models", self.models, methods=["GET"]),
            Route(CHAT_PATH, self.chat, methods=["POST"]),
        ]

    def model_ids(self) -> dict[str, str | None]:
        """Model id -> answerer name (None: the configured one)."""
        names = self.source.answerer_names()  # from the settings: no need for a fresh engine
        return {MODEL: None, **{f"{MODEL}:{n}": n for n in names}}

    def _authorize(self, request: Request) -> None:
        reason = self.access.refusal(request.headers)
        if reason:
            raise ApiError(401, reason, "authentication_error",
                           "invalid_api_key" if self.access.key else None)

    async def models(self, request: Request) -> Response:
        try:
            self._authorize(request)
        except ApiError as exc:
            return exc.response()
        created = int(time.time())
        return JSONResponse({"object": "list", "data": [
            {"id": m, "object": "model", "created": created, "owned_by": "rag-assistant"}
            for m in self.model_ids()
        ]})

    async def chat(self, request: Request) -> Response:
        try:
            self._authorize(request)
            body = await read_body(request)
            models = self.model_ids()
            req = parse_request(body, models)
            answerer = models[req.model]
            base_url = str(request.base_url)
            # The engine is held (not reopened) until the answer is sent, the stream's too.
            held = contextlib.ExitStack()
            engine = await run_in_threadpool(held.enter_context, in_use(self.source))
            if not req.stream:
                with held:
                    answer = await run_in_threadpool(
                        engine.ask, req.question, req.top_k, answerer, req.history)
                return JSONResponse(self._completion(req.model, answer, base_url))
            try:
                events = engine.ask_stream(req.question, req.top_k, answerer, req.history)
                first = await run_in_threadpool(self._first, events)
            except BaseException:
                held.close()
                raise
            return StreamingResponse(self._sse(req.model, first, events, base_url, held),
                                     media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache"})
        except ApiError as exc:
            return exc.response()
        except QuestionError as exc:
            return ApiError(400, self._one_line(exc), code="invalid_question").response()
        except Exception as exc:  # never a stack trace to the client; the log has it
            log.exception("answering an API request failed")
            return ApiError(500, f"could not answer: {self._one_line(exc)}",
                            "server_error").response()

    def _one_line(self, exc: BaseException) -> str:
        return one_line(exc, self._secrets)

    def _annotations(self, answer: Answer, content: str, base_url: str) -> list[dict[str, Any]]:
        return url_citations(answer, content, base_url, self.link) if self.link else []

    @staticmethod
    def _first(events: Iterator[str | Answer]) -> str | Answer | None:
        """The first event, computed before the response starts so early errors get a status."""
        return next(events, None)

    def _completion(self, model: str, answer: Answer, base_url: str) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": answer.answer}
        annotations = self._annotations(answer, answer.answer, base_url)
        if annotations:
            message["annotations"] = annotations
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion",
            "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "finish_reason": "stop", "message": message}],
            "rag": rag_field(answer, self.redact),
        }

    def _sse(self, model: str, first: str | Answer | None, events: Iterator[str | Answer],
             base_url: str, held: contextlib.ExitStack) -> Iterator[str]:
        """Server-sent events in OpenAI's chunk format, ending with ``data: [DONE]``: the
        text as the answerer produces it, then the annotations, then the ``rag`` object.
        ``held`` keeps the engine in use until the stream ends (or the client leaves)."""
        with held:
            yield from self._sse_events(model, first, events, base_url)

    def _sse_events(self, model: str, first: str | Answer | None,
                    events: Iterator[str | Answer], base_url: str) -> Iterator[str]:
        base = {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion.chunk",
                "created": int(time.time()), "model": model}

        def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
            data = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                    **extra}
            return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"

        yield chunk({"role": "assistant", "content": ""})
        streamed: list[str] = []
        try:
            event = first
            while event is not None and not isinstance(event, Answer):
                streamed.append(event)
                yield chunk({"content": event})
                event = next(events, None)
            if event is None:
                raise RuntimeError("the engine returned no answer")
            rest = closing_text("".join(streamed), event.answer)
            if rest:
                streamed.append(rest)
                yield chunk({"content": rest})
            annotations = self._annotations(event, "".join(streamed), base_url)
            if annotations:
                yield chunk({"annotations": annotations})
            yield chunk({}, "stop", rag=rag_field(event, self.redact))
        except Exception as exc:  # the status is sent already: report in OpenAI's way
            log.exception("streaming an API answer failed")
            error = {"message": f"could not answer: {self._one_line(exc)}",
                     "type": "server_error", "param": None, "code": None}
            yield f"data: {json.dumps({'error': error}, ensure_ascii=False)}\n\n"
        yield "data: [DONE]\n\n"


def api_routes(engine: Any, settings: Settings, host: str,
               link: PassageLink | None = None) -> list[Route]:
    """The routes for ``rag serve`` (key from ``RAG_API_KEY``), with a line on how they are
    protected."""
    access = ApiAccess.from_settings(settings)
    api = OpenAIApi(engine, access.key, login_required=access.login_required,
                    secrets=settings.secrets(), link=link)
    print(f"OpenAI-compatible API at /v1 (models: {', '.join(api.model_ids())}) "
          f"{access.note(host)}.", flush=True)
    return api.routes()
