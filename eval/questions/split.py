"""Write the question sets and their fixed dev/test split (``python -m rag.eval.questions.split``).

Single questions are stratified by (kind, language), conversations by
(language, whether they change topic), and each stratum alternates dev/test
after a seeded shuffle, so both halves get every kind and language. Tune on
the dev files only; the test files are for the final report and the CI gate.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rag.eval.questions.singles_src import Q
from rag.eval.questions.turns_src import C

SEED = 11
HERE = Path(__file__).resolve().parent
FILES = sorted(p.name for p in (HERE.parent.parent / "corpus").glob("*.txt"))


def _names(indexes: Sequence[int]) -> list[str]:
    return [FILES[i] for i in indexes]


def singles() -> list[dict[str, Any]]:
    out, counts = [], {}
    for lang, kind, question, files, expect in Q:
        counts[lang] = counts.get(lang, 0) + 1
        out.append({"id": f"s-{lang}-{counts[lang]:03d}", "lang": lang, "question": question,
                    "sources": _names(files), "expect_any": list(expect), "kind": kind,
                    "paraphrased": kind == "paraphrase", "multi_file": len(files) > 1})
    return out


def conversations() -> list[dict[str, Any]]:
    out, counts = [], {}
    for lang, turns in C:
        counts[lang] = counts.get(lang, 0) + 1
        out.append({"id": f"c-{lang}-{counts[lang]:02d}", "lang": lang, "turns": [
            {"question": q, "sources": _names(files), "expect_any": list(expect), "kind": kind}
            for kind, q, files, expect in turns]})
    return out


def split(rows: list[dict[str, Any]], key: Callable[[dict[str, Any]], Any],
          seed: int = SEED) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Stratified ~50/50 split: shuffle each stratum, then alternate dev/test across strata."""
    rng = random.Random(seed)
    strata: dict[Any, list[dict[str, Any]]] = {}
    for row in rows:
        strata.setdefault(key(row), []).append(row)
    dev, test, turn = [], [], 0
    for name in sorted(strata, key=str):
        group = strata[name]
        rng.shuffle(group)
        for row in group:
            (dev if turn % 2 == 0 else test).append(row)
            turn += 1
    order = {row["id"]: i for i, row in enumerate(rows)}
    return sorted(dev, key=lambda r: order[r["id"]]), sorted(test, key=lambda r: order[r["id"]])


def _write(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                    encoding="utf-8")


def main() -> None:
    dev, test = split(singles(), lambda r: (r["kind"], r["lang"]))
    _write(HERE / "single-dev.jsonl", dev)
    _write(HERE / "single-test.jsonl", test)
    convs = conversations()
    cdev, ctest = split(convs, lambda r: (r["lang"], any(t["kind"] == "topic-change"
                                                         for t in r["turns"])))
    _write(HERE / "turns-dev.jsonl", cdev)
    _write(HERE / "turns-test.jsonl", ctest)
    print(f"single: {len(dev)} dev, {len(test)} test; conversations: {len(cdev)} dev, "
          f"{len(ctest)} test")


if __name__ == "__main__":
    main()
