"""Page load to interactive, as a new visitor sees it: ``python scripts/page_load.py [N]``.

Starts ``rag serve`` on the sample corpus in a temporary folder (as the browser tests
do), then opens the page N times, each in a fresh browser context (empty cache), and
prints the milliseconds until the question box, the documents and the header are
there (``tests.ui_helpers.wait_ready``), then one revisit in the same context (the
browser's cache warm). The first load is the first visitor after the server started.
A figure, not a test: timings belong in benchmarks (docs/performance.md, "Page load").
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.ui_helpers import CHROMIUM, CHROMIUM_ARGS, running_app, wait_ready  # noqa: E402


def measure(url: str, loads: int) -> tuple[list[float], float]:
    """(fresh-context loads in ms, one revisit with a warm cache in ms)."""
    from playwright.sync_api import sync_playwright

    fresh: list[float] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for _ in range(loads):
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            page = context.new_page()
            page.goto(url)
            fresh.append(wait_ready(page))
            context.close()
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.goto(url)
        wait_ready(page)
        page.goto("about:blank")
        page.goto(url)
        revisit = wait_ready(page)
        browser.close()
    return fresh, revisit


def main() -> int:
    loads = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    with tempfile.TemporaryDirectory(prefix="rag-page-load-") as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        with running_app(Path(tmp) / "chroma", data, Path(tmp) / "serve.log") as url:
            fresh, revisit = measure(url, loads)
    later = fresh[1:] or fresh
    print(f"first visitor after start: {fresh[0]:.0f} ms")
    print(f"later fresh visitors: median {statistics.median(later):.0f} ms, "
          f"min {min(later):.0f}, max {max(later):.0f} (n={len(later)})")
    print(f"revisit, browser cache warm: {revisit:.0f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
