"""What a person sees of each stored document: its title, language and size.

File names are often hashes (``003_f0b8fe8fdb47aa20.txt``), so front ends show a
title instead: the document's first heading, else its first line. Everything here
is read through the engine's public ``status()`` and the files themselves, never
the store's internals; titles are cached per file version, so a page refresh does
not re-read a large PDF.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.display import display_name

TITLE_CHARS = 72
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$", re.M)
_cache: dict[tuple[str, int, int], str] = {}
_cache_lock = threading.Lock()


@dataclass(frozen=True)
class DocumentInfo:
    """One stored document as shown to people (``path`` is for routing, never for display)."""

    source: str
    path: str
    title: str
    language: str
    chunks: int
    size_bytes: int


def shorten_title(line: str, limit: int = TITLE_CHARS) -> str:
    """One line, cut at a word boundary with an ellipsis when longer than ``limit``."""
    line = " ".join(line.split()).strip(" \"'„”“«»")
    if len(line) <= limit:
        return line
    cut = line[: limit - 1].rsplit(" ", 1)[0].rstrip(",;:–-")
    return cut + "…"


def title_from_text(text: str, fallback: str) -> str:
    """The first Markdown heading if any, else the first non-empty line, else ``fallback``."""
    heading = _HEADING.search(text[:20_000])
    if heading:
        return shorten_title(heading.group(1))
    for line in text.splitlines():
        if line.strip():
            return shorten_title(line)
    return fallback


def _read_title(path: Path) -> str:
    """Plain-text formats: only the head of the file; others through the loader."""
    if path.suffix.lower() in (".txt", ".md", ".markdown"):
        with path.open("rb") as f:
            head = f.read(32_768)
        return title_from_text(head.decode("utf-8", errors="replace"), path.name)
    from rag.loading import load_document

    return title_from_text(load_document(path, max_bytes=1 << 62).text, path.name)


def document_title(path: str | Path, fallback: str = "") -> str:
    """The title of the file at ``path`` (cached per size and mtime); ``fallback`` on errors.

    Shown to people, so on one line of visible characters (``display_name``).
    """
    p = Path(path)
    fallback = display_name(fallback or p.name)
    try:
        st = p.stat()
    except OSError:
        return fallback
    key = (str(p), st.st_size, st.st_mtime_ns)
    with _cache_lock:
        if key in _cache:
            return _cache[key]
    try:
        title = display_name(_read_title(p)) or fallback
    except Exception:  # noqa: BLE001 - a title is a nicety: any failure shows the file name
        title = fallback
    with _cache_lock:
        _cache[key] = title
    return title


def _size(path: str) -> int:
    try:
        return Path(path).stat().st_size
    except OSError:
        return 0


def describe(files: Iterable[Mapping[str, Any]]) -> list[DocumentInfo]:
    """``DocumentInfo`` for each entry of ``Engine.status()["files"]`` that has a path."""
    out = []
    for f in files:
        path = str(f.get("path") or "")
        if not path:
            continue
        source = str(f.get("source") or Path(path).name)
        out.append(DocumentInfo(
            source=source, path=path, title=document_title(path, source),
            language=str(f.get("language") or "und"), chunks=int(f.get("chunks") or 0),
            size_bytes=_size(path),
        ))
    return out
