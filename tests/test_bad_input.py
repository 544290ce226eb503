"""A folder of good and bad files: every bad one gets one line, every good one goes in,
and nothing already in the store is lost."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from rag.config import DEFAULT_CORPUS, Settings
from rag.engine import Engine
from tests.processes import clean_env

GOOD_PL = ("Rada NATO-Rosja spotkała się w Brukseli. Rozmowy dotyczyły bezpieczeństwa w Europie "
           "i trwały cztery godziny.\n")


def _mixed_folder(root: Path) -> tuple[Path, set[str], set[str]]:
    folder = root / "mixed"
    folder.mkdir()
    good = {
        "Zażółć raport 2022.txt": GOOD_PL.encode("utf-8"),
        "windows1250.txt": ("Zażółć gęślą jaźń. " + GOOD_PL).encode("cp1250"),
        "latin2.txt": ("Łódź i Gdańsk. " + GOOD_PL).encode("iso-8859-2"),
        "bom.md": b"\xef\xbb\xbf# Notatka\n\n" + GOOD_PL.encode("utf-8"),
    }
    bad = {
        "empty.txt": b"",
        "binary.txt": bytes(range(256)) * 64,
        "corrupt.pdf": b"%PDF-1.4\n1 0 obj << /Type /Catalog >> garbage without xref",
        "huge.txt": None,  # 50 MB, written below
    }
    for name, data in good.items():
        (folder / name).write_bytes(data)
    for name, data in bad.items():
        if data is not None:
            (folder / name).write_bytes(data)
    with open(folder / "huge.txt", "wb") as handle:
        line = ("To jest bardzo długi plik tekstowy. " * 30 + "\n").encode("utf-8")
        for _ in range(50 * 10**6 // len(line) + 1):
            handle.write(line)
    (folder / "loop_a.txt").symlink_to(folder / "loop_b.txt")
    (folder / "loop_b.txt").symlink_to(folder / "loop_a.txt")
    (folder / "sub").mkdir()
    (folder / "sub" / "back").symlink_to(folder)  # a folder loop
    return folder, set(good), set(bad) | {"loop_a.txt", "loop_b.txt"}


def test_mixed_folder_from_the_command_line(sample_settings: Settings, tmp_path: Path) -> None:
    folder, good, bad = _mixed_folder(tmp_path)
    env = clean_env(RAG_CHROMA_DIR=sample_settings.chroma.dir)
    result = subprocess.run([sys.executable, "-m", "rag.cli", "ingest", str(folder)], env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 3, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("skipped")]
    named = {Path(line.split(": ")[0].removeprefix("skipped ")).name for line in lines}
    assert named == bad, result.stderr
    assert "Traceback" not in result.stderr
    reasons = " ".join(lines)
    for word in ("empty", "binary", "PDF", "MB", "resolve"):
        assert word in reasons
    status = json.loads(subprocess.run([sys.executable, "-m", "rag.cli", "status", "--json"],
                                       env=env, capture_output=True, text=True).stdout)
    sources = {f["source"] for f in status["files"]}
    assert good <= sources
    assert len(sources) == 5 + len(good)  # the sample corpus is still all there
    polish = {f["source"]: f["language"] for f in status["files"]}
    assert polish["windows1250.txt"] == polish["latin2.txt"] == "pl"


def test_file_vanishing_mid_run_is_reported(sample_settings: Settings, tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    for name in ("a.txt", "b.txt", "c.txt"):
        (folder / name).write_text(f"{name}: " + GOOD_PL, encoding="utf-8")

    def progress(done: int, total: int, name: str) -> None:
        if name == "a.txt":  # while a.txt is being ingested, b.txt disappears
            (folder / "b.txt").unlink()

    report = Engine(sample_settings).ingest([folder], progress=progress)
    assert [Path(p).name for p in report.added] == ["a.txt", "c.txt"]
    assert len(report.errors) == 1 and "vanished" in report.errors[0].reason


def _hostile_folder(root: Path) -> tuple[Path, set[str]]:
    """Two good articles beside a ~400 MB-uncompressed DOCX bomb, a malformed DOCX, a file
    whose name is not UTF-8 and a FIFO (the hostile tester's folder)."""
    import zipfile

    folder = root / "hostile"
    folder.mkdir()
    for name in ("000_52aeee3b79dff4de.txt", "003_f0b8fe8fdb47aa20.txt"):
        shutil.copy(DEFAULT_CORPUS / name, folder / name)
    paragraph = b"<w:p><w:r><w:t>Ala ma kota, a kot ma Ale.</w:t></w:r></w:p>" * 10_000
    with zipfile.ZipFile(folder / "bomb.docx", "w", zipfile.ZIP_DEFLATED) as archive, \
            archive.open("word/document.xml", "w") as part:
        part.write(b'<w:document xmlns:w="http://schemas.openxmlformats.org/'
                   b'wordprocessingml/2006/main"><w:body>')
        for _ in range(400 * 10**6 // len(paragraph)):
            part.write(paragraph)
        part.write(b"</w:body></w:document>")
    with zipfile.ZipFile(folder / "malformed.docx", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/document.xml", "<w:document><w:body><w:p><w:r><w:t>Premature")
    with open(os.path.join(os.fsencode(folder), b"raport_\xff\xfe.txt"), "wb") as handle:
        handle.write(GOOD_PL.encode("utf-8"))
    os.mkfifo(folder / "pipe.txt")
    return folder, {"bomb.docx", "malformed.docx", "raport_\\xff\\xfe.txt", "pipe.txt"}


def test_hostile_folder_one_line_per_bad_file_and_good_files_answerable(tmp_path: Path) -> None:
    folder, bad = _hostile_folder(tmp_path)
    assert (folder / "bomb.docx").stat().st_size < 10 * 10**6  # compresses to a few MB
    store = tmp_path / "chroma"
    env = clean_env(RAG_CHROMA_DIR=str(store))
    # Run through a parent that reports the peak RSS of everything below it (the ingest and
    # its file-reading worker): RUSAGE_CHILDREN's maxrss is the largest of them.
    measure = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
               "sys.exit(r.returncode)")
    result = subprocess.run([sys.executable, "-c", measure, sys.executable, "-m", "rag.cli",
                             "ingest", str(folder)], env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("skipped")]
    named = {line.split(": ")[0].removeprefix("skipped ").rsplit("/", 1)[1] for line in lines}
    assert named == bad and len(lines) == len(bad), result.stderr
    assert "unpacks to" in result.stderr and "FIFO" in result.stderr
    peak_kb = int(result.stdout.strip().splitlines()[-1])
    assert peak_kb < 1024 * 1024, f"peak RSS {peak_kb / 1024:.0f} MB"
    engine = Engine(Settings(chroma_dir=str(store)))
    for question, source in (("What did Russia demand about 1997?", "003_f0b8fe8fdb47aa20.txt"),
                             ("Which Lithuanian leader discussed the alliance's talks with "
                              "Russia over the phone with the NATO Secretary General?",
                              "000_52aeee3b79dff4de.txt")):
        answer = engine.ask(question)
        assert not answer.declined and source in {c.source for c in answer.citations}


def test_hidden_entries_are_reported_not_silently_skipped(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    (folder / ".archive").mkdir(parents=True)
    (folder / ".archive" / "old.txt").write_text(GOOD_PL, encoding="utf-8")
    (folder / ".draft.md").write_text(GOOD_PL, encoding="utf-8")
    (folder / "visible.txt").write_text(GOOD_PL, encoding="utf-8")
    report = Engine(Settings(chroma_dir=str(tmp_path / "chroma"))).ingest([folder])
    assert [Path(p).name for p in report.added] == ["visible.txt"]
    assert sorted(e.path.name for e in report.errors) == [".archive", ".draft.md"]
    assert "2 skipped" in report.summary()


def test_unreadable_folder_is_reported(tmp_path: Path, monkeypatch) -> None:
    """A folder that cannot be listed is one line, the rest is walked. Root lists every
    folder whatever its mode, so as root (the CI container) listing that folder is made to
    fail as it would for a user: a test double, because nothing real can deny root."""
    from rag.loading import LoadError, iter_files

    folder = tmp_path / "docs"
    locked = folder / "locked"
    locked.mkdir(parents=True)
    (locked / "secret.txt").write_text(GOOD_PL, encoding="utf-8")
    (folder / "open.txt").write_text(GOOD_PL, encoding="utf-8")
    locked.chmod(0)
    if os.geteuid() == 0:
        real_scandir = os.scandir

        def scandir(path=".", *args):
            if Path(os.fsdecode(path)) == locked:
                raise PermissionError(13, "Permission denied", os.fsdecode(path))
            return real_scandir(path, *args)

        monkeypatch.setattr(os, "scandir", scandir)
    try:
        items = list(iter_files([folder]))
    finally:
        locked.chmod(0o755)
    errors = [i for i in items if isinstance(i, LoadError)]
    assert [i.name for i in items if isinstance(i, Path)] == ["open.txt"]
    assert len(errors) == 1 and errors[0].path == locked
    assert errors[0].reason == "cannot list folder (Permission denied)"
