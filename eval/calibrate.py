"""Calibrate the groundedness threshold on the sample corpus: ``python -m rag.eval.calibrate``.

e5 cosines are compressed, so "supported" cannot be a round number picked by
eye. ``eval/calibration.jsonl`` holds hand-written claims, each either a
translation or paraphrase of one corpus sentence (``source`` + ``anchor``) or a
plausible on-topic claim that no article makes (``fabricated``/``offtopic``).
Scores are collected with the same ``Grounder.support`` the evaluation uses:

* positive: a claim (and the anchor sentence itself, verbatim) against the chunk
  of its own file that contains the anchor;
* negative: a claim against the best-matching chunk of each other file that does
  not also state it (``also_in``), and a fabricated claim against the
  best-matching chunk of the whole corpus (the passage an answerer would cite).

The threshold maximises balanced accuracy (TPR - FPR) between the two.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.eval.metrics import percentile

from rag.chunking import (
    DEFAULT_CHUNK_TOKENS,
    chunk_sentences,
    merge_short_sentences,
    split_sentences,
)
from rag.config import DEFAULT_CORPUS
from rag.groundedness import Grounder

CALIBRATION_FILE = Path(__file__).with_name("calibration.jsonl")


@dataclass(frozen=True)
class Pair:
    kind: str  # verbatim | translation | paraphrase | fabricated | offtopic
    label: bool  # True: the passage supports the claim
    score: float
    claim: str


def corpus_chunks(corpus: Path, count_tokens: Any) -> dict[str, list[str]]:
    """File name -> chunk texts, chunked the way ingestion does it."""
    out: dict[str, list[str]] = {}
    for path in sorted(corpus.glob("*.txt")):
        sentences = merge_short_sentences(split_sentences(path.read_text(encoding="utf-8")))
        chunks = chunk_sentences(sentences, count_tokens, DEFAULT_CHUNK_TOKENS)
        out[path.name] = [c.text for c in chunks]
    return out


def collect_pairs(grounder: Grounder, rows: Sequence[dict[str, Any]], corpus: Path) -> list[Pair]:
    """Score every positive and negative pair described in the module docstring."""
    chunks = corpus_chunks(corpus, grounder.model.token_count)
    every = [c for texts in chunks.values() for c in texts]
    pairs: list[Pair] = []
    for row in rows:
        claim, source = row["claim"], row.get("source")
        if not source:
            score, _ = max(grounder.support(claim, [c]) for c in every)
            pairs.append(Pair(row["kind"], False, score, claim))
            continue
        own = next(c for c in chunks[source] if row["anchor"] in c)
        anchor = next(s for s in split_sentences(own) if row["anchor"] in s)
        pairs.append(Pair(row["kind"], True, grounder.support(claim, [own])[0], claim))
        pairs.append(Pair("verbatim", True, grounder.support(anchor, [own])[0], anchor))
        for name, texts in chunks.items():
            if name == source or name in row.get("also_in", []):
                continue
            score = max(grounder.support(claim, [c])[0] for c in texts)
            pairs.append(Pair(f"{row['kind']} vs wrong file", False, score, claim))
    return pairs


def best_threshold(pairs: Sequence[Pair]) -> tuple[float, float, float]:
    """Threshold maximising TPR - FPR (ties: the highest one); returns (t, tpr, fpr)."""
    pos = [p.score for p in pairs if p.label]
    neg = [p.score for p in pairs if not p.label]
    best = (0.0, 0.0, 0.0, -1.0)
    for t in sorted({round(p.score, 3) for p in pairs}):
        tpr = sum(s >= t for s in pos) / len(pos)
        fpr = sum(s >= t for s in neg) / len(neg)
        if tpr - fpr >= best[3]:
            best = (t, tpr, fpr, tpr - fpr)
    return best[0], best[1], best[2]


def report(pairs: Sequence[Pair], grid: Sequence[float]) -> dict[str, Any]:
    """Distribution per kind and TPR/FPR over a grid of thresholds."""
    kinds: dict[str, Any] = {}
    for kind in dict.fromkeys(p.kind for p in pairs):
        scores = [p.score for p in pairs if p.kind == kind]
        kinds[kind] = {
            "label": next(p.label for p in pairs if p.kind == kind),
            "n": len(scores),
            "min": min(scores),
            "p10": percentile(scores, 10),
            "median": percentile(scores, 50),
            "p90": percentile(scores, 90),
            "max": max(scores),
        }
    pos = [p.score for p in pairs if p.label]
    neg = [p.score for p in pairs if not p.label]
    table = [
        {"threshold": t, "tpr": sum(s >= t for s in pos) / len(pos),
         "fpr": sum(s >= t for s in neg) / len(neg)}
        for t in grid
    ]
    t, tpr, fpr = best_threshold(pairs)
    return {"kinds": kinds, "grid": table, "best": {"threshold": t, "tpr": tpr, "fpr": fpr}}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rag.eval.calibrate", description=__doc__)
    parser.add_argument("--claims", default=str(CALIBRATION_FILE))
    parser.add_argument("--corpus", default=str(DEFAULT_CORPUS))
    parser.add_argument("--out", help="write the full report (with every pair) as JSON")
    args = parser.parse_args(argv)
    with open(args.claims, encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    grounder = Grounder()
    pairs = collect_pairs(grounder, rows, Path(args.corpus))
    result = report(pairs, [round(0.80 + 0.01 * i, 2) for i in range(15)])
    print(f"{'kind':<28} {'label':<6} {'n':>4} {'min':>6} {'p10':>6} {'median':>6} "
          f"{'p90':>6} {'max':>6}")
    for kind, s in result["kinds"].items():
        print(f"{kind:<28} {'pos' if s['label'] else 'neg':<6} {s['n']:>4} {s['min']:>6.3f} "
              f"{s['p10']:>6.3f} {s['median']:>6.3f} {s['p90']:>6.3f} {s['max']:>6.3f}")
    print("\nthreshold   TPR    FPR")
    for row in result["grid"]:
        print(f"  {row['threshold']:.2f}    {row['tpr']:.3f}  {row['fpr']:.3f}")
    best = result["best"]
    print(f"\nbest (max TPR-FPR): {best['threshold']:.3f}  TPR {best['tpr']:.3f}  "
          f"FPR {best['fpr']:.3f}")
    if args.out:
        result["pairs"] = [p.__dict__ for p in pairs]
        Path(args.out).write_text(json.dumps(result, ensure_ascii=False, indent=1), "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
