"""Uploaded files: vetted (type, size, quotas) and copied under ``<data_dir>/uploads``.

Gradio's ``max_file_size`` is a convenience a client can bypass, so the same rules
are enforced here. The stored name is derived from the uploaded one but can never
leave the uploads folder or hide itself. Gradio's own temporary copy of each upload
is deleted once vetted (``discard_temp``): it would otherwise stay on disk, and stay
downloadable, after the document is removed.
"""

from __future__ import annotations

import re
import shutil
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from rag.loading import SUPPORTED_SUFFIXES

ALLOWED_SUFFIXES = SUPPORTED_SUFFIXES  # uploads accept exactly what ingestion reads
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


@dataclass(frozen=True)
class Quota:
    """Upload limits: per file, per browser session, and for the whole uploads folder.

    Defaults scale with the per-file limit: a session may add 5 files' worth, the
    folder holds 25. Bytes are counted when a file is accepted, before ingestion.
    """

    file_mb: float = 20.0
    session_mb: float = 100.0
    total_mb: float = 500.0
    files_per_upload: int = 20

    @classmethod
    def for_file_limit(cls, file_mb: float) -> Quota:
        return cls(file_mb=file_mb, session_mb=5 * file_mb, total_mb=25 * file_mb)


@dataclass
class Vetted:
    """Uploads split into files ready to ingest and one-line reasons for the rest."""

    accepted: list[Path] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    accepted_bytes: int = 0


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file()) if folder.is_dir() \
        else 0


def _refusal(name: str, size: int, quota: Quota, session_used: int, folder_used: int) -> str:
    """Why a file cannot be accepted, or '' when it can."""
    suffix = Path(name).suffix
    if suffix not in ALLOWED_SUFFIXES:
        return (f"{name} was not added: {suffix or 'files without a type'} files are not "
                f"supported (use {', '.join(ALLOWED_SUFFIXES)})")
    if size > quota.file_mb * 1e6:
        return (f"{name} was not added: it is {size / 1e6:.1f} MB, files can be up to "
                f"{quota.file_mb:g} MB")
    if session_used + size > quota.session_mb * 1e6:
        return (f"{name} was not added: this session has reached its upload allowance "
                f"of {quota.session_mb:g} MB")
    if folder_used + size > quota.total_mb * 1e6:
        return f"{name} was not added: the uploads space ({quota.total_mb:g} MB) is full"
    return ""


def vet_uploads(paths: list[str], uploads_dir: Path, quota: Quota | float,
                session_used: int = 0) -> Vetted:
    """Copy allowed files within the quotas into ``uploads_dir`` under sanitised names."""
    quota = quota if isinstance(quota, Quota) else Quota.for_file_limit(float(quota))
    out = Vetted()
    uploads_dir.mkdir(parents=True, exist_ok=True)
    root = uploads_dir.resolve()
    folder_used = folder_bytes(root)
    for i, raw in enumerate(paths):
        src = Path(raw)
        name = sanitize_filename(src.name)
        size = src.stat().st_size
        reason = (f"{name} was not added: at most {quota.files_per_upload} files at a time"
                  if i >= quota.files_per_upload else
                  _refusal(name, size, quota, session_used + out.accepted_bytes, folder_used))
        dest = (root / name).resolve()
        if not reason and dest.parent != root:  # cannot happen after sanitising
            reason = f"{name} was not added: unsafe file name"
        if reason:
            out.rejected.append(reason)
            continue
        previous = dest.stat().st_size if dest.is_file() else 0
        shutil.copyfile(src, dest)
        folder_used += size - previous
        out.accepted.append(dest)
        out.accepted_bytes += size
    return out


def discard_temp(paths: Iterable[str], temp_root: str | Path) -> None:
    """Delete Gradio's temporary copies of uploads (and their emptied folders).

    Only paths inside ``temp_root`` are touched, so a path that is not Gradio's
    (a test calling the handler directly, say) is never deleted.
    """
    root = Path(temp_root).resolve()
    for raw in paths:
        path = Path(raw).resolve()
        if root not in path.parents:
            continue
        path.unlink(missing_ok=True)
        try:
            if path.parent != root:
                path.parent.rmdir()  # Gradio keeps each upload in its own hash folder
        except OSError:
            pass  # not empty: another upload of the same content
