"""The OpenAI-compatible API of ``rag serve``, driven by the official ``openai`` client
against a real ``rag serve`` subprocess (real store, real e5 model, real HTTP)."""

from __future__ import annotations

import html
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from rag.openai_api import OpenAIApi, closing_text, conversation, url_citations
from rag.types import Answer, Citation, Passage
from tests.processes import clean_env, post_body
from tests.ui_helpers import running_app

KEY = "sk-rag-test-key-123"
QUESTION = "What did Russia demand about 1997?"
EXPECTED = "003_f0b8fe8fdb47aa20.txt"
LIGHTHOUSE = ("The Zorblat lighthouse on Kelvar island was painted teal in 1923 by Ottilie "
              "Brandqvist. Ships still use its teal tower as a landmark.")


@pytest.fixture(scope="module")
def served(sample_store_dir: Path, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[str, Path]]:
    """The API's base URL and the served store's folder."""
    root = tmp_path_factory.mktemp("openai_api")
    shutil.copytree(sample_store_dir, root / "chroma")
    with running_app(root / "chroma", root / "data", root / "serve.log",
                     extra_env={"RAG_API_KEY": KEY}) as url:
        yield url + "v1", root / "chroma"


@pytest.fixture
def base_url(served: tuple[str, Path]) -> str:
    return served[0]


def client(base_url: str, key: str = KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=60)


def test_answer_cites_the_source(base_url: str) -> None:
    reply = client(base_url).chat.completions.create(
        model="rag", messages=[{"role": "user", "content": QUESTION}])
    text = reply.choices[0].message.content
    assert "1997" in text and "[1]" in text
    rag = reply.model_extra["rag"]
    assert rag["citations"][0]["source"] == EXPECTED
    assert "1997" in rag["citations"][0]["quote"] and rag["citations"][0]["score"] > 0.5
    assert not rag["declined"]


def test_streaming_sends_chunks_then_citations(base_url: str) -> None:
    chunks = list(client(base_url).chat.completions.create(
        model="rag:extractive", messages=[{"role": "user", "content": QUESTION}], stream=True))
    pieces = [c.choices[0].delta.content for c in chunks if c.choices[0].delta.content]
    text = "".join(pieces)
    assert "1997" in text and "[1]" in text
    assert len(pieces) >= 2  # the preamble, then each quote, as the answerer produces them
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].model_extra["rag"]["citations"][0]["source"] == EXPECTED
    annotations = [a for c in chunks for a in (c.choices[0].delta.model_extra or {}).get(
        "annotations") or []]
    assert annotations and annotations[0]["type"] == "url_citation"
    cited = annotations[0]["url_citation"]
    assert text[cited["start_index"]:cited["end_index"]] == "[1]"
    assert EXPECTED in cited["title"]


def test_citations_are_url_citation_annotations_opening_the_passage(base_url: str) -> None:
    """What Open WebUI shows as sources: title and file, the [n] span, a link that opens
    the passage in the app with the quoted sentence marked."""
    reply = client(base_url).chat.completions.create(
        model="rag", messages=[{"role": "user", "content": QUESTION}])
    message = reply.choices[0].message
    annotation = message.annotations[0].url_citation
    assert message.content[annotation.start_index:annotation.end_index] == "[1]"
    assert annotation.title.endswith(f"({EXPECTED})") and len(annotation.title) > len(EXPECTED) + 3
    assert annotation.url.startswith(base_url.removesuffix("v1") + "passage/")
    assert annotation.url.split("?")[0].endswith(f"/{EXPECTED}")  # readable in a list
    page = httpx.get(annotation.url, timeout=60)
    quote = reply.model_extra["rag"]["citations"][0]["quote"]
    assert page.status_code == 200 and EXPECTED in page.text
    assert f"<mark>{html.escape(quote)}</mark>" in page.text


ROUTES = {  # path, headers, and what goes around the filler so the body would parse
    "/v1/chat/completions": ({"Authorization": f"Bearer {KEY}",
                              "Content-Type": "application/json"},
                             b'{"messages": [{"role": "user", "content": "', b'"}]}'),
    "/mcp": ({"Authorization": f"Bearer {KEY}", "Content-Type": "application/json",
              "Accept": "application/json, text/event-stream"},
             b'{"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"x": "', b'"}}'),
    "/gradio_api/queue/join": ({"Content-Type": "application/json"}, b'{"data": ["',
                               b'"], "fn_index": 0}'),
}


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize("path", list(ROUTES))
def test_an_oversize_body_is_refused_while_it_is_read(base_url: str, path: str,
                                                      chunked: bool) -> None:
    """Found by a hostile tester: a 300 MB POST got its 413 only once buffered (254 -> 864
    MB resident). Now the length header, or the count of chunks as they arrive, stops it
    (the memory figures: scripts/body_limits.py). The API says so in OpenAI's error shape,
    which its clients show."""
    headers, head, tail = ROUTES[path]
    port = int(base_url.split(":")[-1].split("/")[0])
    status, sent, rest = post_body(port, path, headers, 50_000_000, chunked, head, tail)
    assert status.startswith("HTTP/1.1 413"), status
    assert sent < 50_000_000  # answered before the body was all sent
    if path.startswith("/v1"):
        error = json.loads(rest.split("\r\n\r\n", 1)[1])["error"]
        assert error["code"] == "request_too_large" and "1 MB" in error["message"]


def test_uploads_keep_gradio_own_per_file_limit_not_the_5_mb_cap(base_url: str) -> None:
    """Gradio's upload route caps a body itself, per file (RAG_UPLOAD_MAX_MB, 20 MB by
    default): a 6 MB file still goes in, a 25 MB one does not."""
    upload = f"{base_url.removesuffix('v1')}gradio_api/upload"
    for size, status in ((6_000_000, 200), (25_000_000, 413)):
        files = {"files": ("big.txt", b"a" * size, "text/plain")}
        assert httpx.post(upload, files=files, timeout=120).status_code == status


def test_follow_up_uses_the_conversation(base_url: str) -> None:
    """Earlier messages are the history: the short follow-up is searched with its subject."""
    first = client(base_url).chat.completions.create(
        model="rag", messages=[{"role": "user", "content": QUESTION}])
    reply = client(base_url).chat.completions.create(model="rag", messages=[
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": QUESTION},
        {"role": "assistant", "content": first.choices[0].message.content},
        {"role": "user", "content": "and what did NATO answer?"},
    ])
    rag = reply.model_extra["rag"]
    assert "1997" in rag["standalone_question"] and "NATO" in rag["standalone_question"]


def test_models_lists_the_answerers(base_url: str) -> None:
    ids = [m.id for m in client(base_url).models.list()]
    assert ids == ["rag", "rag:extractive"]


def test_wrong_or_missing_key_is_401(base_url: str) -> None:
    with pytest.raises(openai.AuthenticationError):
        client(base_url, "sk-wrong").chat.completions.create(
            model="rag", messages=[{"role": "user", "content": QUESTION}])
    with pytest.raises(openai.AuthenticationError):
        client(base_url, "sk-wrong").models.list()
    assert httpx.get(f"{base_url}/models").status_code == 401  # no header at all


@pytest.mark.parametrize(("body", "reason"), [
    (b'{"model": "rag", "messages": [{"role": "user"', "not valid JSON"),
    (b'[1, 2]', "JSON object"),
    (b'{"model": "rag"}', "'messages' must be a non-empty list"),
    (b'{"messages": [{"role": "robot", "content": "hi"}]}', "messages[0] must be"),
    (b'{"messages": [{"role": "user", "content": 5}]}', "messages[0].content"),
    (b'{"messages": [{"role": "assistant", "content": "hi"}]}', "no user message"),
    (b'{"messages": [{"role": "user", "content": "q"}], "stream": "yes"}', "'stream'"),
    (b'{"messages": [{"role": "user", "content": "q"}], "top_k": 0}', "'top_k'"),
    (b'{"messages": [{"role": "user", "content": "   "}], "stream": true}', "empty"),
])
def test_malformed_body_is_400_with_one_line(base_url: str, body: bytes, reason: str) -> None:
    resp = httpx.post(f"{base_url}/chat/completions", content=body, timeout=60,
                      headers={"Authorization": f"Bearer {KEY}"})
    assert resp.status_code == 400, resp.text
    message = resp.json()["error"]["message"]
    assert reason in message and "\n" not in message and "Traceback" not in resp.text


def test_bad_question_and_unknown_model_through_the_client(base_url: str) -> None:
    with pytest.raises(openai.BadRequestError, match="punctuation"):
        client(base_url).chat.completions.create(
            model="rag", messages=[{"role": "user", "content": "?!"}], stream=True)
    with pytest.raises(openai.NotFoundError, match="unknown model"):
        client(base_url).chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": QUESTION}])


def test_a_file_ingested_by_another_process_is_answered(served: tuple[str, Path],
                                                         tmp_path: Path) -> None:
    """The API follows the store like the page does (the app's live engine reopens it)."""
    base_url, chroma = served
    doc = tmp_path / "Traktat z Morvany.txt"
    doc.write_text("Traktat z Morvany podpisano 14 marca 1873 roku w miasteczku Kalisko. "
                   "Na mocy traktatu oba miasta zbudowały wspólnie most na rzece Lindra.",
                   encoding="utf-8")
    subprocess.run([sys.executable, "-m", "rag.cli", "ingest", str(doc)], check=True,
                   env=clean_env(RAG_CHROMA_DIR=str(chroma)), cwd=tmp_path, timeout=300,
                   capture_output=True)
    reply = client(base_url).chat.completions.create(model="rag", messages=[
        {"role": "user", "content": "Kiedy i gdzie podpisano traktat z Morvany?"}])
    assert reply.model_extra["rag"]["citations"][0]["source"] == doc.name


def test_a_reopen_waits_for_answers_in_progress(sample_settings: Any, tmp_path: Path) -> None:
    """The app reopens its store when another process changed it, clearing Chroma's client
    cache: that must wait for the API's answers in progress, a stream's too (it pulled the
    store from under them). The store changes for real (``rag ingest`` in another process);
    the answerer below is the extractive one, plus a hook standing for the chat page asking
    ``fresh()`` while the API is still answering."""
    from rag.ui.live_engine import LiveEngine, _clear_chroma_cache

    from rag.answering.extractive import ExtractiveAnswerer
    from rag.engine import Engine

    reopened_mid_answer: list[int] = []

    class AnswersWhileTheStoreChanges(ExtractiveAnswerer):
        def _store_changes_now(self) -> None:
            before = live.reopened
            doc = tmp_path / f"outside{before}.txt"
            doc.write_text(f"Report {before}: {LIGHTHOUSE}", encoding="utf-8")
            subprocess.run([sys.executable, "-m", "rag.cli", "ingest", str(doc)], check=True,
                           env=clean_env(RAG_CHROMA_DIR=sample_settings.chroma.dir),
                           cwd=tmp_path, timeout=300, capture_output=True)
            live.fresh()  # another request arriving now
            reopened_mid_answer.append(live.reopened - before)

        def draft(self, question: str, passages: Any) -> Any:
            self._store_changes_now()
            return super().draft(question, passages)

        def stream(self, question: str, passages: Any) -> Iterator[str]:
            first, *rest = super().draft(question, passages).text.splitlines(keepends=True)
            yield first
            self._store_changes_now()  # the response has started: the stream is being sent
            yield from rest

    answerer = AnswersWhileTheStoreChanges()

    def reopen(old: Engine) -> Engine:
        _clear_chroma_cache()
        return Engine(old.settings, embedder=old.embedder, answerers={"extractive": answerer})

    live = LiveEngine(reopen(Engine(sample_settings)), reopen=reopen)
    with TestClient(Starlette(routes=OpenAIApi(live).routes())) as http:
        for n, stream in enumerate((False, True), 1):
            resp = http.post("/v1/chat/completions", json={
                "model": "rag:extractive", "stream": stream,
                "messages": [{"role": "user", "content": QUESTION}]})
            assert resp.status_code == 200 and EXPECTED in resp.text, resp.text
            assert "error" not in resp.text
            assert reopened_mid_answer == [0] * n  # the change waited for the answer ...
            live.fresh()
            assert live.reopened == n  # ... and is picked up once it was sent
    answer = live.fresh().ask("Who painted the Kelvar island lighthouse teal?")
    assert {c.source for c in answer.citations} & {"outside0.txt", "outside1.txt"}


def test_login_without_api_key_keeps_the_api_closed() -> None:
    """With a chat login and no RAG_API_KEY the API must not be a way around the login.
    No engine call is reached, so a bare engine stands in for one (nothing is mocked)."""
    from rag.config import Settings
    from rag.engine import Engine

    api = OpenAIApi(Engine(Settings()), api_key="", login_required=True)
    with TestClient(Starlette(routes=api.routes())) as http:
        resp = http.post("/v1/chat/completions",
                         json={"messages": [{"role": "user", "content": QUESTION}]})
    assert resp.status_code == 401 and "RAG_API_KEY" in resp.json()["error"]["message"]


def test_conversation_pairs_turns() -> None:
    question, history = conversation([
        {"role": "user", "content": "a"}, {"role": "assistant", "content": "A"},
        {"role": "user", "content": [{"type": "text", "text": "b"}]},
        {"role": "user", "content": "c"},
    ])
    assert question == "c" and history == [("a", "A"), ("b", "")]


def test_closing_text_appends_only_what_the_client_lacks() -> None:
    assert closing_text("", "Not found.") == "Not found."  # a decline streams nothing first
    assert closing_text("LLM text. Quoted [1]", "Quoted [1]") == ""  # fallback already sent
    assert closing_text("Answer [1][9]", "Answer [1]") == "\n\nAnswer [1]"


def test_url_citations_span_the_markers_of_the_final_answer_only() -> None:
    """A stream may carry an LLM's text before the final answer; the spans point into the
    final answer (what the client shows last), one per citation, first marker each."""
    passages = [Passage(n, f"c{n}", f"doc{n}.txt", f"/gone/doc{n}.txt", "text", 0.9)
                for n in (1, 2)]
    citations = [Citation(1, "doc1.txt", "a", 0.9), Citation(2, "doc2.txt", "b", 0.9)]
    answer = Answer(question="q", answer="Quoted: “a” [1] “b” [1, 2]", answerer="extractive",
                    declined=False, retrieved=passages, citations=citations)
    content = "LLM text [2]" + closing_text("LLM text [2]", answer.answer)
    links = url_citations(answer, content, "http://app/", lambda base, p, q: f"{base}{p.n}/{q}")
    spans = [(a["url_citation"]["start_index"], a["url_citation"]["end_index"]) for a in links]
    assert [content[s:e] for s, e in spans] == ["[1]", "[1, 2]"]
    assert min(spans)[0] > content.index("LLM text [2]") + len("LLM text [2]")
    assert [a["url_citation"]["url"] for a in links] == ["http://app/1/a", "http://app/2/b"]
    assert [a["url_citation"]["title"] for a in links] == ["doc1.txt", "doc2.txt"]
