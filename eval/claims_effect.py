"""Before and after the claim check, on the same LLM replies (issue 24).

``python -m rag.eval.claims_effect eval/questions/single-test.jsonl --out out/claims-effect``
asks the local model every question once (its replies are recorded in
``--drafts``; a later run replays them, so the model is never asked twice), then
scores two engines on those same replies with ``rag eval``'s metrics:

- **before**: every claim whose quote is in its passage is shown (the checking of
  main before issue 24: ``KeepEveryClaim``);
- **after**: the claim check removes the claims it does not pass.

It writes ``before/`` and ``after/`` (``per_question.jsonl``, ``summary.json``), a
table of the figures the issue asks for (answer language, expected content,
groundedness, declined), and ``reading.md``: every answer the model wrote, before
and after, each shown claim under its quote and each removed one with why, to be
read by a person.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rag.eval.replay import RecordedAnswerer
from rag.eval.runner import run_eval

from rag.answering.claim_check import Verdict

FIGURES = ("answer_language", "expected_content", "groundedness", "false_refusal_rate",
           "refusal_accuracy", "top_cited", "citation_recall")


class KeepEveryClaim:
    """The claim check switched off: every claim with a found quote is kept (before)."""

    def check(self, claim: str, quote: str, passages: Sequence[str]) -> Verdict:
        return Verdict(True, None, quote)


def declined_share(out: Path) -> float:
    rows = [json.loads(line) for line in (out / "per_question.jsonl").open(encoding="utf-8")]
    return sum(bool(r["declined"]) for r in rows) / max(len(rows), 1)


def run(questions: Sequence[str], out: Path, drafts: Path, settings: Any = None) -> dict:
    from rag.answering.local import make_local_answerer
    from rag.config import Settings
    from rag.engine import Engine

    settings = settings or Settings()
    local = make_local_answerer(settings.with_answerer("local"))
    recorded = RecordedAnswerer(local, drafts)
    summaries = {}
    engines = {"before": Engine(settings, answerers={"local": recorded},
                                claim_checker=KeepEveryClaim())}
    engines["after"] = Engine(settings, embedder=engines["before"].embedder,
                              answerers={"local": recorded})
    for name, engine in engines.items():
        quiet = io.StringIO()
        summaries[name] = run_eval(engine, list(questions), out / name, answerer="local",
                                   use_judge=False, stream=quiet)
        summaries[name]["declined"] = round(declined_share(out / name), 4)
    local.close()
    print(f"replies asked of the model in this run: {recorded.asked}; replayed: "
          f"{len(recorded.replies) - recorded.asked}")
    print(f"{'figure':<22} {'before':>8} {'after':>8}")
    for key in (*FIGURES, "declined"):
        before, after = summaries["before"].get(key), summaries["after"].get(key)
        print(f"{key:<22} {_cell(before):>8} {_cell(after):>8}")
    for name in engines:
        print(f"answers written by ({name}): {summaries[name]['answerers_used']}")
    write_reading(out)
    return summaries


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def write_reading(out: Path) -> None:
    """reading.md: every question the model answered, before and after, claims and quotes."""
    before = {r["id"]: r for r in _rows(out / "before")}
    after = {r["id"]: r for r in _rows(out / "after")}
    lines = ["# The local model's answers before and after the claim check", ""]
    for qid, b in before.items():
        a = after[qid]
        if not b["answerer"].startswith("local"):
            continue
        lines += [f"## {qid} ({b['lang']}, {b.get('kind') or ''}): {b['question']}", "",
                  f"- before ({b['answerer']}): {b['answer']}",
                  f"- after ({a['answerer']}): {a['answer']}"]
        if a.get("fallback_reason"):
            lines.append(f"- after, fell back because: {a['fallback_reason']}")
        for s in a.get("claims") or []:
            lines.append(f"  - shown: {s['text']} [{', '.join(map(str, s['cited']))}] "
                         f"(similarity {s['support']}) — quote: “{s['quote']}”")
        for r in a.get("removed_claims") or []:
            lines.append(f"  - removed: {r['text']} — quote: “{r['quote']}” — "
                         f"{'; '.join(r['reasons'])}")
        lines.append("")
    (out / "reading.md").write_text("\n".join(lines), encoding="utf-8")


def _rows(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (folder / "per_question.jsonl").open(encoding="utf-8")]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rag.eval.claims_effect",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("questions", nargs="+")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--drafts", type=Path, default=None,
                        help="the recorded replies (default: OUT/drafts.jsonl)")
    args = parser.parse_args(argv)
    run(args.questions, args.out, args.drafts or args.out / "drafts.jsonl")
    return 0


if __name__ == "__main__":
    sys.exit(main())
