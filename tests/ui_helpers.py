"""Start the real chat app and drive it from Playwright, shared by the UI tests."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.processes import clean_env

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]
ANSWER = "#chat .rag-answer:not(.rag-streaming)"  # a finished answer or error message
VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}
# Installed in the page before a question: when the first answer text appears, and
# when the Ask button was pressed (performance.now() milliseconds).
FIRST_TOKEN_JS = """() => {
  window.__askedAt = null; window.__firstTokenAt = null;
  const before = document.querySelectorAll('#chat .rag-turn').length;
  document.querySelector('#ask').addEventListener('click',
    () => { window.__askedAt = window.__askedAt || performance.now(); }, {capture: true});
  new MutationObserver(() => {
    const turns = document.querySelectorAll('#chat .rag-turn');
    if (window.__firstTokenAt || turns.length <= before) return;
    const text = turns[turns.length - 1].querySelector('.rag-answer .rag-text');
    if (text && text.textContent.replace('…', '').trim()) window.__firstTokenAt = performance.now();
  }).observe(document.body, {childList: true, subtree: true, characterData: true});
}"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_app(chroma_dir: Path, data_dir: Path, log_path: Path,
                extra_env: dict[str, str] | None = None, timeout_s: float = 180) -> Iterator[str]:
    """``rag serve`` in a subprocess on a free loopback port; yields its URL.

    A subprocess rather than a thread, so the test exercises the real entry point
    (``rag.cli`` → ``ui.app.serve``) with settings read from the environment.
    """
    port = free_port()
    env = clean_env()
    env.update(RAG_CHROMA_DIR=str(chroma_dir), RAG_DATA_DIR=str(data_dir),
               # the app offers an installed local model: none, whatever this machine has
               RAG_LLM_MODEL_PATH=str(data_dir / "no-local-model.gguf"))
    env.update(extra_env or {})
    url = f"http://127.0.0.1:{port}/"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rag.cli", "serve", "--port", str(port)],
            cwd=data_dir.parent, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"rag serve exited: {log_path.read_text()[-3000:]}")
                try:
                    with urllib.request.urlopen(url, timeout=2) as resp:
                        if resp.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"rag serve not up: {log_path.read_text()[-3000:]}")
                time.sleep(0.5)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_ready(page: Any, timeout_ms: int = 60_000) -> float:
    """Wait until the page can be used (box, button, documents listed); returns the
    milliseconds since navigation started, as the page's own clock measures them."""
    page.locator("#question textarea").wait_for(timeout=timeout_ms)
    page.locator("#docs .rag-doc").first.wait_for(timeout=timeout_ms)
    page.locator("#header .rag-loaded").wait_for(timeout=timeout_ms)
    return float(page.evaluate("performance.now()"))


def ask(page: Any, question: str, timeout_ms: int = 60_000) -> Any:
    """Ask in the chat and wait for the answer; returns the answer's locator."""
    from playwright.sync_api import expect

    answers = page.locator(ANSWER)
    before = answers.count()
    page.locator("#question textarea").fill(question)
    page.locator("#ask").click()
    expect(answers).to_have_count(before + 1, timeout=timeout_ms)
    return answers.nth(before)


def open_advanced(page: Any) -> None:
    """Unfold the advanced settings (folded by default)."""
    if not page.locator("#top-k").is_visible():
        page.locator("#advanced").get_by_text("Advanced settings").click()
        page.locator("#top-k").wait_for(state="visible")


def choose(page: Any, dropdown_id: str, option: str) -> None:
    """Pick ``option`` in a Gradio dropdown (a custom listbox, not a <select>)."""
    page.locator(f"#{dropdown_id} input").click()
    page.get_by_role("option", name=option, exact=True).click()


def upload(page: Any, files: list[Any], expect_line: str, timeout_ms: int = 180_000) -> None:
    """Upload through the file input and wait for the report to mention ``expect_line``."""
    from playwright.sync_api import expect

    page.locator("#upload input[type=file]").set_input_files(files)
    expect(page.locator("#upload-report")).to_contain_text(expect_line, timeout=timeout_ms)


def in_viewport(page: Any, locator: Any) -> bool:
    """Whether the element is wholly inside the window, without scrolling the page."""
    box = locator.bounding_box()
    size = page.viewport_size
    return bool(box) and box["x"] >= 0 and box["y"] >= 0 and \
        box["x"] + box["width"] <= size["width"] + 1 and \
        box["y"] + box["height"] <= size["height"] + 1


def inside(inner: Any, outer: Any) -> bool:
    """Whether ``inner``'s box lies within ``outer``'s (1 px of rounding allowed)."""
    a, b = inner.bounding_box(), outer.bounding_box()
    return bool(a and b) and a["x"] >= b["x"] - 1 and a["y"] >= b["y"] - 1 and \
        a["x"] + a["width"] <= b["x"] + b["width"] + 1 and \
        a["y"] + a["height"] <= b["y"] + b["height"] + 1
