"""What an oversize request body costs ``rag serve``: ``python scripts/body_limits.py [MB]``.

Starts ``rag serve`` on the sample corpus in a temporary folder (as the browser tests
do, with ``RAG_API_KEY`` set so ``/v1`` and ``/mcp`` read the body), then sends a body
of MB megabytes (default 300) to each route that takes one, twice: with a
``Content-Length`` header and chunked (no length: only counting the bytes as they
arrive can stop it). For each it prints the status and the server's resident memory
before, at its peak during the request (``VmHWM``, reset through
``/proc/PID/clear_refs`` first) and after. The client sends the same 1 MiB piece
over and over and stops as soon as the server answers, so it holds nothing itself.
A figure, not a test (docs/reliability.md, "Request bodies").
"""

from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.processes import child_pid, post_body  # noqa: E402
from tests.ui_helpers import running_app  # noqa: E402

KEY = "sk-body-limits-bench"
BOUNDARY = "rag-body-limits"


@dataclass(frozen=True)
class Target:
    name: str
    path: str
    headers: dict[str, str]
    head: bytes = b""  # bytes before the filler (a multipart part's header)
    tail: bytes = b""


TARGETS = (
    Target("/v1/chat/completions", "/v1/chat/completions",
           {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
           b'{"messages": [{"role": "user", "content": "', b'"}]}'),
    Target("/mcp", "/mcp",
           {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream"},
           b'{"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"x": "', b'"}}'),
    Target("/gradio_api/queue/join", "/gradio_api/queue/join",
           {"Content-Type": "application/json"}, b'{"data": ["', b'"], "fn_index": 0}'),
    Target("/gradio_api/upload", "/gradio_api/upload?upload_id=bench",
           {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
           (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; '
            'filename="big.txt"\r\nContent-Type: text/plain\r\n\r\n').encode(),
           f"\r\n--{BOUNDARY}--\r\n".encode()),
)


def memory(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM (peak) of ``pid`` in MB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) / 1024
    return out


def reset_peak(pid: int) -> None:
    """Start VmHWM again from the current RSS (Linux >= 4.0, our own child)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def main() -> int:
    mb = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    with tempfile.TemporaryDirectory(prefix="rag-body-limits-") as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        with running_app(Path(tmp) / "chroma", data, Path(tmp) / "serve.log",
                         extra_env={"RAG_API_KEY": KEY}) as url:
            port = int(url.rstrip("/").rsplit(":", 1)[1])
            pid = child_pid("rag.cli", "serve")
            print(f"{mb} MB bodies to rag serve (pid {pid}); RSS in MB")
            print(f"{'route':<24} {'framing':<15} {'status':<40} {'sent MB':>8} "
                  f"{'before':>7} {'peak':>7} {'after':>7} {'peak rise':>9}")
            for target in TARGETS:
                for chunked in (False, True):
                    time.sleep(1)
                    before = memory(pid)["VmRSS"]
                    reset_peak(pid)
                    status, sent, _ = post_body(port, target.path, target.headers,
                                                mb * 1_000_000, chunked, target.head, target.tail)
                    time.sleep(0.5)
                    after = memory(pid)
                    print(f"{target.name:<24} {'chunked' if chunked else 'Content-Length':<15} "
                          f"{status[:40]:<40} {sent / 1e6:>8.1f} {before:>7.1f} "
                          f"{after['VmHWM']:>7.1f} {after['VmRSS']:>7.1f} "
                          f"{after['VmHWM'] - before:>+9.1f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
