"""Measure answerability signals on a question set: how well each separates
answerable from unanswerable questions (AUC, best threshold), plus file-level hit@1.

Usage: .venv/bin/python scripts/calibrate_decline.py [eval/dev.jsonl]
Writes nothing; prints a table. Uses a scratch store of the sample corpus.
"""

from __future__ import annotations

import json
import sys
import tempfile

import numpy as np

from rag.config import DEFAULT_CORPUS, Settings
from rag.engine import Engine


def auc(pos: list[float], neg: list[float]) -> float:
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / max(1, len(pos) * len(neg))


def best_threshold(pos: list[float], neg: list[float]) -> tuple[float, float, float]:
    """Threshold maximising balanced accuracy; returns (threshold, TPR, TNR)."""
    best = (0.0, 0.0, 0.0, -1.0)
    for t in sorted(set(pos + neg)):
        tpr = np.mean([p >= t for p in pos])
        tnr = np.mean([n < t for n in neg])
        if (tpr + tnr) / 2 > best[3]:
            best = (t, float(tpr), float(tnr), (tpr + tnr) / 2)
    return best[:3]


def main(path: str) -> None:
    with open(path, encoding="utf-8") as handle:
        questions = [json.loads(line) for line in handle if line.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        engine = Engine(Settings(chroma_dir=f"{tmp}/chroma"))
        engine.ingest([DEFAULT_CORPUS])
        retriever = engine.retriever
        features: dict[str, list[tuple[bool, float]]] = {}
        hits = 0
        answerable = 0
        for q in questions:
            qv = engine.embedder.embed_queries([q["question"]])[0]
            raw = engine.store.query(qv, 30)
            r = retriever._group(raw, 5, qv)
            top = raw[0].score
            sims = engine.store.sample_vectors(512) @ qv
            scores = np.array([h.score for h in raw])
            ok = bool(q["sources"])
            row = {
                "top1": top,
                "z_background": (top - sims.mean()) / (sims.std() + 1e-6),
                "top1_minus_mean30": top - scores.mean(),
                "top1_minus_median30": top - float(np.median(scores)),
                "z_top30": (top - scores.mean()) / (scores.std() + 1e-6),
            }
            for name, value in row.items():
                features.setdefault(name, []).append((ok, float(value)))
            if ok:
                answerable += 1
                hits += r.passages[0].source in q["sources"]
            else:
                print(f"  unanswerable {q['id']}: z={r.support:.2f} top1={top:.3f} "
                      f"-> {r.passages[0].source[:3]} {r.passages[0].sentence[:60]!r}")
        print(f"\nfile-level hit@1 over {answerable} answerable: {hits / answerable:.3f}\n")
        print(f"{'signal':<22}{'AUC':>7}{'thresh':>9}{'TPR':>7}{'TNR':>7}")
        for name, values in features.items():
            pos = [v for ok, v in values if ok]
            neg = [v for ok, v in values if not ok]
            t, tpr, tnr = best_threshold(pos, neg)
            print(f"{name:<22}{auc(pos, neg):>7.3f}{t:>9.3f}{tpr:>7.2f}{tnr:>7.2f}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "eval/dev.jsonl")
