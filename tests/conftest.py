"""Shared fixtures: a real on-disk Chroma store with the sample corpus, built once per run."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag.config import DEFAULT_CORPUS, Settings
from tests.processes import TEST_EMBEDDER

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts"


@pytest.fixture(scope="session", autouse=True)
def _test_embedder() -> Iterator[None]:
    """Session and module fixtures (built before any function fixture) use the tests'
    embedder too."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAG_EMBEDDER", TEST_EMBEDDER)
        yield


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's .env or writes to the default store; tests run on
    the e5 embedder unless they choose another (see ``TEST_EMBEDDER``)."""
    for key in list(os.environ):
        if key.startswith("RAG_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "data"))
    # With the local model installed every extractive answer would start it for its glosses,
    # and every LLM claim for its reading; the tests of those turn them on themselves.
    monkeypatch.setenv("RAG_GLOSSES", "off")
    monkeypatch.setenv("RAG_CLAIM_JUDGE", "off")
    monkeypatch.setenv("RAG_EMBEDDER", TEST_EMBEDDER)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def sample_store_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with the sample corpus ingested once; tests copy it before writing."""
    from rag.engine import Engine

    store = tmp_path_factory.mktemp("sample") / "chroma"
    Engine(Settings(chroma_dir=str(store))).ingest([DEFAULT_CORPUS])
    return store


@pytest.fixture
def sample_settings(sample_store_dir: Path, tmp_path: Path) -> Settings:
    """Settings pointing at a private copy of the sample store (safe to modify)."""
    copy = tmp_path / "chroma"
    shutil.copytree(sample_store_dir, copy)
    return Settings(chroma_dir=str(copy), data_dir=str(tmp_path / "data"))


@pytest.fixture
def sample_engine(sample_settings: Settings):
    from rag.engine import Engine

    return Engine(sample_settings)


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
