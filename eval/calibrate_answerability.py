"""Fit the decline model of rag.answerability on question files (issue 11).

``python -m rag.eval.calibrate_answerability eval/questions/single-dev.jsonl
[--test eval/questions/single-test.jsonl]`` runs the real retriever on the
store that ``Settings.from_env()`` names, computes each question's features,
reports each feature's ROC AUC and the cross-validated AUC of the combined
model, fits it on all given questions with the operating point chosen on the
out-of-fold probabilities (at most 5 % of answerable questions declined), and
prints the ``E5_MODEL`` / ``GEMMA_MODEL`` line (after the embedder) to paste.
``--test`` scores held-out files with that model (AUC and the decline rates at the
operating point): for reporting only, never for choosing.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
from rag.eval.metrics import load_questions

from rag import answerability as ans


def question_features(retriever: Any, paths: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Features and labels (1 = answerable) of every question of the files."""
    questions = [q for path in paths for q in load_questions(path) if not q.conversation]
    vectors = retriever.embedder.embed_queries([q.question for q in questions])
    rows = []
    for q, vector in zip(questions, vectors, strict=True):
        plain, ranked = retriever.search(vector, 5)
        cosine = {h.id: h.score for h in plain}
        hits = [(h.text, h.score, str(h.metadata.get("source", "")), cosine.get(h.id, h.score))
                for h in ranked]
        rows.append(ans.candidates(q.question, hits, plain[0].score if plain else 0.0))
    return np.asarray(rows), np.asarray([int(q.answerable) for q in questions])


def report(name: str, probabilities: Sequence[float], y: np.ndarray, threshold: float) -> None:
    p = np.asarray(probabilities)
    print(f"{name}: ROC AUC {ans.roc_auc(p, y):.3f}; at threshold {threshold:.3f}: answerable "
          f"declined {np.mean(p[y == 1] < threshold):.3f}, unanswerable declined "
          f"{np.mean(p[y == 0] < threshold):.3f} (n={int(y.sum())}/{int((1 - y).sum())})")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("questions", nargs="+")
    parser.add_argument("--test", nargs="*", default=[])
    parser.add_argument("--rule", choices=("balanced", "recall"), default="recall",
                        help="operating point: best balanced accuracy, or at most 5 %% of "
                             "answerable questions declined")
    args = parser.parse_args(argv)
    from rag.engine import Engine

    engine = Engine()
    retriever = type(engine.retriever)(engine.retriever.store, engine.embedder, model=None)
    every, y = question_features(retriever, args.questions)
    for i, name in enumerate(ans.CANDIDATES):
        print(f"signal {name}: ROC AUC {ans.roc_auc(every[:, i], y):.3f}")
    columns = [ans.CANDIDATES.index(name) for name in ans.FEATURES]
    x = every[:, columns]
    oof = ans.cross_validate(x, y)
    threshold = (ans.balanced_operating_point(oof, y) if args.rule == "balanced"
                 else ans.operating_point(oof, y))
    report("cross-validated model", oof, y, threshold)
    model = replace(ans.fit(x, y), threshold=round(threshold, 4))
    rounded = {k: [round(v, 4) for v in getattr(model, k)] for k in ("mean", "scale", "weights")}
    family = engine.embedder.name.split(":", 1)[0].upper()
    print(f"{family}_MODEL = Model(mean={rounded['mean']}, scale={rounded['scale']}, "
          f"weights={rounded['weights']}, bias={model.bias:.4f}, threshold={model.threshold:.4f})")
    if args.test:
        tx, ty = question_features(retriever, args.test)
        report("test", [model.probability(r) for r in tx[:, columns]], ty, model.threshold)
        report("test, best cosine with the old threshold", tx[:, 0], ty, 0.81)


if __name__ == "__main__":
    main()
