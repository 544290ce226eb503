"""The settings model: .env.example documents it, env names map onto sections, secrets hide."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rag.config import PROJECT_ROOT, Settings, SettingsError, env_variable_names
from rag.registry import ANSWERERS, EMBEDDERS

EXAMPLE = (PROJECT_ROOT / ".env.example").read_text(encoding="utf-8")


def test_env_example_documents_exactly_the_variables_the_settings_read() -> None:
    documented = set(re.findall(r"^(RAG_[A-Z0-9_]+)=", EXAMPLE, re.M))
    assert documented == set(env_variable_names())


def test_env_example_names_every_backend() -> None:
    for backend in [*ANSWERERS.backends(), *EMBEDDERS.backends()]:
        assert re.search(rf"^#\s+{re.escape(backend.name)}\s", EXAMPLE, re.M), backend.name


def test_variables_land_in_their_sections(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_LLM_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("RAG_CHROMA_DIR", "/tmp/somewhere")
    monkeypatch.setenv("RAG_TOP_K", "7")
    monkeypatch.setenv("RAG_DECLINE_THRESHOLD", "")  # empty means the default
    s = Settings()
    assert (s.llm.base_url, s.chroma.dir, s.top_k, s.decline_threshold) == (
        "http://127.0.0.1:9/v1", "/tmp/somewhere", 7, 0.0)


def test_dotenv_is_read_and_the_real_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("RAG_TOP_K=3\nRAG_LLM_MODEL=from-file\n")
    monkeypatch.setenv("RAG_TOP_K", "9")
    s = Settings()
    assert s.top_k == 9 and s.llm.model == "from-file"


def test_a_bad_value_is_one_line_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_LLM_MAX_TOKENS", "lots")
    with pytest.raises(SettingsError, match=r"^RAG_LLM_MAX_TOKENS: .*'lots'") as info:
        Settings()
    assert "\n" not in str(info.value)


def test_secrets_never_show(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_LLM_API_KEY", "sk-live-abc")
    monkeypatch.setenv("RAG_UI_PASSWORD", "hunter2")
    s = Settings()
    shown = repr(s) + str(s.public_dict()) + str(s)
    assert "sk-live-abc" not in shown and "hunter2" not in shown
    assert sorted(s.secrets()) == ["hunter2", "sk-live-abc"]
    assert s.public_dict()["llm"]["api_key"] == "set"


def test_the_store_folder_follows_the_data_folder() -> None:
    assert Settings(data_dir="/srv/rag").chroma.dir == "/srv/rag/chroma"
    assert Settings(data_dir="/srv/rag", chroma_dir="/x").chroma.dir == "/x"
