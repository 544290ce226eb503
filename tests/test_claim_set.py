"""The labeled claim and gloss sets of issue 24: real quotes, a fixed split, rag eval --claims."""

from __future__ import annotations

import json
from pathlib import Path

from rag.eval.claims.split import CORPUS, HERE, items, split
from rag.eval.runner import main

from rag.answering.claims import find_quote
from rag.loading import load_document

ROOT = Path(__file__).resolve().parent.parent


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def test_every_quote_is_a_real_sentence_of_its_article_and_its_passage() -> None:
    rows = _read(HERE / "claims-dev.jsonl") + _read(HERE / "claims-test.jsonl")
    texts = {}
    for row in rows:
        if row["source"] not in texts:
            texts[row["source"]] = load_document(CORPUS / row["source"], 10_000_000).text
        assert find_quote(row["quote"], texts[row["source"]]), row["id"]
        assert find_quote(row["quote"], row["passage"]), row["id"]


def test_the_split_is_by_quote_and_unchanged() -> None:
    dev, test = split(items())
    assert dev == _read(HERE / "claims-dev.jsonl") and test == _read(HERE / "claims-test.jsonl")
    assert not {r["quote_id"] for r in dev} & {r["quote_id"] for r in test}
    for half in (dev, test):
        kinds = {r["kind"] for r in half}
        assert kinds == {"restatement", "other-sentence", "number", "name", "negation",
                         "added-fact"}
        assert {r["label"] for r in half if r["kind"] == "restatement"} == {"faithful"}


def test_every_stored_translation_is_labelled() -> None:
    folder = ROOT / "eval" / "translations"
    translations = json.loads((folder / "sample-corpus.en.json").read_text("utf-8"))
    labels = json.loads((folder / "sample-corpus.en.labels.json").read_text("utf-8"))["labels"]
    assert set(labels) == set(translations["translations"])
    assert {v["label"] for v in labels.values()} == {"faithful", "wrong"}
    assert all(v.get("why") for v in labels.values() if v["label"] == "wrong")


def test_rag_eval_claims_prints_and_writes_the_table_per_kind(tmp_path: Path,
                                                              capsys) -> None:
    rows = _read(HERE / "claims-test.jsonl")
    sample = [r for r in rows if r["quote_id"] == rows[0]["quote_id"]]
    path = tmp_path / "claims.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in sample), "utf-8")
    assert main(["--claims", str(path), "--out", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    assert "unfaithful removed (recall)" in printed and "restatement" in printed
    (result,) = json.loads((tmp_path / "out" / "claims.json").read_text("utf-8"))
    assert result["claims"] == len(sample) and result["model"] == "e5"
    assert set(result["by_kind"]) == {r["kind"] for r in sample}
    assert 0.0 <= result["recall"] <= 1.0 and 0.0 <= result["faithful_kept"] <= 1.0


def test_rag_eval_without_questions_or_claims_is_a_usage_error(tmp_path: Path) -> None:
    assert main(["--out", str(tmp_path / "out")]) == 2


def test_the_judge_is_asked_only_about_kept_claims_and_only_removes() -> None:
    """``--judge`` measures what the engine does: the judge reads only what the embedding
    check kept, and a claim it cannot judge (None) stays as it was."""
    from rag.eval.claim_set import judge_scores, judged

    rows = [{"claim": f"c{i}", "quote": "q"} for i in range(4)]
    asked = []

    def judge(claim: str, quote: str) -> float | None:
        asked.append(claim)
        return {"c0": 0.1, "c1": 0.9, "c3": None}[claim]

    removed = [False, False, True, False]
    scores = judge_scores(judge, rows, removed)
    assert asked == ["c0", "c1", "c3"] and scores == [0.1, 0.9, None, None]
    assert judged(removed, scores, 0.4) == [True, False, True, False]
