"""``rag eval`` given bad input: usage errors (exit 2, one line) before any question runs,
never the threshold code (1) or a traceback. No engine is built for these: the checks run
first, so no model is loaded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.cli import main


def _questions(path: Path, questions: list[str]) -> Path:
    path.write_text("".join(json.dumps({"id": f"q{i}", "question": q, "sources": []}) + "\n"
                            for i, q in enumerate(questions)), encoding="utf-8")
    return path


@pytest.mark.parametrize("bad", ["?!? ...", "x" * 5000])
def test_one_invalid_question_is_a_usage_error_naming_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], bad: str) -> None:
    qfile = _questions(tmp_path / "q.jsonl", ["What did Russia demand about 1997?", bad])
    assert main(["eval", str(qfile), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "question 'q1'" in err[0]
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_out_that_is_a_file_is_a_usage_error(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    qfile = _questions(tmp_path / "q.jsonl", ["What did Russia demand about 1997?"])
    taken = tmp_path / "results.txt"
    taken.write_text("keep me", encoding="utf-8")
    assert main(["eval", str(qfile), "--out", str(taken)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: --out {taken} is a file, not a folder: give a folder for "
                   "per_question.jsonl and summary.json"]
    assert taken.read_text(encoding="utf-8") == "keep me"
