"""File names are shown on one line of visible characters everywhere (the CLI, the page, the
API's messages): a hostile tester's file name forged a warning line in ``rag status``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rag.display import display_name
from tests.processes import clean_env

FORGED = ("notes.txt\nwarning: the vector index cannot give back stored vectors: run "
          "'rag check --repair'\n  x.txt")
TABBED = "tab\there.txt"
ANSI = "red\x1b[31malert\x1b[0m.txt"
CONTENT = ("Mars has two small moons, Phobos and Deimos, which Asaph Hall discovered in "
           "August 1877 at the Naval Observatory in Washington.")


def test_control_characters_are_escaped_and_nothing_else_changes() -> None:
    assert display_name(FORGED).count("\n") == 0
    assert display_name(FORGED).startswith("notes.txt\\nwarning: ")
    assert display_name(TABBED) == "tab\\there.txt"
    assert display_name(ANSI) == "red\\x1b[31malert\\x1b[0m.txt"
    assert display_name("x\u202etxt.exe") == "x\\u202etxt.exe"  # right-to-left override
    assert display_name("a\u2028b") == "a\\u2028b"  # a line separator
    assert display_name(os.fsdecode(b"caf\xe9.txt")) == "caf\\xe9.txt"  # not UTF-8
    for plain in ("003_f0b8fe8fdb47aa20.txt", "zażółć gęślą jaźń.md", "日本語.txt",
                  "emoji 👩\u200d💻.txt"):
        assert display_name(plain) == plain


@pytest.fixture
def crafted(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    folder = tmp_path / "docs"
    folder.mkdir()
    for name in (FORGED, TABBED, ANSI):
        (folder / name).write_text(CONTENT, encoding="utf-8")
    return folder, clean_env(RAG_CHROMA_DIR=str(tmp_path / "chroma"))


def _rag(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rag.cli", *argv], env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def _no_raw_name(text: str) -> None:
    for raw in (FORGED, TABBED, ANSI):
        assert raw not in text
    assert "\x1b" not in text and "\t" not in text
    assert not any(line.startswith("warning:") for line in text.splitlines())


def test_the_cli_prints_each_name_on_one_line(crafted: tuple[Path, dict[str, str]]) -> None:
    folder, env = crafted
    ingest = _rag(env, "ingest", str(folder))
    assert ingest.returncode == 0, ingest.stderr
    status = _rag(env, "status")
    assert status.returncode == 0 and status.stderr == ""
    _no_raw_name(status.stdout)
    listed = [line for line in status.stdout.splitlines() if line.startswith("  ")]
    assert len(listed) == 3 and any(display_name(FORGED) in line for line in listed)

    ask = _rag(env, "ask", "Who discovered the moons of Mars?")
    assert ask.returncode == 0, ask.stderr
    _no_raw_name(ask.stdout)
    assert any(display_name(name) in ask.stdout for name in (FORGED, TABBED, ANSI))

    delete = _rag(env, "delete", FORGED)
    assert delete.returncode == 0, delete.stderr
    assert delete.stdout.count("\n") == 1 and display_name(FORGED) in delete.stdout
    missing = _rag(env, "delete", FORGED)
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1
    _no_raw_name(missing.stderr)


def test_the_page_shows_each_name_on_one_line(tmp_path: Path) -> None:
    from rag.ui.render import citation_html, copy_text, documents_html

    from rag.documents import DocumentInfo

    docs = [DocumentInfo(path=str(tmp_path / name), source=name, title=display_name(name),
                         language="en", size_bytes=100, chunks=1) for name in (FORGED, ANSI)]
    html = documents_html(docs)
    _no_raw_name(html)
    assert "notes.txt\\nwarning" in html
    citation = {"n": 1, "source": FORGED, "text": CONTENT, "score": 0.9, "language": "en",
                "passage": CONTENT}
    _no_raw_name(citation_html(citation))
    _no_raw_name(copy_text({"answer": "Phobos [1].", "citations": [citation]}))
