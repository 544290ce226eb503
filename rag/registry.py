"""Answerers and embedders by name: the one place the CLI, the UI, ``rag eval`` and
``.env.example`` learn which backends exist.

A backend is one module in ``rag/answering/`` or ``rag/embedding/`` that declares
``BACKENDS = (Backend(...), ...)`` at module level; nothing else has to change to
add one. Discovery imports those modules, so a backend module keeps its heavy
imports (torch, llama.cpp, HTTP clients) inside its factory.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rag.config import Settings


@dataclass(frozen=True)
class Backend:
    """One answerer or embedder: how people name it, what it needs, how to build it."""

    name: str
    description: str  # one line, shown in `--help`, the UI and .env.example
    factory: Callable[[Settings], Any]
    options: tuple[str, ...] = ()  # the RAG_* variables it reads
    aliases: tuple[str, ...] = ()
    uses_llm: bool = False  # an LLM answerer: falls back to the extractive answer on failure
    license: str = ""  # of the model weights it runs, shown by `rag backends`
    # Offered as a choice in the app even when not configured, when this says it can run
    # (a cheap check: nothing loaded). None: offered only when configured.
    offered: Callable[[Settings], bool] | None = None


class Registry:
    """The backends of one kind, discovered from the modules of one package."""

    def __init__(self, kind: str, package: str, variable: str) -> None:
        self.kind = kind
        self.package = package
        self.variable = variable  # the setting that chooses one
        self._backends: dict[str, Backend] | None = None

    def _discover(self) -> dict[str, Backend]:
        if self._backends is None:
            found: dict[str, Backend] = {}
            pkg = importlib.import_module(self.package)
            for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
                module = importlib.import_module(f"{self.package}.{info.name}")
                for backend in getattr(module, "BACKENDS", ()):
                    for key in (backend.name, *backend.aliases):
                        if key in found:
                            raise RuntimeError(f"two {self.kind}s are called {key!r}")
                        found[key] = backend
            self._backends = found
        return self._backends

    def backends(self) -> list[Backend]:
        """Each backend once, in name order."""
        unique = {b.name: b for b in self._discover().values()}
        return [unique[name] for name in sorted(unique)]

    def names(self) -> list[str]:
        return [b.name for b in self.backends()]

    def get(self, name: str) -> Backend:
        """The backend called ``name`` (or an alias); a one-line ValueError listing the choices."""
        backend = self._discover().get((name or "").strip().lower())
        if backend is None:
            raise ValueError(
                f"unknown {self.variable} {name!r}: choose {', '.join(self.names())}"
            )
        return backend

    def create(self, name: str, settings: Settings) -> Any:
        return self.get(name).factory(settings)

    def help(self) -> str:
        """``name: description`` for each backend, for command-line help."""
        return "; ".join(f"{b.name}: {b.description}" for b in self.backends())


ANSWERERS = Registry("answerer", "rag.answering", "RAG_ANSWERER")
EMBEDDERS = Registry("embedder", "rag.embedding", "RAG_EMBEDDER")
