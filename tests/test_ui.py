"""The chat app's parts in-process: rendering, titles, examples, uploads, login, live store.

The browser tests of the running app are in ``tests/test_ui_browser.py``.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from rag.ui.chat import make_respond, plain
from rag.ui.examples import load_examples
from rag.ui.login import SlowLogin
from rag.ui.render import answer_html, answer_record, chat_html, esc, highlight, streaming_html
from rag.ui.uploads import Quota, discard_temp, sanitize_filename, vet_uploads

from rag.config import Settings
from rag.documents import describe, title_from_text
from rag.types import Answer, Citation, Passage

HOSTILE = '<script>window.__pwned=1</script> <img src=x onerror="window.__pwned=1">'
ZORBLAT = ("The Zorblat lighthouse on Kelvar island was painted teal in 1923 by Ottilie "
           "Brandqvist. Ships still use its teal tower as a landmark.")


def _citation(text: str, passage: str, n: int = 1) -> Citation:
    return Citation(n=n, source=f"doc{n}.txt", text=text, score=0.8, passage_text=passage,
                    language="ro")


def _record(answer: Answer) -> dict[str, Any]:
    return answer_record(answer, {"doc1.txt": "Title <one>"})


def test_answer_html_escapes_document_text_and_keeps_one_block() -> None:
    passage = f"Before. Evil {HOSTILE} sentence.\n\nAfter."
    answer = Answer(question="q", answer=f"Evil {HOSTILE} sentence. [1]", answerer="extractive",
                    declined=False, citations=[_citation(f"Evil {HOSTILE} sentence.", passage)])
    out = answer_html(_record(answer))
    assert "<script" not in out and "<img" not in out
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in out
    assert "onerror=&quot;window.__pwned=1&quot;" in out
    assert "\n" not in out
    assert 'class="rag-marker" data-n="1"' in out  # a button that opens source 1
    assert 'details class="rag-source" data-n="1"' in out
    assert "Romanian" in out and "doc1.txt" in out and "Title &lt;one&gt;" in out
    assert 'title="similarity score 0.80"' in out and "partial match" in out


def test_a_not_stated_answer_is_labelled_not_an_answer_and_keeps_its_sources() -> None:
    text = ("The documents do not say this directly; the closest passages are (in their "
            "original language):\n“Evil sentence.” [1]")
    answer = Answer(question="q", answer=text, answerer="extractive", declined=False,
                    citations=[_citation("Evil sentence.", "Evil sentence.")],
                    status="not_stated")
    out = answer_html(_record(answer))
    assert 'class="rag-not-stated"' in out and ">Not an answer</span>" in out
    assert 'class="rag-marker" data-n="1"' in out and 'class="rag-source" data-n="1"' in out
    plain = answer_html(_record(Answer(question="q", answer="“Evil sentence.” [1]",
                                       answerer="extractive", declined=False)))
    assert "Not an answer" not in plain and "rag-not-stated" not in plain


def test_answer_record_is_json_without_paths_and_tolerates_new_fields() -> None:
    passage = Passage(n=1, chunk_id="c", source="doc1.txt", path="/srv/secret/doc1.txt",
                      text="x", score=0.9)
    answer = Answer(question="q", answer="x [1]", answerer="extractive", declined=False,
                    citations=[_citation("x", "x")], retrieved=[passage])
    record = _record(answer)
    assert "/srv/secret" not in json.dumps(record)
    record["claims"] = [{"text": "x", "supported": True}]  # a field a later engine may add
    record["citations"][0]["verified"] = True
    assert "doc1.txt" in answer_html(record)
    assert answer_html({"answer": "old turn"}).count("rag-answer") == 1  # missing fields


def test_highlight_marks_the_cited_sentence_even_across_whitespace() -> None:
    assert highlight("A b. <b>C</b> d. E.", "<b>C</b> d.") == (
        "A b. <mark>&lt;b&gt;C&lt;/b&gt; d.</mark> E.")
    assert "<mark>C d.</mark>" in highlight("A b. C\n  d. E.", "C d.")
    assert highlight("Other text.", "Missing.").endswith("<mark>Missing.</mark>")


def test_declined_fallback_and_searched_for_are_shown() -> None:
    declined = Answer(question="q", answer="Not found in the documents: nothing.",
                      answerer="extractive", declined=True)
    assert "Not found in the documents" in answer_html(_record(declined))
    assert "rag-sources" not in answer_html(_record(declined))
    fell_back = Answer(question="and then?", answer="x [1]", answerer="extractive (fallback)",
                       declined=False, citations=[_citation("x", "x")],
                       fallback_reason="openai failed: <timeout>",
                       standalone_question="What <b>happened</b>? and then?")
    out = answer_html(_record(fell_back))
    assert "extractive (fallback)" in out and "openai failed: &lt;timeout&gt;" in out
    assert "searched for: What &lt;b&gt;happened&lt;/b&gt;? and then?" in out
    assert "searched for" not in answer_html(_record(fell_back), show_searched=False)
    assert "&lt;i&gt;part&lt;/i&gt; …" in streaming_html("<i>part</i>")
    assert esc("a\r\nb\nc") == "a<br>b<br>c"
    assert "rag-intro" in chat_html([])


def test_llm_sentences_show_as_checked_and_unsupported_ones_are_marked() -> None:
    """Issue 12: each sentence of an LLM answer shows as the engine checked it; one the
    cited passage does not support is marked on the page, in words as well as style."""
    answer = Answer(
        question="What did Russia demand?", answer="Russia asked for 1997 [1]. It won [7].",
        answerer="local:qwen", declined=False, citations=[_citation("Rusia a cerut 1997.", "p")],
        sentences=[{"text": "Russia asked for the 1997 <order>.", "cited": [1], "support": 0.93,
                    "supported": True, "quote": "Rusia a cerut 1997."},
                   {"text": "Russia won.", "cited": [7], "support": 0.41, "supported": False,
                    "quote": ""}])
    out = answer_html(_record(answer))
    supported, unsupported = out.split('<span class="rag-claim')[1:3]
    assert "Russia asked for the 1997 &lt;order&gt; <button" in supported  # marker before "."
    assert 'data-n="1"' in supported and "rag-unsupported" not in supported
    assert unsupported.startswith(' rag-unsupported"') and "support 0.41" in unsupported
    assert "not confirmed by the cited passage" in unsupported
    assert 'data-n="7"' not in out  # no button for a passage that was not sent
    assert "Rusia a cerut 1997." in out  # the verified quote under the answer
    waiting = streaming_html("", "Writing the answer, then checking every quote…")
    assert "checking every quote" in waiting and "rag-status" in waiting


def test_setting_names_stay_out_of_messages() -> None:
    assert plain("the question is 9000 characters long; the limit is 4000 "
                 "(RAG_MAX_QUESTION_CHARS)") == (
        "the question is 9000 characters long; the limit is 4000")
    assert plain("file is 30 MB, over the 10 MB limit (RAG_MAX_FILE_MB)") == (
        "file is 30 MB, over the 10 MB limit")
    assert plain("openai is not usable: set RAG_LLM_BASE_URL") == (
        "openai is not usable: set a server setting")


def test_titles_come_from_the_first_heading_or_line(tmp_path: Path) -> None:
    assert title_from_text("\n\n# Mars rovers\nText.", "f.md") == "Mars rovers"
    assert title_from_text("  \nFirst line here.\nSecond.", "f.txt") == "First line here."
    long = title_from_text("word " * 50, "f.txt")
    assert len(long) <= 72 and long.endswith("…")
    assert title_from_text("", "f.txt") == "f.txt"
    doc = tmp_path / "003_abc.txt"
    doc.write_text("Putin a discutat la Kremlin.\nMai mult text.")
    info = describe([{"path": str(doc), "source": doc.name, "language": "ro", "chunks": 2},
                     {"path": None, "source": "ghost"}])
    assert [(d.title, d.language, d.chunks, d.size_bytes) for d in info] == [
        ("Putin a discutat la Kremlin.", "ro", 2, doc.stat().st_size)]
    missing = describe([{"path": str(tmp_path / "gone.txt"), "source": "gone.txt"}])
    assert missing[0].title == "gone.txt"


def test_examples_are_read_beside_the_corpus(tmp_path: Path) -> None:
    from rag.config import DEFAULT_CORPUS

    shipped = load_examples([DEFAULT_CORPUS])
    assert "What did Russia demand about 1997?" in [e.question for e in shipped]
    assert {e.lang for e in shipped} >= {"en", "pl", "ro"}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "examples.json").write_text('["Why?", "  Why?  ", 3]')
    (tmp_path / "b" / "examples.json").write_text("{not json")
    assert [e.question for e in load_examples([tmp_path / "a", tmp_path / "b"])] == ["Why?"]


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
    vetted = vet_uploads([str(ok), str(big), str(exe)], uploads, 2)
    assert vetted.accepted == [(uploads / "notes_ok.md").resolve()]
    assert vetted.accepted[0].read_text() == "fine"
    assert vetted.rejected == [
        "big.txt was not added: it is 2.0 MB, files can be up to 2 MB",
        "tool.exe was not added: .exe files are not supported "
        "(use .txt, .md, .markdown, .html, .htm, .pdf, .docx)",
    ]


def test_uploads_have_a_session_and_a_total_quota(tmp_path: Path) -> None:
    """Found by a hostile tester: 200 x 900 KB were all accepted; there was no quota."""
    src = tmp_path / "in"
    src.mkdir()
    files = []
    for i in range(6):
        f = src / f"f{i}.txt"
        f.write_bytes(b"x" * 400_000)
        files.append(str(f))
    uploads = tmp_path / "uploads"
    quota = Quota(file_mb=1, session_mb=1, total_mb=2, files_per_upload=5)
    first = vet_uploads(files[:3], uploads, quota)
    assert len(first.accepted) == 2 and first.accepted_bytes == 800_000
    assert first.rejected == [
        "f2.txt was not added: this session has reached its upload allowance of 1 MB"]
    roomy = Quota(file_mb=1, session_mb=5, total_mb=1.9)
    other_session = vet_uploads(files[2:5], uploads, roomy, session_used=0)
    assert len(other_session.accepted) == 2  # 1.6 MB in the folder now
    assert other_session.rejected == ["f4.txt was not added: the uploads space (1.9 MB) is full"]
    many = vet_uploads(files, tmp_path / "other", Quota(files_per_upload=5))
    assert many.rejected == ["f5.txt was not added: at most 5 files at a time"]


def test_temp_copies_are_discarded_only_inside_the_temp_folder(tmp_path: Path) -> None:
    temp = tmp_path / "gradio"
    (temp / "abc123").mkdir(parents=True)
    copy = temp / "abc123" / "notes.txt"
    copy.write_text("x")
    mine = tmp_path / "keep.txt"
    mine.write_text("y")
    discard_temp([str(copy), str(mine)], temp)
    assert not copy.exists() and not (temp / "abc123").exists()
    assert mine.exists() and temp.exists()


def test_failed_logins_slow_down_and_a_success_resets() -> None:
    """Found by a hostile tester: 200 wrong passwords in 0.1 s, no slowdown."""
    waits: list[float] = []

    async def fake_sleep(seconds: float) -> None:  # a double for the clock only
        waits.append(seconds)

    login = SlowLogin("ana", "s3cret", free_attempts=2, base_delay_s=0.5, max_delay_s=2,
                      sleep=fake_sleep)
    assert inspect.iscoroutinefunction(login.check)  # what Gradio checks before awaiting

    async def attempts() -> list[bool]:
        results = [await login.check("ana", "wrong") for _ in range(5)]
        results.append(await login.check("ana", "s3cret"))
        results.append(await login.check("ana", "wrong"))
        return results

    assert asyncio.run(attempts()) == [False] * 5 + [True, False]
    assert waits == [0.5, 1.0, 2.0, 2.0]  # after 2 free failures; capped; reset by success
    assert asyncio.run(login.check("bob", "s3cret")) is False


def test_failed_logins_are_counted_per_client_address() -> None:
    """Found by a hostile retest: one shared count let 7 concurrent wrong guesses make the
    real user's correct login wait 15.2 s. Each address now has its own count and queue;
    at most ``max_clients`` addresses are remembered."""
    from rag.ui.login import _client_address

    waits: list[float] = []

    async def fake_sleep(seconds: float) -> None:  # a double for the clock only
        waits.append(seconds)

    login = SlowLogin("ana", "s3cret", free_attempts=1, sleep=fake_sleep, max_clients=2)

    async def attempt(address: str, password: str) -> bool:
        _client_address.set(address)  # what ClientAddress does per request
        return await login.check("ana", password)

    async def attempts() -> list[bool]:
        results = [await attempt("10.0.0.9", "guess") for _ in range(4)]
        results.append(await attempt("10.0.0.1", "s3cret"))
        return results

    assert asyncio.run(attempts()) == [False] * 4 + [True]
    assert login.delays == [("10.0.0.9", 0.5), ("10.0.0.9", 1.0), ("10.0.0.9", 2.0)]
    assert login.failures("10.0.0.9") == 4 and login.failures("10.0.0.1") == 0
    asyncio.run(attempt("10.0.0.2", "guess"))  # a third address: the oldest is forgotten
    assert login.failures("10.0.0.9") == 0 and login.failures("10.0.0.2") == 1


def test_passage_page_marks_only_what_the_passage_holds_as_text() -> None:
    """A link's quote comes from the URL: it is marked where the passage holds it and
    never shown otherwise; document text stays text."""
    from rag.ui.passage_page import marked

    text = f"{HOSTILE} The treaty was signed in 1997."
    page = marked(text, "The treaty was  signed in 1997.")
    assert page.endswith("<mark>The treaty was signed in 1997.</mark>")
    assert "<script>" not in page and "&lt;script&gt;" in page
    crafted = marked(text, "The treaty was never signed.")
    assert "<mark>" not in crafted and "never" not in crafted


def test_serve_binds_loopback_and_logs_in_only_with_both_settings(
    sample_settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import gradio as gr
    from rag.ui import app as ui_app

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
    assert asyncio.run(first["auth"]("ana", "s3cret-pw")) is True
    assert asyncio.run(first["auth"]("ana", "guess")) is False
    assert first["max_file_size"] == 20_000_000
    assert second["auth"] is None and second["server_name"] == "0.0.0.0"
    out = capsys.readouterr().out
    assert "without a login" in out and "s3cret-pw" not in out
    assert "ingesting the sample corpus" not in out  # the store was not empty


def test_errors_and_answers_are_shown_without_secrets(sample_engine: Any) -> None:
    from rag.ui.app import one_line, redact
    from rag.ui.live_engine import LiveEngine

    settings = Settings(llm_api_key="sk-live-123")
    err = RuntimeError("openai failed: 401 for key sk-live-123\nTraceback (most recent call)")
    assert one_line(err, settings) == "openai failed: 401 for key ***"

    class LeakyEngine:  # a double: the real fallback path is in the browser test
        settings = sample_engine.settings

        def ask_stream(self, *args: Any) -> Any:
            yield Answer(question="q", answer="a [1]", answerer="extractive (fallback)",
                         declined=False, citations=[_citation("a", "a")],
                         fallback_reason="openai failed: Bearer sk-live-123 refused")

    live = LiveEngine(sample_engine)
    live.engine = LeakyEngine()  # type: ignore[assignment]
    live._dir = None  # no store to watch for the double
    respond = make_respond(live, lambda text: redact(text, settings))
    *_, (_, html, turns, _) = respond("q", [], 5, "", True)
    assert "sk-live-123" not in html and "sk-live-123" not in json.dumps(turns)
    assert "Bearer *** refused" in html


def test_a_question_sees_an_ingest_made_by_another_process(
    sample_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by a hostile tester: after `rag ingest` in another process the app listed the
    new file but answered "Not found" until it ingested something itself."""
    from rag.ui.live_engine import LiveEngine

    from rag.engine import Engine

    live = LiveEngine(Engine(sample_settings))
    question = "Who painted the Zorblat lighthouse teal?"
    assert live.fresh().ask(question).declined
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "zorblat.txt").write_text(ZORBLAT)
    monkeypatch.setenv("RAG_CHROMA_DIR", sample_settings.chroma.dir)
    subprocess.run([sys.executable, "-m", "rag.cli", "ingest", str(extra)], check=True,
                   capture_output=True)
    answer = live.fresh().ask(question)
    assert not answer.declined and answer.citations[0].source == "zorblat.txt"
    assert live.reopened == 1
    subprocess.run([sys.executable, "-m", "rag.cli", "delete", "zorblat.txt"], check=True,
                   capture_output=True)
    assert live.fresh().ask(question).declined
    assert live.fresh() is live.engine and live.reopened == 2  # nothing new: no reopen


def _launched(settings: Settings) -> tuple[Any, int]:
    from rag.ui.app import build_app, launch_options

    from rag.engine import Engine
    from tests.ui_helpers import free_port

    app = build_app(Engine(settings))
    port = free_port()
    app.launch(prevent_thread_lock=True, quiet=True,
               **launch_options(settings, "127.0.0.1", port))
    return app, port


def test_sessions_kept_in_memory_are_bounded(sample_settings: Settings) -> None:
    """Every API call without a session makes Gradio keep a new one (~50 KB, measured);
    the app keeps at most RAG_UI_MAX_SESSIONS, dropping the least recently used."""
    import uuid

    import httpx

    sample_settings.ui.max_sessions = 3
    app, port = _launched(sample_settings)
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


def test_the_login_route_slows_down_after_failures(sample_settings: Settings) -> None:
    """Over real HTTP: wrong passwords are refused and make the next attempts wait;
    the right one still logs in and guards the API."""
    import httpx

    sample_settings.ui.user, sample_settings.ui.password = "ana", SecretStr("s3cret-pw")
    app, port = _launched(sample_settings)
    login = app.auth.__self__  # the SlowLogin behind the route
    try:
        url = f"http://127.0.0.1:{port}"
        with httpx.Client(timeout=60) as http:
            assert http.get(f"{url}/gradio_api/info").status_code == 401
            for _ in range(login.free_attempts + 2):
                reply = http.post(f"{url}/login", data={"username": "ana", "password": "nope"})
                assert reply.status_code == 400
            assert login.delays == [("127.0.0.1", login.base_delay_s),
                                    ("127.0.0.1", 2 * login.base_delay_s)]
            ok = http.post(f"{url}/login", data={"username": "ana", "password": "s3cret-pw"})
            assert ok.status_code == 200 and login.failures("127.0.0.1") == 0
            assert http.get(f"{url}/gradio_api/info").status_code == 200
    finally:
        app.close()


def test_guesses_from_another_address_do_not_hold_up_the_real_login(
        sample_settings: Settings) -> None:
    """Over real HTTP, from two loopback addresses: 7 concurrent wrong guesses from
    127.0.0.2 queue behind each other, growing waits; the real user's login from
    127.0.0.1 gets in while they still wait (no clock is read: an order is asserted)."""
    import threading

    import httpx

    sample_settings.ui.user, sample_settings.ui.password = "ana", SecretStr("s3cret-pw")
    app, port = _launched(sample_settings)
    login = app.auth.__self__
    login.base_delay_s = login.max_delay_s = 2.0  # 7 queued guesses: 14 s of waiting
    url = f"http://127.0.0.1:{port}/login"
    attacker = httpx.Client(timeout=120, transport=httpx.HTTPTransport(local_address="127.0.0.2"))
    finished: list[int] = []

    def guess() -> None:
        try:
            finished.append(attacker.post(url, data={"username": "ana",
                                                     "password": "guess"}).status_code)
        except httpx.HTTPError:
            finished.append(0)  # the server closed at the end of the test

    try:
        for _ in range(login.free_attempts):
            assert attacker.post(url, data={"username": "ana", "password": "x"}).status_code \
                == 400
        threads = [threading.Thread(target=guess) for _ in range(7)]
        for thread in threads:
            thread.start()
        while not login.delays:  # the guesses are being held up
            threading.Event().wait(0.05)
        with httpx.Client(timeout=120) as user:
            ok = user.post(url, data={"username": "ana", "password": "s3cret-pw"})
        pending = 7 - len(finished)
        assert ok.status_code == 200 and pending >= 5, (ok.status_code, finished)
        assert login.failures("127.0.0.2") >= login.free_attempts
        assert all(address == "127.0.0.2" for address, _ in login.delays)
    finally:
        app.close()
        attacker.close()


def test_a_pending_question_goes_before_the_next_ingest_batch() -> None:
    """Found by a hostile tester: a question waited 85 s behind an upload. The embedder's
    lock is not fair, so the ingest's next batch must wait for a pending query. The inner
    embedder is a double that records call order and holds the query until released."""
    import threading

    from rag.ui.query_first import QueryFirst

    calls: list[str] = []
    release = threading.Event()

    class Recorder:
        name, dim = "recorder", 3

        def embed_queries(self, texts: list[str]) -> list[str]:
            release.wait(10)
            calls.append("query")
            return texts

        def embed_passages(self, texts: list[str]) -> list[str]:
            calls.append("passages")
            return texts

        def count_tokens(self, text: str) -> int:
            calls.append("tokens")
            return 1

    gate = QueryFirst(Recorder())
    question = threading.Thread(target=gate.embed_queries, args=(["q"],))
    question.start()
    while not gate._pending:  # the query is in flight
        threading.Event().wait(0.01)
    ingest = threading.Thread(target=lambda: (gate.count_tokens("x"),
                                              gate.embed_passages(["p"])))
    ingest.start()
    ingest.join(0.3)
    assert ingest.is_alive() and calls == []  # the ingest waits for the question
    release.set()
    question.join(5)
    ingest.join(5)
    assert calls == ["query", "tokens", "passages"]
    assert (gate.name, gate.dim) == ("recorder", 3)


def test_a_question_waits_for_one_slice_of_an_ingest_batch_not_all_of_it() -> None:
    """A 1 MB upload made questions wait p50 1.2 s behind whole 256-sentence batches: the
    app embeds an ingest's batch in slices, and a question asked during one slice goes
    before the next. The inner embedder is a double that records the calls' order."""
    import threading

    import numpy as np
    from rag.ui.query_first import SLICE, QueryFirst

    calls: list[str] = []
    started: list[threading.Thread] = []

    class Recorder:
        name, dim = "recorder", 1

        def embed_queries(self, texts: list[str]) -> np.ndarray:
            calls.append("query")
            return np.zeros((len(texts), 1))

        def embed_passages(self, texts: list[str]) -> np.ndarray:
            calls.append(f"passages:{len(texts)}")
            if not started:  # a question arrives while the first slice is being embedded
                asker = threading.Thread(target=gate.embed_queries, args=(["q"],))
                started.append(asker)
                asker.start()
                asker.join(5)
            return np.array([[float(t)] for t in texts])

    gate = QueryFirst(Recorder())
    texts = [str(i) for i in range(2 * SLICE + 3)]
    vectors = gate.embed_passages(texts)
    assert calls == [f"passages:{SLICE}", "query", f"passages:{SLICE}", "passages:3"]
    assert vectors[:, 0].tolist() == [float(t) for t in texts]  # in order, all of them
