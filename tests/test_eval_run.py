"""The evaluation harness end to end: a scripted engine for exit codes, then the real engine.

The scripted engine returns real ``Answer`` objects, so the runner's file output,
thresholds and exit codes are checked without models; the last test runs a tiny
question file against the real engine on a scratch store.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from rag.eval.metrics import METRICS
from rag.eval.runner import main, run_eval

from rag.config import DEFAULT_CORPUS, Settings
from rag.groundedness import Grounder
from rag.types import Answer, Citation, Passage

A, B = "a.txt", "b.txt"


class ScriptedEngine:
    """Answers every question by citing ``A``; declines questions that contain 'weather'."""

    settings = Settings(top_k=3)

    def __init__(self) -> None:
        self.calls = 0

    def answerer_names(self) -> list[str]:
        return ["extractive"]

    def ask(self, question: str, top_k: int | None = None, answerer: str | None = None) -> Answer:
        self.calls += 1
        passages = [
            Passage(1, "a:0", A, A, "NATO was founded in 1949.", 0.9),
            Passage(2, "a:1", A, A, "NATO was founded in 1949.", 0.8),
            Passage(3, "b:0", B, B, "Bread is baked in ovens.", 0.7),
        ]
        if "weather" in question:
            return Answer(question, "Not found", "extractive", True, [], passages, 1.0)
        cite = Citation(1, A, passages[0].text, 0.9, passages[0].text)
        return Answer(question, "Quoted from the documents, in their original language:\n"
                      "“NATO was founded in 1949.” [1]", "extractive", False, [cite], passages, 1.0)


class WordModel:
    """Tiny deterministic embedder: the verbatim quote scores 1.0, so no e5 load is needed."""

    def query(self, text: str) -> Any:
        return self.passage([text])[0]

    def passage(self, texts: list[str]) -> Any:
        import numpy as np

        out = np.zeros((len(texts), 32), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in t.lower().split():
                out[i, hash(w) % 32] += 1
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def _questions(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def qfile(tmp_path: Path) -> Path:
    return _questions(tmp_path / "q.jsonl", [
        {"id": "1", "question": "When was NATO founded?", "sources": [A], "expect_any": ["1949"]},
        {"id": "2", "question": "How is bread baked?", "sources": [B], "expect_any": ["oven"]},
        {"id": "3", "question": "What is the weather?", "sources": []},
        {"id": "4", "question": "Who won the cup?", "sources": []},
    ])


def test_run_writes_files_and_scores(qfile: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    summary = run_eval(ScriptedEngine(), qfile, out, grounder=Grounder(model=WordModel()),
                       use_judge=False, warmup=False, minimums={"hit@k": 1.0, "hit@1": 0.9})
    rows = [json.loads(line) for line in (out / "per_question.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["1", "2", "3", "4"]
    assert rows[0]["retrieved_sources"] == [A, B]  # de-duplicated, ranked
    assert rows[0]["cited_sources"] == [A]
    assert rows[1]["rr"] == 0.5 and rows[1]["citation_precision"] == 0.0
    assert rows[0]["sentences"][0]["supported"] is True  # the preamble line is skipped
    saved = json.loads((out / "summary.json").read_text())
    assert saved == json.loads(json.dumps(summary))
    assert set(METRICS) <= set(saved)
    assert saved["hit@1"] == 0.5 and saved["hit@k"] == 1.0 and saved["mrr"] == 0.75
    assert saved["citation_recall"] == 0.5 and saved["expected_content"] == 0.5
    assert saved["refusal_accuracy"] == 0.5 and saved["false_refusal_rate"] == 0.0
    assert saved["groundedness"] == 1.0 and saved["judge_faithfulness"] is None
    assert saved["failures"] == ["hit@1: 0.5 < 0.9"]


def test_main_exit_codes(qfile: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("rag.eval.runner.Grounder",
                        lambda threshold: Grounder(threshold, WordModel()))
    engine = ScriptedEngine()
    out = str(tmp_path / "o")
    assert main([str(qfile), "--out", out, "--min", "hit@k=1"], engine=engine) == 0
    assert main([str(qfile), "--out", out, "--min", "citation_recall=0.9",
                 "--max", "false_refusal_rate=0.1"], engine=engine) == 1
    assert "below threshold: citation_recall: 0.5 < 0.9" in capsys.readouterr().out
    calls = engine.calls
    assert main([str(qfile), "--out", out, "--min", "hit@3=0.5"], engine=engine) == 2
    assert "unknown metric 'hit@3'" in capsys.readouterr().err
    assert engine.calls == calls  # a typo fails before any question runs
    assert main([str(tmp_path / "missing.jsonl"), "--out", out], engine=engine) == 2
    assert main([str(qfile), "--out", out, "--answerer", "nope"], engine=engine) == 2
    assert main([str(qfile)], engine=engine) == 2  # --out is required


REAL_QUESTIONS = [
    {"id": "e1", "lang": "en", "question": "According to Kyiv, how many Russian soldiers were "
     "within 200 km of the Ukrainian border?", "sources": ["001_219cb2c3f81c9bdc.txt"],
     "expect_any": ["122"]},
    {"id": "e2", "lang": "ro", "question": "În ce an au intrat Albania și Croația în NATO?",
     "sources": ["003_f0b8fe8fdb47aa20.txt"], "expect_any": ["2009"]},
    {"id": "e3", "lang": "de", "question": "Wer sollte Moskau bei den Gesprächen in Brüssel "
     "vertreten?", "sources": ["004_4d16be0be1a37a77.txt"], "expect_any": ["Riabkow"]},
    {"id": "n1", "lang": "en", "question": "How do I bake sourdough bread at home?",
     "sources": []},
]
RECORD_KEYS = {"id", "question", "answer", "declined", "cited_sources", "retrieved_sources",
               "latency_ms", "hit@1", "hit@k", "rr", "citation_precision", "citation_recall",
               "groundedness", "expected_content", "refused", "false_refusal"}


def test_real_engine_end_to_end(
    sample_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The CLI entry point on the sample store: Settings.from_env, real engine, real e5."""
    monkeypatch.setenv("RAG_CHROMA_DIR", sample_settings.chroma.dir)
    qfile = _questions(tmp_path / "tiny.jsonl", REAL_QUESTIONS)
    out = tmp_path / "out"
    code = main([str(qfile), "--out", str(out), "--min", "hit@k=0.6"])
    printed = capsys.readouterr()
    assert "ingesting the sample corpus" not in printed.err  # the store was not empty
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    rows = [json.loads(line)
            for line in (out / "per_question.jsonl").read_text(encoding="utf-8").splitlines()]
    assert code == 0, summary["failures"]
    assert set(METRICS) <= set(summary)
    counts = summary["counts"]
    assert (counts["questions"], counts["answerable"], counts["unanswerable"]) == (4, 3, 1)
    for name in ("hit@1", "mrr", "citation_recall", "groundedness", "refusal_accuracy"):
        assert name in printed.out  # the table
    assert [r["id"] for r in rows] == ["e1", "e2", "e3", "n1"]
    for row in rows:
        assert set(row) >= RECORD_KEYS
        assert set(row["cited_sources"]) <= set(row["retrieved_sources"])  # engine contract
        assert row["retrieved_sources"] == list(dict.fromkeys(row["retrieved_sources"]))
        assert row["latency_ms"] > 0
        if not row["declined"] and row["answerer"] == "extractive":
            # the extractive answerer quotes verbatim: every quote must pass the check
            assert row["groundedness"] == 1.0, row["sentences"]
    assert rows[3]["hit@1"] is None and rows[3]["refused"] in (0.0, 1.0)
    assert summary["hit@1"] == pytest.approx(sum(r["hit@1"] for r in rows[:3]) / 3, abs=1e-4)
    assert summary["refusal_accuracy"] == rows[3]["refused"]

    assert main([str(qfile), "--out", str(out), "--min", "hit@k=1.01"]) == 1
    assert "below threshold: hit@k:" in capsys.readouterr().out
    assert main([str(qfile), "--out", str(out), "--min", "recall@5=0.5"]) == 2
    assert "unknown metric 'recall@5'" in capsys.readouterr().err


def test_empty_store_ingests_the_sample_corpus(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    """A fresh install measures the sample corpus instead of failing on an empty store.

    Ingestion is spied on and limited to one small article to keep the test quick.
    """
    from rag.engine import Engine

    monkeypatch.setenv("RAG_CHROMA_DIR", str(tmp_path / "empty"))
    asked: list[list[str]] = []
    real_ingest = Engine.ingest

    def spy(self: Engine, paths: Any = None, **kwargs: Any) -> Any:
        asked.append([str(p) for p in paths or []])
        return real_ingest(self, [DEFAULT_CORPUS / "004_4d16be0be1a37a77.txt"], **kwargs)

    monkeypatch.setattr(Engine, "ingest", spy)
    qfile = _questions(tmp_path / "one.jsonl", REAL_QUESTIONS[2:3])
    assert main([str(qfile), "--out", str(tmp_path / "out"), "--min", "hit@1=1"]) == 0
    assert asked == [[str(DEFAULT_CORPUS)]]
    assert "ingesting the sample corpus" in capsys.readouterr().err
