"""Uploaded files: vetted (type, size) and copied under ``<data_dir>/uploads`` by a safe name.

The browser's ``file_types`` filter and Gradio's ``max_file_size`` are conveniences a
client can bypass, so the same rules are enforced here. The stored name is derived
from the uploaded one but can never leave the uploads folder or hide itself.
"""

from __future__ import annotations

import re
import shutil
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

ALLOWED_SUFFIXES = (".txt", ".md", ".html", ".htm", ".pdf", ".docx")
MAX_NAME_CHARS = 120


def sanitize_filename(name: str) -> str:
    """A safe base name: no directories, no '..', no leading dot, word characters only.

    'C:\\x\\..\\Raport roczny <2024>.TXT' → 'Raport_roczny_2024.txt'.
    """
    base = re.split(r"[\\/]", unicodedata.normalize("NFKC", name or ""))[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C")  # control chars
    stem, dot, suffix = base.rpartition(".")
    if not dot:
        stem, suffix = base, ""
    stem = re.sub(r"[^\w\-]+", "_", stem).strip("_.-")
    suffix = re.sub(r"[^\w]+", "", suffix).lower()
    stem = stem[: MAX_NAME_CHARS - len(suffix) - 1] or "upload"
    return f"{stem}.{suffix}" if suffix else stem


@dataclass
class Vetted:
    """Uploads split into files ready to ingest and one-line reasons for the rest."""

    accepted: list[Path] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)


def vet_uploads(paths: list[str], uploads_dir: Path, max_mb: float) -> Vetted:
    """Copy allowed files of acceptable size into ``uploads_dir`` under sanitised names."""
    out = Vetted()
    uploads_dir.mkdir(parents=True, exist_ok=True)
    root = uploads_dir.resolve()
    for raw in paths:
        src = Path(raw)
        name = sanitize_filename(src.name)
        suffix = Path(name).suffix
        if suffix not in ALLOWED_SUFFIXES:
            out.rejected.append(
                f"skipped {name}: file type {suffix or '(none)'} is not allowed "
                f"(allowed: {', '.join(ALLOWED_SUFFIXES)})"
            )
            continue
        size = src.stat().st_size
        if size > max_mb * 1e6:
            out.rejected.append(
                f"skipped {name}: {size / 1e6:.1f} MB is over the {max_mb:g} MB upload limit "
                "(RAG_UPLOAD_MAX_MB)"
            )
            continue
        dest = (root / name).resolve()
        if dest.parent != root:  # cannot happen after sanitising; refuse rather than trust it
            out.rejected.append(f"skipped {name}: unsafe file name")
            continue
        shutil.copyfile(src, dest)
        out.accepted.append(dest)
    return out
