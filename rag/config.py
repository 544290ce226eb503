"""The one configuration object, read from the environment and ``.env``.

Every command builds a ``Settings`` with ``Settings.from_env()`` so a test or a
script can point the whole tool at a scratch store by setting variables.
Secrets (``RAG_LLM_API_KEY``, ``RAG_EMBED_API_KEY``, ``RAG_UI_PASSWORD``) are
kept out of ``repr`` so they never reach logs or the UI.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = PROJECT_ROOT / "corpus"
SECRET_FIELDS = ("llm_api_key", "embed_api_key", "ui_password")


def _load_dotenv() -> None:
    """Load ``.env`` from the working directory; real environment variables win."""
    candidate = Path.cwd() / ".env"
    if candidate.is_file():
        from dotenv import load_dotenv

        load_dotenv(candidate, override=False)


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def _env_int(name: str, default: int) -> int:
    raw = _env(name)
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from exc


def _env_float(name: str, default: float) -> float:
    raw = _env(name)
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be a number, got {raw!r}") from exc


@dataclass
class Settings:
    # answering
    answerer: str = "extractive"  # extractive | openai | ollama | llamacpp
    llm_base_url: str = ""
    llm_model: str = ""
    llm_api_key: str = field(default="", repr=False)
    llm_timeout_s: float = 60.0
    llm_max_tokens: int = 512
    llm_temperature: float = 0.1
    llm_model_path: str = ""  # GGUF file for the llamacpp answerer
    llm_context_window: int = 4096
    # embedding
    embedder: str = "e5"  # e5 | sentence-transformers | openai
    embed_model: str = ""  # model name / folder for sentence-transformers or openai
    embed_base_url: str = ""
    embed_api_key: str = field(default="", repr=False)
    embed_batch_size: int = 32
    # store
    chroma_dir: str = str(PROJECT_ROOT / "data" / "chroma")
    chroma_host: str = ""
    chroma_port: int = 8000
    collection: str = "documents"
    # retrieval
    top_k: int = 5
    decline_threshold: float = 0.0  # 0 = use the calibrated default of the answerability signal
    max_question_chars: int = 4000
    # ingestion
    max_file_mb: float = 10.0  # ~2.5M tokens: about 1.5 h of e5 embedding on 2 cores
    # ui
    ui_user: str = ""
    ui_password: str = field(default="", repr=False)
    upload_max_mb: float = 20.0
    # Gradio keeps ~50 KB per browser/API session (measured); least recently used go first.
    ui_max_sessions: int = 1000
    data_dir: str = str(PROJECT_ROOT / "data")

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Read ``RAG_*`` variables (after ``.env``); keyword overrides win."""
        _load_dotenv()
        d = cls()
        data_dir = _env("RAG_DATA_DIR", d.data_dir)
        s = cls(
            answerer=_env("RAG_ANSWERER", d.answerer).lower(),
            llm_base_url=_env("RAG_LLM_BASE_URL"),
            llm_model=_env("RAG_LLM_MODEL"),
            llm_api_key=_env("RAG_LLM_API_KEY"),
            llm_timeout_s=_env_float("RAG_LLM_TIMEOUT", d.llm_timeout_s),
            llm_max_tokens=_env_int("RAG_LLM_MAX_TOKENS", d.llm_max_tokens),
            llm_temperature=_env_float("RAG_LLM_TEMPERATURE", d.llm_temperature),
            llm_model_path=_env("RAG_LLM_MODEL_PATH"),
            llm_context_window=_env_int("RAG_LLM_CONTEXT_WINDOW", d.llm_context_window),
            embedder=_env("RAG_EMBEDDER", d.embedder).lower(),
            embed_model=_env("RAG_EMBED_MODEL"),
            embed_base_url=_env("RAG_EMBED_BASE_URL"),
            embed_api_key=_env("RAG_EMBED_API_KEY"),
            embed_batch_size=_env_int("RAG_EMBED_BATCH_SIZE", d.embed_batch_size),
            chroma_dir=_env("RAG_CHROMA_DIR", str(Path(data_dir) / "chroma")),
            chroma_host=_env("RAG_CHROMA_HOST"),
            chroma_port=_env_int("RAG_CHROMA_PORT", d.chroma_port),
            collection=_env("RAG_COLLECTION", d.collection),
            top_k=_env_int("RAG_TOP_K", d.top_k),
            decline_threshold=_env_float("RAG_DECLINE_THRESHOLD", d.decline_threshold),
            max_question_chars=_env_int("RAG_MAX_QUESTION_CHARS", d.max_question_chars),
            max_file_mb=_env_float("RAG_MAX_FILE_MB", d.max_file_mb),
            ui_user=_env("RAG_UI_USER"),
            ui_password=_env("RAG_UI_PASSWORD"),
            upload_max_mb=_env_float("RAG_UPLOAD_MAX_MB", d.upload_max_mb),
            ui_max_sessions=_env_int("RAG_UI_MAX_SESSIONS", d.ui_max_sessions),
            data_dir=data_dir,
        )
        for key, value in overrides.items():
            if not hasattr(s, key):
                raise TypeError(f"unknown setting {key!r}")
            setattr(s, key, value)
        return s

    def store_location(self) -> str:
        """Human-readable store location (never includes credentials)."""
        if self.chroma_host:
            return f"chroma://{self.chroma_host}:{self.chroma_port}/{self.collection}"
        return f"{self.chroma_dir} (collection {self.collection})"

    def public_dict(self) -> dict[str, object]:
        """Settings safe to show: secrets replaced by whether they are set."""
        out: dict[str, object] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = ("set" if value else "unset") if f.name in SECRET_FIELDS else value
        return out
