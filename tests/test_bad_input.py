"""A folder of good and bad files: every bad one gets one line, every good one goes in,
and nothing already in the store is lost."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from rag.config import Settings
from rag.engine import Engine

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
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("RAG_")},
           "RAG_CHROMA_DIR": sample_settings.chroma.dir}
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
