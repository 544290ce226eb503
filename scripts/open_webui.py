"""Open WebUI against ``rag serve``, offline, checked in headless Chromium.

    python scripts/open_webui.py [--venv /tmp/owui-venv] [--screenshot PATH]

Not run by CI: Open WebUI is a large install (~7 GB with its torch). Install it into a
virtualenv of its own, outside the project: ``python3 -m venv /tmp/owui-venv &&
/tmp/owui-venv/bin/pip install torch==2.13.0 open-webui==0.12.4`` (torch first, the CPU
build, or pip pulls a CUDA one).

Starts ``rag serve`` on the sample corpus with a random ``RAG_API_KEY``, then Open
WebUI pointed at its ``/v1`` with the offline settings of issue 26 and a fresh data
folder. Both programs read ``RAG_*`` variables with different meanings (Open WebUI's
``RAG_EMBEDDING_MODEL`` is its own retrieval), so each process gets only its own.
In Chromium it asks the 1997 question and checks that the answer's source names
003_f0b8fe8fdb47aa20.txt, that the source's link opens the passage in the app with the
quoted sentence marked, and saves a screenshot with the sources shown. Exit status 1
with a one-line reason when a check fails.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.processes import background_server  # noqa: E402
from tests.ui_helpers import CHROMIUM, CHROMIUM_ARGS, free_port, running_app  # noqa: E402

QUESTION = "What did Russia demand about 1997?"
EXPECTED = "003_f0b8fe8fdb47aa20.txt"
SCREENSHOT = ROOT / "docs" / "screenshots" / "open-webui-1997.png"


def open_webui_env(api_url: str, key: str, data_dir: Path) -> dict[str, str]:
    """Open WebUI offline (issue 26), talking only to ``api_url``; no ``RAG_*`` of ours."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(
        OPENAI_API_BASE_URL=api_url, OPENAI_API_KEY=key, ENABLE_OLLAMA_API="false",
        OLLAMA_BASE_URL=f"http://127.0.0.1:{free_port()}", WEBUI_AUTH="false",
        DATA_DIR=str(data_dir), HF_HUB_OFFLINE="1", OFFLINE_MODE="true",
        ENABLE_WEB_SEARCH="false", RAG_EMBEDDING_MODEL="",
        RAG_EMBEDDING_MODEL_AUTO_UPDATE="false", RAG_RERANKING_MODEL_AUTO_UPDATE="false",
        ENABLE_VERSION_UPDATE_CHECK="false", DEFAULT_MODELS="rag",
        # given, so it does not write .webui_secret_key into the working directory
        WEBUI_SECRET_KEY=secrets.token_urlsafe(24),
        # its background prompts (titles, tags, follow-ups) would go to the rag model
        ENABLE_TITLE_GENERATION="false", ENABLE_TAGS_GENERATION="false",
        ENABLE_FOLLOW_UP_GENERATION="false",
    )
    return env


def check_in_browser(url: str, screenshot: Path) -> list[str]:
    """Ask in Open WebUI; the failed checks, one line each (none: all passed)."""
    from playwright.sync_api import sync_playwright

    failures = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM,
                                    args=["--headless", *CHROMIUM_ARGS])
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(url, timeout=120_000)
        page.wait_for_selector("#chat-input", timeout=120_000)
        page.wait_for_timeout(1500)  # the release-notes dialog of a new data folder
        if page.get_by_text("Okay, Let's Go!").is_visible():
            page.get_by_text("Okay, Let's Go!").click()
        page.locator("#chat-input").click()
        page.keyboard.type(QUESTION)
        page.keyboard.press("Enter")
        sources = page.get_by_text("1 Source")
        sources.wait_for(timeout=180_000)
        answer = page.locator("#messages-container").inner_text()
        if "1997" not in answer:
            failures.append(f"the answer does not quote the 1997 sentence: {answer[-300:]!r}")
        chip = page.locator("button", has_text=EXPECTED[-9:]).first  # a shortened name
        chip.click()
        dialog = page.locator("div[role=dialog]")
        dialog.wait_for(timeout=30_000)
        if EXPECTED not in dialog.inner_text():
            failures.append(f"the source's dialog does not name {EXPECTED}")
        link = dialog.locator("a[href*='/passage/']").first.get_attribute("href") or ""
        page.keyboard.press("Escape")
        sources.click()
        page.wait_for_timeout(1000)
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(screenshot), clip={"x": 0, "y": 0, "width": 1280, "height": 340})
        if EXPECTED not in link:
            failures.append(f"the source's link does not name {EXPECTED}: {link!r}")
        else:
            passage = browser.new_page()
            passage.goto(link)
            marked = passage.locator("mark").inner_text() if passage.locator("mark").count() \
                else ""
            if "1997" not in marked:
                failures.append("the source's link does not open the passage with the "
                                "quote marked")
        browser.close()
    return failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--venv", type=Path, default=Path("/tmp/owui-venv"),
                        help="the virtualenv Open WebUI is installed in")
    parser.add_argument("--screenshot", type=Path, default=SCREENSHOT)
    args = parser.parse_args()
    program = args.venv / "bin" / "open-webui"
    if not program.exists():
        print(f"error: no Open WebUI at {program} (see this script's docstring)",
              file=sys.stderr)
        return 1
    key = f"sk-{secrets.token_urlsafe(16)}"
    with tempfile.TemporaryDirectory(prefix="rag-open-webui-") as tmp:
        root = Path(tmp)
        (root / "data").mkdir()
        with running_app(root / "chroma", root / "data", root / "serve.log",
                         extra_env={"RAG_API_KEY": key}) as rag_url:
            port = free_port()
            owui = f"http://127.0.0.1:{port}"
            env = open_webui_env(f"{rag_url}v1", key, root / "open-webui")
            print(f"rag serve at {rag_url}; starting Open WebUI at {owui} …", flush=True)
            with background_server([str(program), "serve", "--host", "127.0.0.1",
                                    "--port", str(port)], f"{owui}/health",
                                   root / "open-webui.log", env, timeout_s=600):
                failures = check_in_browser(owui, args.screenshot)
    for failure in failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    if not failures:
        print(f"Open WebUI shows {EXPECTED} as the answer's source; its link opens the "
              f"passage with the quote marked. Screenshot: {args.screenshot}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
