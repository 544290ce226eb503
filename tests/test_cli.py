"""The command-line contract, run as a real subprocess against a scratch store."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rag.config import Settings
from tests.processes import clean_env

RAG = [sys.executable, "-m", "rag.cli"]


def run(args: list[str], settings: Settings, **env: str) -> subprocess.CompletedProcess[str]:
    environ = clean_env()
    environ.update({"RAG_CHROMA_DIR": settings.chroma.dir, "RAG_DATA_DIR": settings.data_dir},
                   **env)
    return subprocess.run(RAG + args, capture_output=True, text=True, env=environ, timeout=120,
                          cwd=settings.data_dir if Path(settings.data_dir).exists() else None)


def test_ask_json_contract_cites_the_romanian_article_first(sample_settings: Settings) -> None:
    result = run(["ask", "What did Russia demand about 1997?", "--json"], sample_settings)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert set(out) >= {"question", "answer", "answerer", "declined", "citations", "retrieved",
                        "latency_ms"}
    assert out["answerer"] == "extractive" and out["declined"] is False
    first = out["citations"][0]
    assert set(first) == {"n", "source", "text", "score"}
    assert first["source"] == "003_f0b8fe8fdb47aa20.txt"
    assert "1997" in first["text"] and "securitate" in first["text"]
    assert f"[{first['n']}]" in out["answer"]
    assert out["retrieved"][0]["source"] == "003_f0b8fe8fdb47aa20.txt"
    scores = [r["score"] for r in out["retrieved"]]
    assert scores == sorted(scores, reverse=True)
    assert out["latency_ms"] > 0


def test_ask_human_output_lists_sources(sample_settings: Settings) -> None:
    result = run(["ask", "When was the NATO-Russia Council created?", "--top-k", "3"],
                 sample_settings)
    assert result.returncode == 0, result.stderr
    assert "Quoted from the documents" in result.stdout
    assert "Sources:" in result.stdout and "[answerer: extractive]" in result.stdout
    assert "2002" in result.stdout


def test_unanswerable_question_is_declined(sample_settings: Settings) -> None:
    result = run(["ask", "What is the boiling point of water at sea level in Fahrenheit?",
                  "--json"], sample_settings)
    out = json.loads(result.stdout)
    assert out["declined"] is True and out["citations"] == []
    assert "not found in the documents" in out["answer"].lower()


def test_top_k_env_and_flag(sample_settings: Settings) -> None:
    out = json.loads(run(["ask", "Who is Jens Stoltenberg?", "--json"], sample_settings,
                         RAG_TOP_K="2").stdout)
    assert len(out["retrieved"]) == 2
    out = json.loads(run(["ask", "Who is Jens Stoltenberg?", "--json", "--top-k", "4"],
                         sample_settings, RAG_TOP_K="2").stdout)
    assert len(out["retrieved"]) == 4


def test_status_json_contract(sample_settings: Settings) -> None:
    result = run(["status", "--json"], sample_settings)
    out = json.loads(result.stdout)
    assert {"files", "chunks", "embedder", "store"} <= set(out)
    assert len(out["files"]) == 5
    assert all({"source", "chunks", "language"} <= set(f) for f in out["files"])
    assert sample_settings.chroma.dir in out["store"]


@pytest.mark.parametrize("question", ["", "   ", "?!?...", "x" * 100_000])
def test_bad_questions_get_one_line_errors(sample_settings: Settings, question: str) -> None:
    result = run(["ask", question], sample_settings)
    assert result.returncode == 1
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr


def test_ingest_reports_bad_files_and_keeps_good_ones(sample_settings: Settings,
                                                     tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "good.md").write_text("# Notatka\n\nRada NATO-Rosja spotkała się w Brukseli, "
                                    "a rozmowy trwały cztery godziny.\n", encoding="utf-8")
    (folder / "empty.txt").write_text("")
    (folder / "binary.txt").write_bytes(b"\x00\x01\x02" * 100)
    result = run(["ingest", str(folder)], sample_settings)
    assert result.returncode == 3
    skipped = [line for line in result.stderr.splitlines() if line.startswith("skipped")]
    assert len(skipped) == 2
    assert "1 added" in result.stdout
    status = json.loads(run(["status", "--json"], sample_settings).stdout)
    assert len(status["files"]) == 6  # the five sample files were not touched


def test_empty_store_says_to_ingest_first(tmp_path: Path) -> None:
    settings = Settings(chroma_dir=str(tmp_path / "none"), data_dir=str(tmp_path))
    result = run(["ask", "What did Russia demand?"], settings)
    assert result.returncode == 1 and "rag ingest" in result.stderr


def test_secrets_never_printed(sample_settings: Settings) -> None:
    secret = "sk-test-very-secret-key-123"
    result = run(["ask", "What did Russia demand about 1997?", "--json"], sample_settings,
                 RAG_LLM_API_KEY=secret, RAG_ANSWERER="openai",
                 RAG_LLM_BASE_URL="http://127.0.0.1:9/v1", RAG_LLM_MODEL="m",
                 RAG_LLM_TIMEOUT="2")
    assert secret not in result.stdout + result.stderr
    out = json.loads(result.stdout)
    assert out["answerer"] == "extractive (fallback)"
    assert out["fallback_reason"] and "\n" not in out["fallback_reason"]
    assert out["citations"][0]["source"] == "003_f0b8fe8fdb47aa20.txt"


def test_chat_follow_up_is_condensed(sample_settings: Settings) -> None:
    environ = clean_env()
    environ["RAG_CHROMA_DIR"] = sample_settings.chroma.dir
    result = subprocess.run(
        [*RAG, "chat"], input="What did Russia demand about 1997?\nand what did NATO answer?\n\n",
        capture_output=True, text=True, env=environ, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("[answerer: ") == 2
    assert "(searched for: What did Russia demand about 1997? and what did NATO answer?)" in (
        result.stdout)


@pytest.mark.parametrize("question", [
    "Что Россия требовала насчёт 1997 года?",
    "<script>alert(1)</script> What did Russia demand about <b>1997</b>?",
    "ロシアは1997年について何を要求しましたか？",
])
def test_other_scripts_and_markup_get_sensible_answers(sample_settings: Settings,
                                                       question: str) -> None:
    result = run(["ask", question, "--json"], sample_settings)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["declined"] or out["citations"][0]["source"].endswith(".txt")
    assert out["retrieved"][0]["source"] == "003_f0b8fe8fdb47aa20.txt"
