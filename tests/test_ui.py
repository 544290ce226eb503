"""The chat app: rendering and upload rules in-process, then the real app in headless Chromium.

One ``rag serve`` subprocess (on a copy of the sample store) and one browser serve the
whole module; each browser test opens its own page, so conversations do not mix.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rag.config import Settings
from rag.engine import DECLINE_TEXT
from rag.types import Answer, Citation
from tests.fakes_llm_server import ScriptedLLMServer
from tests.ui_helpers import CHROMIUM, CHROMIUM_ARGS, ask, choose, running_app, upload
from ui.render import answer_html, esc, highlight, streaming_html
from ui.uploads import sanitize_filename, vet_uploads

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "docs" / "screenshots"
HOSTILE = '<script>window.__pwned=1</script> <img src=x onerror="window.__pwned=1">'


# -- rendering and uploads, no server ----------------------------------------------------


def _citation(text: str, passage: str, n: int = 1) -> Citation:
    return Citation(n=n, source=f"doc{n}.txt", text=text, score=0.8, passage_text=passage,
                    language="ro")


def test_answer_html_escapes_document_text_and_keeps_one_block() -> None:
    passage = f"Before. Evil {HOSTILE} sentence.\n\nAfter."
    answer = Answer(question="q", answer=f"Evil {HOSTILE} sentence. [1]", answerer="extractive",
                    declined=False, citations=[_citation(f"Evil {HOSTILE} sentence.", passage)])
    out = answer_html(answer)
    assert "<script" not in out and "<img" not in out
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in out
    assert "onerror=&quot;window.__pwned=1&quot;" in out
    assert "\n" not in out  # a blank line would end the HTML block and let Markdown in
    assert '<span class="rag-marker">[1]</span>' in out
    assert "Romanian (ro)" in out and "doc1.txt" in out


def test_highlight_marks_the_cited_sentence_even_across_whitespace() -> None:
    assert highlight("A b. <b>C</b> d. E.", "<b>C</b> d.") == (
        "A b. <mark>&lt;b&gt;C&lt;/b&gt; d.</mark> E.")
    assert "<mark>C d.</mark>" in highlight("A b. C\n  d. E.", "C d.")
    assert highlight("Other text.", "Missing.").endswith("<mark>Missing.</mark>")


def test_declined_fallback_and_searched_for_are_shown() -> None:
    declined = Answer(question="q", answer="Not found in the documents: nothing.",
                      answerer="extractive", declined=True)
    assert "Not found in the documents" in answer_html(declined)
    assert "rag-sources" not in answer_html(declined)
    fell_back = Answer(question="and then?", answer="x [1]", answerer="extractive (fallback)",
                       declined=False, citations=[_citation("x", "x")],
                       fallback_reason="openai failed: <timeout>",
                       standalone_question="What <b>happened</b>? and then?")
    out = answer_html(fell_back)
    assert "extractive (fallback)" in out and "openai failed: &lt;timeout&gt;" in out
    assert "searched for: What &lt;b&gt;happened&lt;/b&gt;? and then?" in out
    assert "searched for" not in answer_html(fell_back, show_searched=False)
    assert streaming_html("<i>part</i>") == (
        '<div class="rag-answer rag-streaming"><div class="rag-text">'
        "&lt;i&gt;part&lt;/i&gt; …</div></div>")
    assert esc("a\r\nb\nc") == "a<br>b<br>c"


@pytest.mark.parametrize(
    ("uploaded", "stored"),
    [
        ("../../etc/passwd.txt", "passwd.txt"),
        ("C:\\Users\\x\\..\\Raport roczny <2024>.TXT", "Raport_roczny_2024.txt"),
        (".hidden.md", "hidden.md"),
        ("Zażółć gęślą.md", "Zażółć_gęślą.md"),
        ("a\nb;rm -rf.html", "ab_rm_-rf.html"),
        ("...txt", "upload.txt"),
    ],
)
def test_sanitize_filename(uploaded: str, stored: str) -> None:
    assert sanitize_filename(uploaded) == stored


def test_vet_uploads_enforces_type_and_size_and_stays_in_the_folder(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    ok = src / "notes ok.md"
    ok.write_text("fine")
    big = src / "big.txt"
    big.write_bytes(b"x" * 2_000_001)
    exe = src / "tool.exe"
    exe.write_bytes(b"MZ")
    uploads = tmp_path / "data" / "uploads"
    vetted = vet_uploads([str(ok), str(big), str(exe)], uploads, max_mb=2)
    assert vetted.accepted == [(uploads / "notes_ok.md").resolve()]
    assert vetted.accepted[0].read_text() == "fine"
    assert len(vetted.rejected) == 2
    assert "big.txt: 2.0 MB is over the 2 MB upload limit" in vetted.rejected[0]
    assert "tool.exe: file type .exe is not allowed" in vetted.rejected[1]


def test_serve_binds_loopback_and_logs_in_only_with_both_settings(
    sample_settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import gradio as gr

    from ui import app as ui_app

    launched: list[dict[str, Any]] = []
    monkeypatch.setattr(gr.Blocks, "launch", lambda self, **kw: launched.append(kw))
    monkeypatch.setenv("RAG_CHROMA_DIR", sample_settings.chroma.dir)
    monkeypatch.setenv("RAG_UI_USER", "ana")
    monkeypatch.setenv("RAG_UI_PASSWORD", "s3cret-pw")
    assert ui_app.serve() == 0
    monkeypatch.delenv("RAG_UI_PASSWORD")
    assert ui_app.serve(host="0.0.0.0", port=8123) == 0
    first, second = launched
    assert (first["server_name"], first["server_port"]) == ("127.0.0.1", 7860)
    assert first["auth"] == ("ana", "s3cret-pw")
    assert first["max_file_size"] == 20_000_000
    assert second["auth"] is None and second["server_name"] == "0.0.0.0"
    out = capsys.readouterr().out
    assert "without a login" in out and "s3cret-pw" not in out
    assert "ingesting the sample corpus" not in out  # the store was not empty


def test_errors_and_answers_are_shown_without_secrets() -> None:
    from ui.app import one_line, render_chat

    settings = Settings(llm_api_key="sk-live-123")
    err = RuntimeError("openai failed: 401 for key sk-live-123\nTraceback (most recent call)")
    assert one_line(err, settings) == "openai failed: 401 for key ***"
    answer = Answer(question="q", answer="a [1]", answerer="extractive (fallback)",
                    declined=False, citations=[_citation("a", "a")],
                    fallback_reason="openai failed: Bearer sk-live-123 refused")
    messages = render_chat([{"question": "q", "answer": answer}], True, settings)
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert "sk-live-123" not in messages[1]["content"]
    assert "Bearer *** refused" in messages[1]["content"]


# -- the real app --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def app_dirs(sample_store_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[
        tuple[str, Path]]:
    """The running app's URL and its data folder (uploads land in ``uploads/`` under it)."""
    work = tmp_path_factory.mktemp("ui_app")
    shutil.copytree(sample_store_dir, work / "chroma")
    (work / "data").mkdir()
    with running_app(work / "chroma", work / "data", work / "serve.log") as url:
        yield url, work / "data"


@pytest.fixture(scope="module")
def app_url(app_dirs: tuple[str, Path]) -> str:
    return app_dirs[0]


@pytest.fixture(scope="module")
def app_data_dir(app_dirs: tuple[str, Path]) -> Path:
    return app_dirs[1]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    playwright = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} missing: apt-get install -y chromium")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any, app_url: str) -> Iterator[Any]:
    """A fresh page on the app; fails the test on any JavaScript error or outside request."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    errors: list[str] = []
    outside: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.on("request", lambda r: None if r.url.startswith(("http://127.0.0.1", "data:", "blob:"))
          else outside.append(r.url))
    pg.goto(app_url)
    pg.locator("#question textarea").wait_for(timeout=60_000)
    yield pg
    context.close()
    assert not errors, errors
    assert not outside, f"the page reached outside the machine: {outside}"


@pytest.mark.browser
def test_chat_answers_with_citations(page: Any, artifacts_dir: Path) -> None:
    from playwright.sync_api import expect

    answer = ask(page, "What did Russia demand about 1997?")
    expect(answer.locator(".rag-text")).to_contain_text("1997")
    expect(answer.locator(".rag-text .rag-marker").first).to_have_text("[1]")
    sources = answer.locator("details.rag-source")
    expect(sources.first.locator(".rag-file")).to_have_text("003_f0b8fe8fdb47aa20.txt")
    expect(sources.first.locator(".rag-lang")).to_have_text("Romanian (ro)")
    expect(sources.first.locator("summary mark")).to_contain_text("1997")
    expect(answer.locator(".rag-note")).to_contain_text("answered by extractive")
    passage = sources.first.locator(".rag-passage")
    expect(passage).to_be_hidden()
    sources.first.locator("summary").click()
    expect(passage).to_be_visible()
    expect(passage.locator("mark")).to_contain_text("1997")
    assert len(passage.inner_text()) > len(passage.locator("mark").inner_text())  # context
    shot = artifacts_dir / "ui-chat-1997.png"
    page.screenshot(path=str(shot))
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shot, SCREENSHOTS / "chat-1997.png")


@pytest.mark.browser
def test_follow_up_is_condensed_and_answered(page: Any, artifacts_dir: Path) -> None:
    from playwright.sync_api import expect

    ask(page, "What did Russia demand about 1997?")
    answer = ask(page, "and what did NATO answer?")
    expect(answer.locator("details.rag-source").first).to_be_attached()
    searched = answer.locator(".rag-searched")
    expect(searched).to_have_text(
        "searched for: What did Russia demand about 1997? and what did NATO answer?")
    page.screenshot(path=str(artifacts_dir / "ui-follow-up.png"))
    sources = page.locator("#chat .rag-source").count()
    page.locator("#show-searched input").uncheck()
    expect(page.locator("#chat .rag-searched")).to_have_count(0)
    expect(page.locator("#chat .rag-source")).to_have_count(sources)  # the rest re-rendered
    page.locator("#show-searched input").check()
    expect(page.locator("#chat .rag-searched")).to_have_count(1)
    page.locator("#clear").click()
    expect(page.locator("#chat .rag-answer")).to_have_count(0)
    fresh = ask(page, "and what did NATO answer?")  # no history left to lean on
    expect(fresh.locator(".rag-searched")).to_have_count(0)


@pytest.mark.browser
def test_errors_are_one_line_and_unanswerable_is_declined(page: Any) -> None:
    from playwright.sync_api import expect

    answer = ask(page, "???")
    expect(answer).to_have_class("rag-answer rag-error")
    expect(answer).to_have_text(
        "Cannot ask that: the question has no words, only punctuation or symbols")
    declined = ask(page, "What is the boiling point of tungsten in kelvin?")
    expect(declined.locator(".rag-declined")).to_have_text(DECLINE_TEXT)
    expect(declined.locator(".rag-source")).to_have_count(0)


@pytest.mark.browser
def test_upload_answer_and_remove(page: Any, app_data_dir: Path, artifacts_dir: Path,
                                  tmp_path: Path) -> None:
    from playwright.sync_api import expect

    fact = ("The Zorblat lighthouse on Kelvar island was painted teal in 1923 by Ottilie "
            "Brandqvist. Ships still use its teal tower as a landmark.")
    upload(page, [{"name": "../../Zorblat lighthouse.txt", "mimeType": "text/plain",
                   "buffer": fact.encode()},
                  {"name": "broken.pdf", "mimeType": "application/pdf", "buffer": b"not a pdf"}],
           "added: Zorblat_lighthouse.txt")
    lines = page.locator("#upload-report .rag-report-line")
    expect(lines.filter(has_text="broken.pdf")).to_have_count(1)
    expect(lines.filter(has_text="broken.pdf")).to_contain_text("skipped broken.pdf: ")
    stored = app_data_dir / "uploads" / "Zorblat_lighthouse.txt"
    assert stored.read_text() == fact
    assert not (app_data_dir / "uploads" / "broken.pdf").exists()
    work = app_data_dir.parent  # the '../../' in the uploaded name reached nothing outside
    stray = [p for p in work.rglob("*") if p.is_file() and p.parts[len(work.parts)] != "chroma"
             and p.parent != app_data_dir / "uploads" and p.name != "serve.log"]
    assert not stray, stray
    expect(page.locator("#docs")).to_contain_text("Zorblat_lighthouse.txt")
    answer = ask(page, "Who painted the Zorblat lighthouse teal?")
    expect(answer.locator(".rag-source .rag-file").first).to_have_text("Zorblat_lighthouse.txt")
    expect(answer.locator(".rag-text")).to_contain_text("Ottilie Brandqvist")
    page.screenshot(path=str(artifacts_dir / "ui-upload.png"))

    choose(page, "remove-file", "Zorblat_lighthouse.txt")
    page.locator("#remove").click()
    expect(page.locator("#upload-report")).to_have_text("removed Zorblat_lighthouse.txt")
    expect(page.locator("#docs")).not_to_contain_text("Zorblat_lighthouse.txt")
    assert not stored.exists()
    again = ask(page, "Who painted the Zorblat lighthouse teal?")
    expect(again).not_to_contain_text("Zorblat_lighthouse.txt")


@pytest.mark.browser
def test_hostile_document_shows_as_text_and_runs_nothing(page: Any, artifacts_dir: Path) -> None:
    from playwright.sync_api import expect

    text = (f"The quartz falcon treaty was signed in Velmora in 2031 {HOSTILE} by the harbour "
            "council. The quartz falcon treaty needs three keys to open the vault.")
    upload(page, [{"name": "hostile note.txt", "mimeType": "text/plain",
                   "buffer": text.encode()}], "added: hostile_note.txt")
    answer = ask(page, "Where was the quartz falcon treaty signed?")
    source = answer.locator("details.rag-source").first
    expect(source.locator(".rag-file")).to_have_text("hostile_note.txt")
    source.locator("summary").click()
    page.wait_for_timeout(500)  # give an injected onerror handler the chance to fire
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.locator("#chat script, #chat img[src='x']").count() == 0
    expect(source.locator(".rag-passage")).to_contain_text(HOSTILE)
    expect(answer.locator(".rag-text")).to_contain_text("<script>window.__pwned=1</script>")
    page.screenshot(path=str(artifacts_dir / "ui-hostile.png"))


def test_api_endpoint_returns_the_answer_contract(app_url: str) -> None:
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    client = Client(app_url, verbose=False)
    result = client.predict("What did Russia demand about 1997?", 3, api_name="/ask")
    contract = Answer(question="", answer="", answerer="", declined=False).to_dict()
    assert set(result) == set(contract)
    assert result["declined"] is False and result["answerer"] == "extractive"
    assert result["citations"][0]["source"] == "003_f0b8fe8fdb47aa20.txt"
    assert len(result["retrieved"]) == 3
    with pytest.raises(AppError, match="the question is empty"):
        client.predict("   ", 3, api_name="/ask")


@pytest.mark.browser
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
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(url)
            expect(page.locator("#answerer input")).to_have_value("openai")
            answer = ask(page, "What did Russia demand about 1997?")
            note = answer.locator(".rag-note.rag-fallback")
            expect(note).to_contain_text("answered by extractive (fallback)")
            expect(note).to_contain_text(
                re.compile(r"fell back because openai\S* failed: HTTP 401"))
            expect(answer.locator(".rag-file").first).to_have_text("003_f0b8fe8fdb47aa20.txt")
            assert llm.requests, "the openai answerer was not called"
            assert key not in page.content()
            choose(page, "answerer", "extractive")
            chosen = ask(page, "What did Russia demand about 1997?")
            expect(chosen.locator(".rag-note")).to_have_text(
                re.compile(r"^answered by extractive in \d+ ms$"))
            page.close()
    finally:
        llm.close()


def test_sessions_kept_in_memory_are_bounded(sample_settings: Settings) -> None:
    """Every API call without a session makes Gradio keep a new one (~50 KB, measured);
    the app keeps at most RAG_UI_MAX_SESSIONS, dropping the least recently used."""
    import uuid

    import httpx

    from rag.engine import Engine
    from tests.ui_helpers import free_port
    from ui.app import build_app, launch_options

    sample_settings.ui.max_sessions = 3
    app = build_app(Engine(sample_settings))
    port = free_port()
    app.launch(prevent_thread_lock=True, quiet=True,
               **launch_options(sample_settings, "127.0.0.1", port))
    try:
        base = f"http://127.0.0.1:{port}/gradio_api/call/ask"
        with httpx.Client(timeout=60) as http:
            for _ in range(8):
                event = http.post(base, json={"data": ["Czego Rosja żądała od NATO?", 3, ""],
                                              "session_hash": uuid.uuid4().hex}).json()
                reply = http.get(f"{base}/{event['event_id']}").text
                assert "event: complete" in reply, reply
        assert 0 < len(app.state_holder.session_data) <= 3
    finally:
        app.close()
