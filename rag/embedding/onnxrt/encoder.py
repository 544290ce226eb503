"""Mean pooling over an encoder session: windows, length batches, padding, one lock.

Both ONNX embedders embed a text the same way: its token ids (prompt included) are cut
into windows the model can take, each window gets the model's begin/end tokens, windows
of similar length are padded into one call, the last hidden state is averaged over each
window's real tokens, and a text's windows are averaged weighted by their content tokens.
What differs per model (special ids, window size, call sizes, what the graph is fed, a
prefix repeated in every window) is a parameter.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

Feed = Callable[[np.ndarray, np.ndarray], dict[str, np.ndarray]]  # (ids, mask) -> inputs


@dataclass(frozen=True)
class Layout:
    """How a model wants its windows: special ids, the longest window, call sizes."""

    bos: int
    eos: int
    pad: int
    window: int  # content tokens per window (positions minus the two specials)
    token_budget: int  # padded tokens per call (a longer window still goes alone)
    texts_per_call: int


def windows(contents: list[list[int]], size: int, prefixes: list[int] | None = None
            ) -> tuple[list[list[int]], np.ndarray, np.ndarray]:
    """Each text's ids in windows of at most ``size`` (no overlap): (windows, owner, weight).

    ``prefixes[i]`` ids at the start of text i (its prompt) are repeated at the start of
    every window of that text, so each window is embedded in the role the prompt gives.
    """
    out: list[list[int]] = []
    owner: list[int] = []
    weight: list[float] = []
    for text_index, ids in enumerate(contents):
        keep = prefixes[text_index] if prefixes else 0
        head, body = ids[:keep], ids[keep:]
        step = max(1, size - keep)
        for start in range(0, max(len(body), 1), step):
            piece = head + body[start : start + step]
            out.append(piece)
            owner.append(text_index)
            weight.append(float(max(len(piece), 1)))
    return out, np.asarray(owner), np.asarray(weight)


class MeanPoolEncoder:
    """Runs a session over windows and returns their mean last hidden states."""

    def __init__(self, session: Any, layout: Layout, feed: Feed, batch_size: int) -> None:
        self.session = session
        self.layout = layout
        self.feed = feed
        self.dim = int(session.get_outputs()[0].shape[-1])
        self._batch = max(1, min(batch_size, layout.texts_per_call))
        # One session: concurrent UI requests are serialised.
        self._lock = threading.Lock()

    def pooled(self, contents: list[list[int]], prefixes: list[int] | None = None
               ) -> np.ndarray:
        """(texts, dim) float64: each text's windows' means, averaged by content tokens."""
        pieces, owner, weight = windows(contents, self.layout.window, prefixes)
        with self._lock:
            means = self._window_means(pieces)
        out = np.zeros((len(contents), self.dim), dtype=np.float64)
        np.add.at(out, owner, means * weight[:, None])
        out /= np.bincount(owner, weights=weight, minlength=len(contents))[:, None]
        return out

    def _window_means(self, pieces: list[list[int]]) -> np.ndarray:
        """Mean of the last hidden state over each window, batched by similar length."""
        lay = self.layout
        means = np.zeros((len(pieces), self.dim), dtype=np.float64)
        order = sorted(range(len(pieces)), key=lambda i: len(pieces[i]))
        start = 0
        while start < len(order):
            longest = len(pieces[order[min(start + self._batch, len(order)) - 1]]) + 2
            size = max(1, min(self._batch, lay.token_budget // longest))
            batch = order[start : start + size]
            ids = np.full((len(batch), longest), lay.pad, dtype=np.int64)
            mask = np.zeros_like(ids)
            for row, i in enumerate(batch):
                seq = [lay.bos, *pieces[i], lay.eos]
                ids[row, : len(seq)] = seq
                mask[row, : len(seq)] = 1
            hidden = self.session.run(None, self.feed(ids, mask))[0]
            summed = (hidden * mask[..., None]).sum(axis=1, dtype=np.float64)
            means[batch] = summed / mask.sum(axis=1, keepdims=True)
            start += size
        return means


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1, as float32."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)
