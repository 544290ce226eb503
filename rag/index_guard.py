"""Open the vector index in a child process first, so damage is one line, not a crash.

Chroma keeps each collection's HNSW index in files of a segment folder beside
``chroma.sqlite3``. Measured with chromadb 1.5.9 on a 1,500-record store: 4 or
4,096 flipped bytes in ``data_level0.bin`` make every operation on the collection
(``count()``, ``get()`` of documents, queries) die with SIGSEGV inside the Rust
bindings: no exception to catch, no output. So whatever would load an index we
have not seen sound first asks a child process (``python -m rag.index_guard``) to
open the store and probe it; a child killed by a signal means a damaged index.

The child costs ~1.5 s (importing chromadb), so a sound verdict is remembered in
``rag-index-verified.json`` in the store folder, keyed by the index files' names,
sizes and modification times: the probe runs again only when those files changed
behind our back. Our own writes (ingest, delete, repair) re-record the stamp
themselves. A Chroma server store needs none of this: a crash there is the
server's, and reaches us as a one-line connection error.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rag.config import Settings

STAMP_FILE = "rag-index-verified.json"
QUARANTINE_DIR = "rag-damaged-index"  # one dash: never mistaken for a segment folder
PROBE_TIMEOUT_S = 180.0
REPAIR_HINT = "run 'rag check --repair'"


class IndexCrashed(RuntimeError):
    """The child process died reading the index; the message is one line."""


def _segment_dirs(chroma_dir: Path) -> list[Path]:
    """Chroma's segment folders (named by UUID) in a local store folder."""
    if not chroma_dir.is_dir():
        return []
    return sorted(p for p in chroma_dir.iterdir() if p.is_dir() and p.name.count("-") == 4)


def fingerprint(chroma_dir: Path) -> list[list[Any]]:
    """Names, sizes and modification times of every index file (cheap: a few stats)."""
    out: list[list[Any]] = []
    for folder in _segment_dirs(chroma_dir):
        files = sorted(p for p in folder.iterdir() if p.is_file())
        out += [[f"{folder.name}/{p.name}", p.stat().st_size, p.stat().st_mtime_ns]
                for p in files]
        if not files:
            out.append([f"{folder.name}/", 0, 0])
    return out


def _stamp_path(settings: Settings) -> Path:
    return Path(settings.chroma.dir) / STAMP_FILE


def record_sound(settings: Settings) -> None:
    """Remember the current index files as sound (after a probe, or our own write)."""
    if settings.chroma.host:
        return
    folder = Path(settings.chroma.dir)
    if not folder.is_dir():
        return
    tmp = folder / f".{STAMP_FILE}.{os.getpid()}.tmp"
    with contextlib.suppress(OSError):  # a read-only store only costs a probe next time
        tmp.write_text(json.dumps({"fingerprint": fingerprint(folder)}), encoding="utf-8")
        os.replace(tmp, folder / STAMP_FILE)


def known_sound(settings: Settings) -> bool:
    """True when the index files are exactly those last seen sound (or there are none)."""
    folder = Path(settings.chroma.dir)
    current = fingerprint(folder)
    if not current:
        return True  # nothing on disk that could crash a reader
    try:
        saved = json.loads(_stamp_path(settings).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(saved, dict) and saved.get("fingerprint") == current


def run_isolated(settings: Settings, task: str, timeout: float | None = PROBE_TIMEOUT_S,
                 **options: Any) -> dict[str, Any]:
    """Run ``task`` of this module in a child process on the store the settings name.

    Returns the child's JSON result; IndexCrashed when the child died by a signal or
    gave no result (its stderr's last line says why).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(RAG_CHROMA_DIR=settings.chroma.dir, RAG_COLLECTION=settings.collection,
               RAG_DATA_DIR=settings.data_dir)
    argv = [sys.executable, "-m", "rag.index_guard", task, json.dumps(options)]
    try:
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout,
                              check=False)
    except subprocess.TimeoutExpired as exc:
        raise IndexCrashed(f"the vector index did not answer within {timeout:.0f} s "
                           f"(a damaged index can hang its reader): {REPAIR_HINT}") from exc
    if done.returncode < 0:
        name = signal.Signals(-done.returncode).name
        raise IndexCrashed(f"the vector index is damaged (reading it crashed chromadb with "
                           f"{name}): {REPAIR_HINT}")
    lines = done.stdout.strip().splitlines()
    try:
        return dict(json.loads(lines[-1]))
    except (IndexError, ValueError, TypeError) as exc:
        from rag.errors import one_line

        why = one_line(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "",
                       ) or f"exit status {done.returncode}"
        raise IndexCrashed(f"the vector index could not be read ({why}): {REPAIR_HINT}"
                           ) from exc


def index_problems(settings: Settings, samples: int = 3) -> list[str]:
    """Why the store's vector index is unsafe or unsound to use ([] when it is sound).

    Probes in a child only when the index files changed since they were last seen sound.
    """
    if settings.chroma.host or known_sound(settings):
        return []
    try:
        result = run_isolated(settings, "probe", samples=samples)
    except IndexCrashed as exc:
        return [str(exc)]
    problems = [str(p) for p in result.get("problems", [])]
    if not problems:
        record_sound(settings)
    return problems


def vector_segment(settings: Settings) -> Path | None:
    """The segment folder holding the sentence collection's HNSW files (None if none).

    Read from Chroma's own SQLite tables, read-only: the collection itself cannot be
    opened when its index crashes the reader.
    """
    db_path = Path(settings.chroma.dir) / "chroma.sqlite3"
    if not db_path.is_file():
        return None
    try:
        db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        try:
            row = db.execute(
                "SELECT s.id FROM segments s JOIN collections c ON s.collection = c.id "
                "WHERE c.name = ? AND s.scope = 'VECTOR'", (settings.collection,)).fetchone()
        finally:
            db.close()
    except sqlite3.Error:
        return None
    folder = Path(settings.chroma.dir) / str(row[0]) if row else None
    return folder if folder is not None and folder.is_dir() else None


def quarantine(settings: Settings) -> Path | None:
    """Move the sentence collection's index files aside, unopened; returns where to.

    Chroma then reads the records' text and metadata from SQLite alone (measured: a
    missing segment folder leaves ``count()`` and ``get()`` working), so the repair
    can rebuild the index from them.
    """
    segment = vector_segment(settings)
    if segment is None:
        return None
    target = Path(settings.chroma.dir) / QUARANTINE_DIR / f"{segment.name}-{int(time.time())}"
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(segment, target)
    return target


def release_quarantine(settings: Settings) -> None:
    """Delete index files moved aside, once a rebuilt index has been checked sound."""
    shutil.rmtree(Path(settings.chroma.dir) / QUARANTINE_DIR, ignore_errors=True)


# -- the child's side --------------------------------------------------------------------
def _probe(settings: Settings, samples: int = 3) -> dict[str, Any]:
    """What makes the index unsafe to use: every vector read back and checked, and a
    sample looked up by itself (``check_store``'s index part; file problems are not
    the index's)."""
    from rag.check import check_store
    from rag.store import Store

    return {"problems": check_store(Store(settings), sample=samples).index_problems}


def _check(settings: Settings, sample: int = 64, seed: int = 0) -> dict[str, Any]:
    from rag.check import check_store
    from rag.store import Store

    return check_store(Store(settings), sample=sample, seed=seed).to_dict()


TASKS = {"probe": _probe, "check": _check}


def main(argv: Sequence[str] | None = None) -> int:
    """The child: run one task on the store named by RAG_CHROMA_DIR, print JSON."""
    from rag.store import StoreError

    parser = argparse.ArgumentParser(prog="python -m rag.index_guard")
    parser.add_argument("task", choices=sorted(TASKS))
    parser.add_argument("options", nargs="?", default="{}")
    args = parser.parse_args(argv)
    try:
        result = TASKS[args.task](Settings(), **json.loads(args.options))
    except StoreError as exc:  # Chroma's own error reading the index, already one line
        line = str(exc) if "'rag " in str(exc) else f"{exc}: {REPAIR_HINT}"
        result = {"problems": [line], "index_problems": [line]}
    print(json.dumps(result, ensure_ascii=False), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
