"""EmbeddingGemma's wiring on a tiny random-weight Gemma-shaped model (tests/gemma_tiny.py):
the ONNX graph against an independent numpy forward pass, long texts, the backend, the
build cache, the store's embedder guard and ``rag ingest --reembed``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import rag.embedding
import rag.models
from rag.config import DEFAULT_CORPUS, Settings
from rag.embedding import EmbedderError, default_embedder, make_embedder
from rag.engine import Engine
from rag.gemma import onnx_folder
from rag.gemma.builder import BuildError
from rag.gemma.install import MARKER
from rag.store import StoreError
from tests.gemma_tiny import POSITIONS, reference_vector, write_tiny_model
from tests.processes import clean_env

TEXTS = [
    "What did Russia demand about 1997?",
    "NATO odpowiedziało na żądania Rosji w sprawie bezpieczeństwa w Europie.",
    "krótko",
    "Rusia a cerut revenirea la arhitectura de securitate din 1997, a declarat Putin. " * 3,
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_model(tmp_path_factory.mktemp("models") / "tiny-gemma")


def _settings(tiny: Path, tmp: Path, variant: str = "fast", **extra: str) -> Settings:
    return Settings(embedder=f"gemma-{variant}", embed_model=str(tiny),
                    embed_cache=str(tmp / "cache"), data_dir=str(tmp / "data"), **extra)


def _reference(embedder, tiny: Path, prompt: str, text: str) -> np.ndarray:
    """The numpy model's vector, windowed as the embedder documents: the prompt's ids
    start every window of at most POSITIONS - 2 ids."""
    ids = embedder.tokenizer.ids([prompt + text])[0]
    head = embedder.tokenizer.ids([prompt.rstrip()])[0]
    assert ids[: len(head)] == head
    step = POSITIONS - 2 - len(head)
    body = ids[len(head):]
    windows = [head + body[i : i + step] for i in range(0, max(len(body), 1), step)]
    return reference_vector(tiny, [([2, *w, 1], len(w)) for w in windows])


@pytest.mark.parametrize(("variant", "floor"), [("exact", 0.9999), ("fast", 0.999)])
def test_graph_matches_an_independent_forward_pass(tiny: Path, tmp_path: Path, variant: str,
                                                   floor: float) -> None:
    """Norms (1 + w), q/k norms, rotary theta per layer type, one key/value head for three
    query heads, the sliding band (texts far longer than its reach), padding in a batch,
    mean pooling with the prompt, both Dense layers, and windows of long texts."""
    embedder = make_embedder(_settings(tiny, tmp_path, variant))
    assert embedder.name == f"gemma:tiny-gemma{'' if variant == 'exact' else '-fast'}"
    assert embedder.dim == 32
    for role, prompt in (("queries", embedder.query_prompt),
                         ("passages", embedder.document_prompt)):
        vectors = getattr(embedder, f"embed_{role}")(TEXTS)  # one batch, padded
        for text, vector in zip(TEXTS, vectors, strict=True):
            cosine = float(vector @ _reference(embedder, tiny, prompt, text))
            assert cosine >= floor, (variant, role, text[:30], cosine)
    long_ids = embedder.tokenizer.ids([embedder.query_prompt + TEXTS[-1]])[0]
    assert len(long_ids) > 3 * POSITIONS  # several windows, each far longer than the band


def test_roles_differ_and_tokens_count_the_prompt(tiny: Path, tmp_path: Path) -> None:
    embedder = make_embedder(_settings(tiny, tmp_path))
    query, passage = embedder.embed_queries(TEXTS[:1])[0], embedder.embed_passages(TEXTS[:1])[0]
    assert abs(float(np.linalg.norm(query)) - 1) < 1e-5 and float(query @ passage) < 0.9999
    text_only = len(embedder.tokenizer.ids([TEXTS[0]])[0])
    assert embedder.count_tokens(TEXTS[0]) > text_only + 2  # prompt and <bos>/<eos> counted
    assert embedder.embed_passages([]).shape == (0, 32)


def test_built_once_per_cache_and_unknown_variant(tiny: Path, tmp_path: Path) -> None:
    logged: list[str] = []
    first = onnx_folder(tiny, "fast", tmp_path / "cache", log=logged.append)
    assert len(logged) == 2 and "building" in logged[0]  # a progress line before and after
    assert onnx_folder(tiny, "fast", tmp_path / "cache", log=logged.append) == first
    assert len(logged) == 2  # nothing rebuilt
    assert not [p for p in first.parent.iterdir() if p.name.startswith(".build-")]
    assert json.loads((first / "meta.json").read_text())["variant"] == "fast"
    with pytest.raises(BuildError, match="unknown EmbeddingGemma variant 'int4'"):
        onnx_folder(tiny, "int4", tmp_path / "cache")


def test_a_folder_that_is_not_gemma_is_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "not-a-model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    with pytest.raises(EmbedderError) as info:
        make_embedder(Settings(embedder="gemma", embed_model=str(folder),
                               embed_cache=str(tmp_path / "cache")))
    assert "\n" not in str(info.value) and "config.json" in str(info.value)


def test_default_is_gemma_only_once_installed(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Not installed (or half installed: no marker): e5 is the default and asking for
    gemma says how to install it; with the marker, gemma is the default."""
    monkeypatch.setattr(rag.models, "models_dir", lambda: tmp_path / "share")
    # Embedders are built once per process: one an earlier test built must not answer here.
    monkeypatch.setattr(rag.embedding, "_CACHE", {})
    assert default_embedder() == "e5"
    with pytest.raises(EmbedderError, match=r"rag\.models install embeddinggemma-300m"):
        make_embedder(Settings(embedder="gemma"))
    model = tmp_path / "share" / "embeddinggemma-300m" / "model"
    model.mkdir(parents=True)
    (model / "model.safetensors").write_bytes(b"half written")
    assert default_embedder() == "e5"
    (model / MARKER).write_text("{}")
    assert default_embedder() == "gemma"


def test_store_guard_and_reembed_both_ways(tiny: Path, tmp_path: Path) -> None:
    """A store remembers its embedder: another one is refused in one line naming the way
    out; ``rag ingest --reembed`` rebuilds it from the stored sentences (same records)."""
    gemma = _settings(tiny, tmp_path, chroma_dir=str(tmp_path / "chroma"))
    engine = Engine(gemma)
    engine.ingest([DEFAULT_CORPUS])
    answer = engine.ask("What did Russia demand about 1997?")
    assert answer.to_dict()["embedder"] == "gemma:tiny-gemma-fast"
    ids = sorted(r.id for r in engine.store.records())

    env = clean_env(RAG_CHROMA_DIR=gemma.chroma.dir, RAG_DATA_DIR=gemma.data_dir)
    asked = subprocess.run([sys.executable, "-m", "rag.cli", "ask", "NATO?"], env=env,
                           capture_output=True, text=True, timeout=300)
    assert asked.returncode == 1
    assert asked.stderr.count("\n") == 1 and "rag ingest --reembed" in asked.stderr
    assert "gemma:tiny-gemma-fast" in asked.stderr  # says which embedder built it
    rebuilt = subprocess.run([sys.executable, "-m", "rag.cli", "ingest", "--reembed",
                              str(DEFAULT_CORPUS)], env=env, capture_output=True, text=True,
                             timeout=300)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert f"{len(ids)} stored sentences re-embedded" in rebuilt.stdout
    assert "5 unchanged" in rebuilt.stdout  # the files themselves were not ingested again
    e5 = Engine(Settings(chroma_dir=gemma.chroma.dir, data_dir=gemma.data_dir))
    assert e5.status()["embedder"].startswith("e5:")
    assert sorted(r.id for r in e5.store.records()) == ids
    assert e5.ask("What did Russia demand about 1997?").retrieved[0].source.startswith("003")

    with pytest.raises(StoreError, match="was built with embedder 'e5:"):
        Engine(gemma).ask("NATO?")
    back = Engine(gemma).ingest([DEFAULT_CORPUS], reembed=True)
    assert back.reembedded == len(ids) and back.sentences == 0
    again = Engine(gemma).ingest([DEFAULT_CORPUS], reembed=True)
    assert again.reembedded == 0  # already built with this embedder: nothing to do
    assert Engine(gemma).status()["embedder"] == "gemma:tiny-gemma-fast"
