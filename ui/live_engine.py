"""The app's engine, reopened when another process changes the local store.

Measured with chromadb 1.5: a ``PersistentClient`` keeps its vector index in memory,
so after ``rag ingest`` in another process the app's documents list (read from
SQLite) shows the new file while its questions are still answered from the old
index ("Not found"). Even a new client in the same process shares the cached
system, so reopening means clearing Chroma's client cache and building a new
``Engine`` (the loaded embedder is reused).

Before each question the app calls ``fresh()``: a cheap check of the store files'
modification times, and only when they moved, of the manifest. Our own ingests and
deletes run inside ``writing()`` and re-baseline afterwards, so they never look
like someone else's. Questions and writes share the engine (``using()``); a reopen
waits for none of them: it happens only when nobody is using the engine.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rag.engine import Engine

log = logging.getLogger(__name__)


def _manifest_signature(engine: Engine) -> tuple[tuple[str, int, int], ...]:
    """The file manifest alone: ``status()`` would also probe the vector index each time."""
    store = engine.store
    files = store.files() if store.open_readonly() else []
    return tuple(sorted((f.path, f.chunks, f.sentences) for f in files))


def _clear_chroma_cache() -> None:
    from chromadb.api.shared_system_client import SharedSystemClient

    SharedSystemClient.clear_system_cache()


class LiveEngine:
    """Holds the current ``Engine`` and swaps it when the store changed under it."""

    def __init__(self, engine: Engine, reopen: Callable[[Engine], Engine] | None = None) -> None:
        self.engine = engine
        self._reopen = reopen or self._default_reopen
        self._lock = threading.Lock()
        self._users = 0
        self._writers = 0
        local = not engine.settings.chroma.host
        self._dir = Path(engine.settings.chroma.dir) if local else None
        self._stamp = self._files_stamp()
        self._signature = _manifest_signature(engine) if local else ()
        self.reopened = 0

    @staticmethod
    def _default_reopen(old: Engine) -> Engine:
        _clear_chroma_cache()
        return Engine(old.settings, embedder=old.embedder)

    def _files_stamp(self) -> tuple[tuple[str, int, int], ...]:
        if self._dir is None or not self._dir.is_dir():
            return ()
        out = []
        for p in self._dir.iterdir():
            if p.is_file():
                st = p.stat()
                out.append((p.name, st.st_mtime_ns, st.st_size))
        return tuple(sorted(out))

    @contextmanager
    def using(self) -> Iterator[Engine]:
        """The engine, kept from being swapped while the caller uses it."""
        with self._lock:
            self._users += 1
            engine = self.engine
        try:
            yield engine
        finally:
            with self._lock:
                self._users -= 1

    @contextmanager
    def writing(self) -> Iterator[Engine]:
        """Like ``using``, for our own ingests and deletes: re-baselines afterwards."""
        with self._lock:
            self._writers += 1
        try:
            with self.using() as engine:
                yield engine
        finally:
            with self._lock:
                self._writers -= 1
                if not self._writers and self._dir is not None:
                    self._stamp = self._files_stamp()
                    self._signature = _manifest_signature(self.engine)

    def fresh(self) -> Engine:
        """The engine, reopened first if another process changed the store since we looked."""
        if self._dir is None:
            return self.engine  # a Chroma server: every query already reads its current state
        with self._lock:
            if self._writers or self._users:
                return self.engine  # our own write in progress, or in use: check next time
            stamp = self._files_stamp()
            if stamp == self._stamp:
                return self.engine
            self._stamp = stamp
            signature = _manifest_signature(self.engine)
            if signature != self._signature:
                log.info("the store changed outside the app: reopening it")
                self.engine = self._reopen(self.engine)
                self._signature = _manifest_signature(self.engine)
                self.reopened += 1
            return self.engine

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)
