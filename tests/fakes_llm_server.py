"""A scripted LLM server for tests: real HTTP on 127.0.0.1, not a mock.

No instruction-tuned LLM can run on the test machines (2 CPU cores, no network,
no weights), so this server is a *test double*: it speaks the real wire
protocols the answerers use — OpenAI ``/v1/chat/completions`` (JSON and SSE
streaming) and Ollama ``/api/chat`` (JSON and NDJSON streaming) — and answers
from a script chosen by the request's ``model`` field:

=================  ===========================================================
``ok``             answers ``ANSWER`` (markers [1] and [2])
``cite-invalid``   answers ``ANSWER_INVALID`` (also cites [9], never sent)
``decline``        answers ``NOT_FOUND``
``empty``          answers with empty content
``http500``        HTTP 500 with a JSON error body
``echo-key``       HTTP 401 whose body echoes the Authorization header back
``malformed``      HTTP 200 whose body (or stream) is not valid JSON
``slow``           waits ``SLOW_S`` before sending anything
``slow-stream``    streams one chunk, then stalls ``SLOW_S``
``say:TEXT``       answers ``TEXT`` (the LLM judge's verdicts)
``drip``           sends its reply one byte every ``DRIP_S`` (JSON and stream)
``quoted``         quote-then-claim JSON quoting a sentence of passage [1] (the
                   1997 demand when it is there) with a faithful English claim
``two-claims``     the same quote behind two claims: the faithful one, and
                   ``INVENTED`` ("Russia demanded that Poland leave the EU")
``misquoted``      quote-then-claim JSON whose quote is in no passage
``unanswerable``   quote-then-claim JSON: ``{"answerable": false, "claims": []}``
``corpus``         free text ``CORPUS_ANSWER``: two sentences the 1997 passage
                   supports, citing [1] and [2][1]
``corpus-invalid`` free text: a supported sentence [1], then one citing [9]
=================  ===========================================================

Issue 24: the claim check removes claims their quote does not support, so the
scripts that go through the engine say what the sample corpus says (the 1997
demand, ``FAITHFUL``). No real model can be told to put an invented claim behind a
real quote on cue: ``two-claims`` is that test double.

Every request is recorded (path, headers, JSON body) in ``server.requests`` so
tests can check what the answerers actually sent.
"""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ANSWER = "Paris is the capital of France [1]. The Eiffel Tower is there [2][1]."
ANSWER_INVALID = "Paris is the capital of France [1]. It has 2 million people [9]."
# A sentence of the sample corpus and a faithful English restatement of it.
FAITHFUL = {"În ianuarie, Rusia a cerut formal revenirea la arhitectura de securitate din "
            "anul 1997.": "In January, Russia formally demanded a return to the 1997 "
                          "security architecture."}
INVENTED = "Russia demanded that Poland leave the European Union."
CORPUS_ANSWER = ("Russia formally demanded a return to the 1997 security architecture [1]. "
                 "In January, Russia asked to go back to the security architecture of 1997 "
                 "[2][1].")
CORPUS_INVALID = ("Russia formally demanded a return to the 1997 security architecture [1]. "
                  "It has 2 million people [9].")
SLOW_S = 5.0
DRIP_S = 0.25
CHUNK = 7  # characters per streamed delta, so a reply arrives in many pieces


_PASSAGE_ONE = re.compile(r"\[1\] \(source: [^)]*\)\n<<<\n(.*?)\n>>>", re.S)


def _quoted(body: dict[str, Any], model: str) -> str:
    """A structured reply quoting passage [1] (as sent in the prompt): its sentence of
    ``FAITHFUL`` when it has one, else its first sentence, restated verbatim."""
    if model == "unanswerable":
        return json.dumps({"answerable": False, "claims": []})
    prompt = str(body.get("messages", [{}])[-1].get("content", ""))
    found = _PASSAGE_ONE.search(prompt)
    passage = found.group(1) if found else ""
    known = [s for s in FAITHFUL if s in passage]
    sentence = known[0] if known else re.split(r"(?<=[.!?])\s", passage.strip())[0]
    quote = sentence if model != "misquoted" else "Words that no passage contains at all."
    faithful = FAITHFUL.get(sentence, sentence)
    claims = [{"passage": 1, "quote": f"  „{quote}”  ", "answer": f"{faithful[:-1]} [3]."}]
    if model == "two-claims":
        claims.append({"passage": 1, "quote": quote, "answer": INVENTED})
    return json.dumps({"answerable": True, "claims": claims}, ensure_ascii=False)


def _script(model: str, body: dict[str, Any] | None = None) -> str:
    if model.startswith("say:"):
        return model[4:]
    if model in ("quoted", "two-claims", "misquoted", "unanswerable"):
        return _quoted(body or {}, model)
    if model == "cite-invalid":
        return ANSWER_INVALID
    if model == "corpus":
        return CORPUS_ANSWER
    if model == "corpus-invalid":
        return CORPUS_INVALID
    if model == "decline":
        return "NOT_FOUND"
    if model == "empty":
        return ""
    return ANSWER


def _pieces(text: str) -> list[str]:
    return [text[i : i + CHUNK] for i in range(0, len(text), CHUNK)] or [""]


class _Handler(BaseHTTPRequestHandler):
    server: ScriptedLLMServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""

    def _send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def _start_stream(self, ctype: str) -> None:
        # No Content-Length: the body ends when the connection closes.
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

    def _write(self, data: str) -> None:
        self.wfile.write(data.encode())
        self.wfile.flush()

    def _stall(self) -> None:
        self.server.stop.wait(SLOW_S)

    def do_GET(self) -> None:
        self.server.record(self.path, dict(self.headers), None)
        self._send(404, b'{"error": "not found"}')

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self._send(400, b'{"error": "bad json"}')
            return
        self.server.record(self.path, dict(self.headers), body)
        model = str(body.get("model", ""))
        stream = bool(body.get("stream", False))
        if self.path.rstrip("/").endswith("/chat/completions"):
            self._openai(model, stream)
        elif self.path.rstrip("/") == "/api/chat":
            self._ollama(model, stream)
        elif self.path.rstrip("/").endswith("/embeddings"):  # failure modes only
            self._streaming = False
            if not self._failures(model):
                self._send(404, b'{"error": "no embeddings here"}')
        else:
            self._send(404, b'{"error": "not found"}')

    def _failures(self, model: str) -> bool:
        """Answer the misbehaving modes common to both protocols; True if handled."""
        if model == "http500":
            self._send(500, b'{"error": {"message": "internal failure in the model server"}}')
            return True
        if model == "echo-key":
            auth = self.headers.get("Authorization", "")
            body = json.dumps({"error": {"message": f"invalid credentials: {auth}"}})
            self._send(401, body.encode())
            return True
        if model == "malformed" and not self._streaming:
            self._send(200, b'{"choices": [{"message": {"content": "trunc')
            return True
        if model == "slow":
            self._stall()
            if self.server.stop.is_set():
                return True
        return False

    # -- OpenAI chat completions ------------------------------------------------------

    def _drip(self, stream: bool) -> None:
        """The whole reply, one byte every DRIP_S: no gap is long, the total is."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream" if stream else "application/json")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        for byte in json.dumps({"choices": [{"message": {"content": ANSWER}}]}).encode():
            if self.server.stop.wait(DRIP_S):
                return
            self.wfile.write(bytes([byte]))
            self.wfile.flush()

    def _openai(self, model: str, stream: bool) -> None:
        self._streaming = stream
        if self._failures(model):
            return
        if model == "drip":
            self._drip(stream)
            return
        text = _script(model, self.server.requests[-1]["body"])
        if not stream:
            reply = {
                "id": "chatcmpl-test",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
            }
            self._send(200, json.dumps(reply).encode())
            return
        self._start_stream("text/event-stream")
        base = {"id": "chatcmpl-test", "object": "chat.completion.chunk", "model": model}
        first = {**base, "created": 0, "choices": [{"index": 0, "delta": {"role": "assistant"}}]}
        self._write(f"data: {json.dumps(first)}\n\n")
        if model == "malformed":
            self._write("data: {this is not json\n\n")
            return
        for i, piece in enumerate(_pieces(text)):
            chunk = {
                **base,
                "created": 0,
                "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}],
            }
            self._write(f"data: {json.dumps(chunk)}\n\n")
            if model == "slow-stream" and i == 0:
                self._stall()
                return
        last = {
            **base,
            "created": 0,
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        }
        self._write(f"data: {json.dumps(last)}\n\n")
        self._write("data: [DONE]\n\n")

    # -- Ollama native chat -------------------------------------------------------------

    def _ollama(self, model: str, stream: bool) -> None:
        self._streaming = stream
        if self._failures(model):
            return
        text = _script(model)
        now = "2025-01-01T00:00:00Z"
        if not stream:
            reply = {
                "model": model,
                "created_at": now,
                "message": {"role": "assistant", "content": text},
                "done": True,
                "done_reason": "stop",
            }
            self._send(200, json.dumps(reply).encode())
            return
        self._start_stream("application/x-ndjson")
        if model == "malformed":
            self._write('{"model": "malformed", "message": {"content": "Par\n')
            return
        for i, piece in enumerate(_pieces(text)):
            line = {
                "model": model,
                "created_at": now,
                "message": {"role": "assistant", "content": piece},
                "done": False,
            }
            self._write(json.dumps(line) + "\n")
            if model == "slow-stream" and i == 0:
                self._stall()
                return
        done = {
            "model": model,
            "created_at": now,
            "message": {"role": "assistant", "content": ""},
            "done": True,
            "done_reason": "stop",
        }
        self._write(json.dumps(done) + "\n")


class ScriptedLLMServer(ThreadingHTTPServer):
    """The scripted server; ``url`` is its base address, ``requests`` what it received."""

    daemon_threads = True
    block_on_close = False

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.stop = threading.Event()
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def record(self, path: str, headers: dict[str, str], body: Any) -> None:
        with self._lock:
            self.requests.append({"path": path, "headers": headers, "body": body})

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (timeout tests) is expected; stay quiet about it."""

    def start(self) -> ScriptedLLMServer:
        self._thread.start()
        return self

    def close(self) -> None:
        """Wake stalled handlers, stop serving and release the port."""
        self.stop.set()
        self.shutdown()
        self.server_close()
        self._thread.join(timeout=5)
