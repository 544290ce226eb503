"""The real app (``rag serve`` on a copy of the sample store) in headless Chromium.

One server and one browser serve the module; each test opens its own page, at
desktop (1280x900) and phone (390x844) sizes where layout matters, asserts on what
the page shows, and saves a screenshot under ``artifacts/``. Page load and first
answer times are printed (``-s``), never asserted.
"""

from __future__ import annotations

import re
import shutil
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from rag.engine import DECLINE_TEXT
from rag.types import Answer
from tests.fakes_llm_server import ScriptedLLMServer
from tests.ui_helpers import (
    ANSWER,
    CHROMIUM,
    CHROMIUM_ARGS,
    FIRST_TOKEN_JS,
    VIEWPORTS,
    ask,
    choose,
    in_viewport,
    inside,
    open_advanced,
    running_app,
    upload,
    wait_ready,
)

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "docs" / "screenshots"
HOSTILE = '<script>window.__pwned=1</script> <img src=x onerror="window.__pwned=1">'
Q1997 = "What did Russia demand about 1997?"
pytestmark = pytest.mark.browser


@dataclass
class App:
    url: str
    work: Path

    @property
    def data(self) -> Path:
        return self.work / "data"

    @property
    def temp(self) -> Path:
        return self.work / "gradio-temp"


@pytest.fixture(scope="module")
def app(sample_store_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    work = tmp_path_factory.mktemp("ui_app")
    shutil.copytree(sample_store_dir, work / "chroma")
    (work / "data").mkdir()
    env = {"GRADIO_TEMP_DIR": str(work / "gradio-temp")}
    with running_app(work / "chroma", work / "data", work / "serve.log", extra_env=env) as url:
        yield App(url, work)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    playwright = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} missing: run scripts/install-chromium.sh")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def open_page(browser: Any, url: str, size: str) -> tuple[Any, Any, list[str], list[str]]:
    context = browser.new_context(viewport=VIEWPORTS[size],
                                  permissions=["clipboard-read", "clipboard-write"])
    pg = context.new_page()
    errors: list[str] = []
    outside: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.on("request", lambda r: None if r.url.startswith(("http://127.0.0.1", "data:", "blob:"))
          else outside.append(r.url))
    pg.goto(url)
    return context, pg, errors, outside


@pytest.fixture(params=["desktop", "phone"])
def size(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def page(browser: Any, app: App, size: str) -> Iterator[Any]:
    """A fresh page (own browser storage) at ``size``; fails on any JavaScript error or
    request leaving the machine."""
    context, pg, errors, outside = open_page(browser, app.url, size)
    load_ms = wait_ready(pg)
    print(f"\n[{size}] page load to interactive: {load_ms:.0f} ms")
    yield pg
    context.close()
    assert not errors, errors
    assert not outside, f"the page reached outside the machine: {outside}"


def shot(page: Any, artifacts_dir: Path, name: str, size: str) -> Path:
    path = artifacts_dir / f"ui-{name}-{size}.png"
    page.screenshot(path=str(path))
    return path


def test_header_names_the_documents_and_hides_developer_settings(
    page: Any, app: App, size: str, artifacts_dir: Path
) -> None:
    from playwright.sync_api import expect

    header = page.locator("#header")
    expect(header.locator("summary")).to_contain_text("5 documents loaded")
    expect(header.locator("summary")).to_contain_text("4 in Polish, 1 in Romanian")
    header.locator("summary").click()
    first = header.locator(".rag-doc").filter(has_text="003_f0b8fe8fdb47aa20.txt")
    expect(first.locator(".rag-doc-title")).to_have_text(
        re.compile(r"^Vladimir Putin a discutat la Kremlin"))
    expect(first.locator(".rag-doc-meta")).to_contain_text("Romanian · 4 KB · 7 passages")
    docs = page.locator("#docs .rag-doc")
    expect(docs).to_have_count(5)
    for i in range(5):  # readable: nothing clipped or wider than the screen
        item = docs.nth(i)
        width = item.evaluate(
            "e => [e.scrollWidth, e.clientWidth, e.getBoundingClientRect().right]")
        assert width[0] <= width[1] + 1 and width[2] <= VIEWPORTS[size]["width"], width
    expect(page.locator("#top-k")).to_be_hidden()  # folded away
    expect(page.locator("#answerer")).to_be_hidden()  # one answerer: no menu
    text = page.locator("body").inner_text()
    assert "RAG_" not in text and str(app.work) not in text and "top-k" not in text
    open_advanced(page)
    expect(page.locator("#top-k")).to_be_visible()
    expect(page.locator("#answerer")).to_be_hidden()
    expect(page.locator("#show-searched")).to_be_visible()
    shot(page, artifacts_dir, "header", size)


def test_tapping_an_example_answers_and_its_citation_opens_the_source(
    page: Any, size: str, artifacts_dir: Path
) -> None:
    """The newcomer's path: tap the 1997 example; answer, [1] and Ask are on screen
    without scrolling; tapping [1] shows 003_f0b8fe8fdb47aa20.txt's passage."""
    from playwright.sync_api import expect

    example = page.locator(".rag-example", has_text=Q1997)
    expect(page.locator(".rag-example")).to_have_count(4)
    page.evaluate(FIRST_TOKEN_JS)
    example.click()
    answer = page.locator(ANSWER).first
    expect(answer.locator(".rag-text")).to_contain_text("1997", timeout=60_000)
    first_ms = page.evaluate("window.__firstTokenAt - window.__askedAt")
    print(f"\n[{size}] first answer token after Ask: {first_ms:.0f} ms")
    expect(page.locator("#chat .rag-user")).to_have_text(Q1997)
    marker = answer.locator(".rag-text .rag-marker").first
    expect(marker).to_have_text("[1]")
    page.wait_for_timeout(300)  # the conversation scrolls to the new answer
    shot(page, artifacts_dir, "answer", size)
    assert in_viewport(page, marker), "the [1] is not on screen"
    assert in_viewport(page, answer.locator(".rag-text")), "the answer is not on screen"
    assert in_viewport(page, page.locator("#ask")), "the Ask button is not on screen"
    source = answer.locator("details.rag-source").first
    expect(source.locator(".rag-file")).to_have_text("003_f0b8fe8fdb47aa20.txt")
    expect(source.locator(".rag-title")).to_have_text(
        re.compile(r"^Vladimir Putin a discutat la Kremlin"))
    expect(source.locator(".rag-lang")).to_have_text("Romanian")
    expect(source.locator(".rag-strength")).to_have_text(
        re.compile(r"^(strong|good|partial) match$"))
    expect(source.locator(".rag-strength")).to_have_attribute(
        "title", re.compile(r"^similarity score 0\.\d\d$"))
    expect(source.locator(".rag-quote")).to_contain_text("1997")
    passage = source.locator(".rag-passage")
    expect(passage).to_be_hidden()
    marker.click()
    expect(passage).to_be_visible()
    expect(passage.locator("mark")).to_contain_text("1997")
    assert len(passage.inner_text()) > len(passage.locator("mark").inner_text())  # context
    page.wait_for_timeout(400)  # the scroll into view
    assert inside(passage.locator("mark"), page.locator("#chat .rag-chat")), \
        "the cited sentence was not scrolled into the conversation's view"
    path = shot(page, artifacts_dir, "citation", size)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, SCREENSHOTS / ("chat-1997.png" if size == "desktop"
                                         else "chat-1997-phone.png"))


def test_the_question_box_guards_empty_and_too_long_questions(page: Any, size: str,
                                                              artifacts_dir: Path) -> None:
    from playwright.sync_api import expect

    box = page.locator("#question textarea")
    count = page.locator("#question-count")
    expect(page.locator("#ask")).to_be_disabled()
    expect(count).to_have_text("0 / 4000")
    assert inside(count, page.locator("#question")), "the counter is not in the box"
    box.press("Enter")
    page.wait_for_timeout(300)
    expect(page.locator("#chat .rag-turn")).to_have_count(0)  # no empty bubble, no error
    box.fill("  ")
    expect(page.locator("#ask")).to_be_disabled()
    box.fill("Czego Rosja żądała od NATO?")
    expect(page.locator("#ask")).to_be_enabled()
    expect(count).to_have_text("27 / 4000")
    draft = "Why " + "very " * 4000 + "long?"
    box.fill(draft)
    expect(count).to_have_text(f"{len(draft)} / 4000")
    expect(count).to_have_class(re.compile("rag-over"))
    expect(page.locator("#ask")).to_be_disabled()
    box.press("Enter")  # Enter bypasses the button: the server refuses too
    note = page.locator("#question-note")
    expect(note).to_contain_text("questions can be up to 4,000")
    assert "RAG_" not in note.inner_text()
    expect(page.locator("#chat .rag-turn")).to_have_count(0)  # nothing posted
    assert box.input_value() == draft  # the draft is kept
    shot(page, artifacts_dir, "too-long", size)
    box.fill("Czego Rosja żądała od NATO?")
    page.locator("#ask").click()
    expect(page.locator(ANSWER)).to_have_count(1, timeout=60_000)
    expect(note).to_be_empty()
    expect(box).to_have_value("")
    expect(page.locator("#ask")).to_be_disabled()


def test_conversation_survives_reload_can_be_copied_and_restarted(
    page: Any, size: str, artifacts_dir: Path
) -> None:
    from playwright.sync_api import expect

    answer = ask(page, Q1997)
    answer.locator(".rag-copy").click()
    expect(answer.locator(".rag-copy")).to_have_text("Copied")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert "1997" in copied and "003_f0b8fe8fdb47aa20.txt" in copied and "<" not in copied
    labels = page.locator("#chat [aria-label]").evaluate_all(
        "els => els.map(e => e.getAttribute('aria-label'))")
    assert labels and all("<" not in label and len(label) < 60 for label in labels), labels
    page.reload()
    wait_ready(page)
    expect(page.locator(ANSWER)).to_have_count(1)
    expect(page.locator("#chat .rag-user")).to_have_text(Q1997)
    follow = ask(page, "and what did NATO answer?")  # the restored turn is the history
    expect(follow.locator(".rag-searched")).to_contain_text(Q1997.rstrip("?"))
    shot(page, artifacts_dir, "reloaded", size)
    page.locator("#clear").click()
    expect(page.locator("#chat .rag-turn")).to_have_count(0)
    expect(page.locator("#chat .rag-intro")).to_be_visible()
    page.reload()
    wait_ready(page)
    expect(page.locator("#chat .rag-intro")).to_be_visible()
    fresh = ask(page, "and what did NATO answer?")  # no history left to lean on
    expect(fresh.locator(".rag-searched")).to_have_count(0)


def test_follow_up_is_condensed_and_the_toggle_rerenders(browser: Any, app: App,
                                                          artifacts_dir: Path) -> None:
    from playwright.sync_api import expect

    context, page, errors, _ = open_page(browser, app.url, "desktop")
    wait_ready(page)
    ask(page, Q1997)
    answer = ask(page, "and what did NATO answer?")
    expect(answer.locator("details.rag-source").first).to_be_attached()
    expect(answer.locator(".rag-searched")).to_have_text(
        "searched for: What did Russia demand about 1997? and what did NATO answer?")
    sources = page.locator("#chat .rag-source").count()
    open_advanced(page)
    page.locator("#show-searched input").uncheck()
    expect(page.locator("#chat .rag-searched")).to_have_count(0)
    expect(page.locator("#chat .rag-source")).to_have_count(sources)
    page.locator("#show-searched input").check()
    expect(page.locator("#chat .rag-searched")).to_have_count(1)
    shot(page, artifacts_dir, "follow-up", "desktop")
    context.close()
    assert not errors, errors


def test_errors_are_one_line_and_unanswerable_is_declined(browser: Any, app: App) -> None:
    from playwright.sync_api import expect

    context, page, errors, _ = open_page(browser, app.url, "desktop")
    wait_ready(page)
    answer = ask(page, "???")
    expect(answer).to_have_class(re.compile("rag-error"))
    expect(answer).to_have_text(
        "Cannot ask that: the question has no words, only punctuation or symbols")
    declined = ask(page, "What is the boiling point of tungsten in kelvin?")
    expect(declined.locator(".rag-declined")).to_have_text(DECLINE_TEXT)
    expect(declined.locator(".rag-source")).to_have_count(0)
    context.close()
    assert not errors, errors


def _slow_file(sentences: int) -> bytes:
    """Distinct sentences, so every one is embedded (ingest takes a while on 2 cores)."""
    lines = [f"Report {i}: the {i}th glass orchard of Umbrel grew {i * 7 % 97} pears of "
             f"quartz colour in season {i % 13}." for i in range(sentences)]
    return "\n".join(lines).encode()


def test_upload_shows_progress_while_questions_keep_answering_then_remove_asks_first(
    browser: Any, app: App, artifacts_dir: Path
) -> None:
    """Found by a hostile tester: a question waited 85 s behind an upload's ingestion;
    Gradio's temporary copies stayed on disk (and downloadable) after removal."""
    from playwright.sync_api import expect

    context, page, errors, _ = open_page(browser, app.url, "desktop")
    wait_ready(page)
    fact = ("The Zorblat lighthouse on Kelvar island was painted teal in 1923 by Ottilie "
            "Brandqvist. Ships still use its teal tower as a landmark.")
    page.locator("#upload input[type=file]").set_input_files([
        {"name": "../../Zorblat lighthouse.txt", "mimeType": "text/plain",
         "buffer": fact.encode()},
        {"name": "umbrel orchard.txt", "mimeType": "text/plain", "buffer": _slow_file(700)},
    ])
    progress = page.locator("#upload-report .rag-progress")
    expect(progress).to_be_visible(timeout=30_000)
    expect(progress.locator(".rag-progress-text")).to_contain_text(re.compile(r"Adding \d of 2"))
    assert inside(progress, page.locator("#upload-report")) and \
        inside(progress.locator("progress"), page.locator("#upload-report"))
    shot(page, artifacts_dir, "upload-progress", "desktop")
    started = time.monotonic()
    answer = ask(page, Q1997, timeout_ms=120_000)  # answered while the ingest goes on
    print(f"\n[desktop] question answered during an ingest in "
          f"{(time.monotonic() - started) * 1000:.0f} ms")
    expect(answer.locator(".rag-file").first).to_have_text("003_f0b8fe8fdb47aa20.txt")
    assert progress.is_visible(), "the question waited for the whole ingest"
    report = page.locator("#upload-report")
    expect(report).to_contain_text("Added Zorblat_lighthouse.txt: 1 passage", timeout=300_000)
    expect(report).to_contain_text("Added umbrel_orchard.txt: ")
    expect(report.locator(".rag-report-line")).to_have_count(2)
    assert (app.data / "uploads" / "Zorblat_lighthouse.txt").read_text() == fact
    leftovers = [p for p in app.temp.rglob("*")
                 if p.is_file() and ("orchard" in p.name or "Zorblat" in p.name)]
    assert not leftovers, leftovers  # Gradio's temporary copies are gone
    expect(page.locator("#docs")).to_contain_text("Zorblat_lighthouse.txt")
    found = ask(page, "Who painted the Zorblat lighthouse teal?")
    expect(found.locator(".rag-file").first).to_have_text("Zorblat_lighthouse.txt")
    expect(found.locator(".rag-text")).to_contain_text("Ottilie Brandqvist")

    choose(page, "remove-file", "Zorblat_lighthouse.txt")
    page.locator("#remove").click()
    confirm = page.locator("#remove-confirm")
    expect(confirm).to_be_visible()
    expect(confirm).to_contain_text("The Zorblat lighthouse on Kelvar island")
    page.locator("#remove-cancel").click()
    expect(confirm).to_be_hidden()
    expect(page.locator("#docs")).to_contain_text("Zorblat_lighthouse.txt")
    page.locator("#remove").click()
    shot(page, artifacts_dir, "remove-confirm", "desktop")
    page.locator("#remove-yes").click()
    expect(report).to_have_text("Removed Zorblat_lighthouse.txt")
    expect(page.locator("#docs")).not_to_contain_text("Zorblat_lighthouse.txt")
    assert not (app.data / "uploads" / "Zorblat_lighthouse.txt").exists()
    again = ask(page, "Who painted the Zorblat lighthouse teal?")
    expect(again).not_to_contain_text("Zorblat_lighthouse.txt")
    choose(page, "remove-file", "umbrel_orchard.txt")
    page.locator("#remove").click()
    page.locator("#remove-yes").click()
    expect(report).to_have_text("Removed umbrel_orchard.txt")
    context.close()
    assert not errors, errors


def test_a_refused_file_gets_one_error_cleared_by_the_next_action(
    page: Any, size: str, artifacts_dir: Path
) -> None:
    from playwright.sync_api import expect

    report = page.locator("#upload-report")
    page.locator("#upload input[type=file]").set_input_files(
        [{"name": "table.csv", "mimeType": "text/csv", "buffer": b"a,b\n1,2\n"}])
    expect(report.locator(".rag-error")).to_have_text(
        re.compile(r"^table\.csv was not added: \.csv files are not supported"))
    expect(page.get_by_text("table.csv")).to_have_count(1)  # said once, nowhere else
    report.scroll_into_view_if_needed()
    shot(page, artifacts_dir, "refused", size)
    page.locator("#remove").click()  # the next action, here with nothing chosen
    expect(report.locator(".rag-error")).to_have_text("Choose a document to remove first")
    expect(page.get_by_text("table.csv")).to_have_count(0)


def test_hostile_document_shows_as_text_and_runs_nothing(browser: Any, app: App,
                                                         artifacts_dir: Path) -> None:
    from playwright.sync_api import expect

    context, page, errors, _ = open_page(browser, app.url, "desktop")
    wait_ready(page)
    text = (f"The quartz falcon treaty was signed in Velmora in 2031 {HOSTILE} by the harbour "
            "council. The quartz falcon treaty needs three keys to open the vault.")
    upload(page, [{"name": "hostile note.txt", "mimeType": "text/plain",
                   "buffer": text.encode()}], "Added hostile_note.txt")
    expect(page.locator("#docs")).to_contain_text("The quartz falcon treaty was signed")
    answer = ask(page, "Where was the quartz falcon treaty signed?")
    source = answer.locator("details.rag-source").first
    expect(source.locator(".rag-file")).to_have_text("hostile_note.txt")
    source.locator("summary").click()
    page.wait_for_timeout(500)  # give an injected onerror handler the chance to fire
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.locator("#chat script, #chat img[src='x'], #docs img, #header img").count() == 0
    expect(source.locator(".rag-passage")).to_contain_text(HOSTILE)
    expect(answer.locator(".rag-text")).to_contain_text("<script>window.__pwned=1</script>")
    shot(page, artifacts_dir, "hostile", "desktop")
    choose(page, "remove-file", "hostile_note.txt")
    page.locator("#remove").click()
    page.locator("#remove-yes").click()
    expect(page.locator("#upload-report")).to_have_text("Removed hostile_note.txt")
    context.close()
    assert not errors, errors


def test_api_endpoint_returns_the_answer_contract(app: App) -> None:
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    client = Client(app.url, verbose=False)
    result = client.predict(Q1997, 3, api_name="/ask")
    contract = Answer(question="", answer="", answerer="", declined=False).to_dict()
    assert set(result) == set(contract)
    assert result["declined"] is False and result["answerer"] == "extractive"
    assert result["citations"][0]["source"] == "003_f0b8fe8fdb47aa20.txt"
    assert len(result["retrieved"]) == 3
    with pytest.raises(AppError, match="the question is empty"):
        client.predict("   ", 3, api_name="/ask")


def test_stored_uploads_are_not_served(app: App) -> None:
    (app.data / "uploads").mkdir(exist_ok=True)
    secret = app.data / "uploads" / "private.txt"
    secret.write_text("private")
    try:
        with urllib.request.urlopen(f"{app.url}gradio_api/file={secret}", timeout=10) as r:
            status = r.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    finally:
        secret.unlink()
    assert status in (403, 404)


def test_llm_fallback_is_noted_and_the_answerer_can_be_chosen(
    browser: Any, sample_store_dir: Path, tmp_path: Path
) -> None:
    """A configured LLM that fails (and echoes its key) falls back visibly, never shows the key."""
    from playwright.sync_api import expect

    key = "sk-test-UI-SECRET-0123456789"
    shutil.copytree(sample_store_dir, tmp_path / "chroma")
    (tmp_path / "data").mkdir()
    llm = ScriptedLLMServer().start()
    env = {"RAG_ANSWERER": "openai", "RAG_LLM_BASE_URL": f"{llm.url}/v1",
           "RAG_LLM_MODEL": "echo-key", "RAG_LLM_API_KEY": key, "RAG_LLM_TIMEOUT": "5"}
    try:
        with running_app(tmp_path / "chroma", tmp_path / "data", tmp_path / "serve.log",
                         extra_env=env) as url:
            page = browser.new_page(viewport=VIEWPORTS["desktop"])
            page.goto(url)
            wait_ready(page)
            open_advanced(page)
            expect(page.locator("#answerer input")).to_have_value("openai")
            answer = ask(page, Q1997)
            note = answer.locator(".rag-note.rag-fallback")
            expect(note).to_contain_text("answered by extractive (fallback)")
            expect(note).to_contain_text(
                re.compile(r"fell back because openai\S* failed: HTTP 401"))
            expect(answer.locator(".rag-file").first).to_have_text("003_f0b8fe8fdb47aa20.txt")
            assert llm.requests, "the openai answerer was not called"
            assert key not in page.content()
            choose(page, "answerer", "extractive")
            chosen = ask(page, Q1997)
            expect(chosen.locator(".rag-note")).to_have_text(
                re.compile(r"^answered by extractive in \d+ ms$"))
            page.close()
    finally:
        llm.close()
