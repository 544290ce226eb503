"""An answerer over any LlamaIndex ``LLM``, chosen by configuration.

Every provider LlamaIndex supports (its ``llama-index-llms-*`` packages: Ollama,
vLLM, Bedrock, Anthropic, HuggingFace, llama.cpp...) plugs in without code of ours:

    RAG_ANSWERER=llamaindex
    RAG_LLAMAINDEX_LLM=llama_index.llms.ollama.Ollama
    RAG_LLAMAINDEX_LLM_KWARGS='{"model": "llama3.2", "request_timeout": 60}'

The LLM gets the same prompt as the built-in answerers (rules, fenced numbered
passages, question), so the engine's citation checks and fallback apply unchanged.
``llama_index`` is imported only when this answerer is built.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from importlib import import_module
from typing import Any

from rag.errors import one_line
from rag.registry import Backend
from rag.types import AnswererError, Draft, Passage

NAME = "llamaindex"
LLM_ENV, KWARGS_ENV = "RAG_LLAMAINDEX_LLM", "RAG_LLAMAINDEX_LLM_KWARGS"
_SECRET_KEY = re.compile(r"key|token|secret|password", re.I)


def load_llm(class_path: str, kwargs: Mapping[str, Any] | None = None) -> Any:
    """Import ``class_path`` (module.Class), check it is a LlamaIndex LLM, build it.

    Every failure is a ``ValueError`` with one line (the engine then falls back to the
    extractive answer and says why).
    """
    from llama_index.core.base.llms.base import BaseLLM

    module_name, _, class_name = class_path.strip().rpartition(".")
    if not module_name:
        raise ValueError(f"{LLM_ENV} must be a dotted class path such as "
                         "llama_index.llms.ollama.Ollama")
    try:
        cls = getattr(import_module(module_name), class_name)
    except ImportError as exc:
        raise ValueError(f"cannot import {module_name} ({exc.name} is missing): install the "
                         "llama-index-llms-* package that provides it") from exc
    except AttributeError as exc:
        raise ValueError(f"{module_name} has no {class_name}") from exc
    if not (isinstance(cls, type) and issubclass(cls, BaseLLM)):
        raise ValueError(f"{class_path} is not a LlamaIndex LLM class")
    try:
        return cls(**dict(kwargs or {}))
    except Exception as exc:  # noqa: BLE001 - every provider raises its own types
        raise ValueError(f"cannot create {class_name}: {_one_line(str(exc), kwargs)}") from exc


def parse_kwargs(raw: str) -> dict[str, Any]:
    """The JSON object of keyword arguments (empty text: none)."""
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{KWARGS_ENV} is not valid JSON: {exc.msg}") from exc
    if not isinstance(value, dict):
        raise ValueError(f"{KWARGS_ENV} must be a JSON object of keyword arguments")
    return value


def _one_line(text: str, kwargs: Mapping[str, Any] | None = None) -> str:
    """One short line with every secret-looking keyword argument blanked out."""
    secrets = [v for k, v in (kwargs or {}).items() if _SECRET_KEY.search(k) and isinstance(v, str)]
    return one_line(" ".join(text.split()), secrets)


class LlamaIndexAnswerer:
    """Asks a LlamaIndex ``LLM`` (chat interface) with our prompt; implements ``Answerer``."""

    def __init__(self, llm: Any, context_window: int = 0, max_tokens: int = 0,
                 secrets: Mapping[str, Any] | None = None) -> None:
        self.llm = llm
        self._window, self._max_tokens = context_window, max_tokens
        self._secrets = dict(secrets or {})
        model = getattr(llm, "model", None) or getattr(llm, "model_name", None)
        self.name = f"{NAME}:{type(llm).__name__}" + (f":{model}" if model else "")

    def _messages(self, question: str, passages: Sequence[Passage]) -> list[Any]:
        from llama_index.core.llms import ChatMessage

        from rag.answering.llm import build_messages  # the prompt every answerer shares

        return [ChatMessage(role=m["role"], content=m["content"])
                for m in build_messages(question, passages, self._window, self._max_tokens)]

    def _error(self, exc: BaseException) -> AnswererError:
        text = str(exc) or type(exc).__name__
        return AnswererError(f"{type(self.llm).__name__}: {_one_line(text, self._secrets)}")

    def draft(self, question: str, passages: Sequence[Passage]) -> Draft:
        from rag.answering.citations import is_decline

        try:
            reply = self.llm.chat(self._messages(question, passages))
        except Exception as exc:  # noqa: BLE001 - every provider raises its own types
            raise self._error(exc) from exc
        text = (reply.message.content or "").strip()
        if not text:
            raise AnswererError(f"{type(self.llm).__name__} sent an empty reply")
        return Draft(text=text, answerer=self.name, declined=is_decline(text))

    def stream(self, question: str, passages: Sequence[Passage]) -> Iterator[str]:
        try:
            for part in self.llm.stream_chat(self._messages(question, passages)):
                if part.delta:
                    yield part.delta
        except Exception as exc:  # noqa: BLE001 - every provider raises its own types
            raise self._error(exc) from exc


def answerer_from_settings(settings: Any) -> LlamaIndexAnswerer:
    """The answerer ``RAG_LLAMAINDEX_LLM``/``RAG_LLAMAINDEX_LLM_KWARGS`` describe; the prompt
    budget comes from ``RAG_LLM_CONTEXT_WINDOW`` and ``RAG_LLM_MAX_TOKENS``."""
    class_path = settings.llamaindex.llm.strip()
    if not class_path:
        raise ValueError(f"set {LLM_ENV} to a LlamaIndex LLM class, e.g. "
                         "llama_index.llms.ollama.Ollama")
    kwargs = parse_kwargs(settings.llamaindex.llm_kwargs)
    return LlamaIndexAnswerer(load_llm(class_path, kwargs), settings.llm.context_window,
                              settings.llm.max_tokens, kwargs)


BACKENDS = (
    Backend(name=NAME, description="any LlamaIndex LLM class, by dotted path plus JSON "
            "keyword arguments", factory=answerer_from_settings,
            options=(LLM_ENV, KWARGS_ENV, "RAG_LLM_CONTEXT_WINDOW", "RAG_LLM_MAX_TOKENS"),
            uses_llm=True),
)
