"""Where built model folders live, and how one is built without ever leaving half a folder.

The cache is ``RAG_EMBED_CACHE`` when set, else the environment's
``share/rag-models/<kind>`` (beside the packaged models, so every data folder of one
install shares one build), else ``<data>/models/<kind>`` when the install is read-only.
A folder is written in a temporary sibling and renamed into place, so a crash or a
concurrent build never leaves a half-written model behind: a folder with its marker
file is complete.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path


def cache_root(kind: str, data_dir: Path | str, configured: str = "") -> Path:
    """The folder built models of ``kind`` go to: configured, the install's, else the data's."""
    if configured:
        return Path(configured).expanduser()
    from rag.models import models_dir

    shared = models_dir() / kind
    try:
        shared.mkdir(parents=True, exist_ok=True)
        if os.access(shared, os.W_OK):
            return shared
    except OSError:
        pass  # a read-only install (system site-packages): build per data folder
    return Path(data_dir) / "models" / kind


def build_once(target: Path, marker: str, write: Callable[[Path], None], what: str,
               log: Callable[[str], None] | None = None) -> Path:
    """``target``, calling ``write(tmp_folder)`` to build it the first time (one progress
    line before, one after). A folder holding ``marker`` counts as complete."""
    if (target / marker).is_file():
        return target
    say = log or (lambda m: print(m, file=sys.stderr, flush=True))
    say(f"rag: building {what}, once, into {target} ...")
    started = time.perf_counter()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".build-{target.name}-", dir=target.parent))
    try:
        write(tmp)
        # mkdtemp (and onnx's external data) make them private; the cache is as readable
        # as the data folder
        tmp.chmod(0o755)
        for path in tmp.rglob("*"):
            path.chmod(0o755 if path.is_dir() else 0o644)
        try:
            os.rename(tmp, target)
        except OSError:  # another process finished first (or an old, unmarked folder)
            if (target / marker).is_file():
                pass
            else:
                shutil.rmtree(target, ignore_errors=True)
                os.rename(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    say(f"rag: {what} ready in {time.perf_counter() - started:.1f} s")
    return target


def cached_sha256(source: Path, cache: Path) -> str:
    """sha256 of ``source``, remembered in ``cache`` by path, size and mtime (a large file
    costs seconds to hash, so a start must not hash it every time)."""
    stat = source.stat()
    key = f"{source.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    index_path = cache / "sha256-index.json"
    try:
        index = json.loads(index_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        index = {}
    if key in index:
        return str(index[key])
    from rag.models import sha256_of

    digest = sha256_of(source)
    index[key] = digest
    try:
        cache.mkdir(parents=True, exist_ok=True)
        tmp = index_path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(index), encoding="utf-8")
        os.replace(tmp, index_path)
    except OSError:
        pass  # a read-only cache only costs the hash next time
    return digest
