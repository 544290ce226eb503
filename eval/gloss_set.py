"""The gloss check measured and calibrated on the local model's own translations (issue 24).

Material: ``eval/translations/sample-corpus.en.json`` holds the 1.5B model's English
translation of every sentence of the sample corpus (issue 11), and
``sample-corpus.en.labels.json`` says, for each, whether it is faithful or wrong
(read by hand: a changed date, number, name or actor, a dropped main point, or no
translation of this sentence at all is wrong; clumsy wording is not). Three kinds
of pairs:

- ``faithful``: a sentence and its faithful translation (should pass);
- ``wrong``: a sentence and its wrong translation (should fail);
- ``mismatched``: a translation against the most similar *other* sentence of the
  corpus (should fail: the hardest wrong pairing).

The sentences are split dev/test (seeded shuffle, alternating); ``--calibrate``
sweeps the similarity threshold on dev and picks the highest that keeps
``TARGET_KEPT`` of the faithful glosses; the figures to report are test's::

    python -m rag.eval.gloss_set --calibrate     # dev: sweep and choice
    python -m rag.eval.gloss_set                 # test: the check as the engine runs it
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.glosses import THRESHOLDS, check_gloss

HERE = Path(__file__).resolve().parent / "translations"
TRANSLATIONS = HERE / "sample-corpus.en.json"
LABELS = HERE / "sample-corpus.en.labels.json"
SEED = 24
TARGET_KEPT = 0.90
KINDS = ("faithful", "wrong", "mismatched")


def split_sentences(sentences: Sequence[str], seed: int = SEED) -> tuple[set[str], set[str]]:
    order = list(sentences)
    random.Random(seed).shuffle(order)
    return set(order[0::2]), set(order[1::2])


def pairs(model: Any, half: str) -> list[dict[str, Any]]:
    """The pairs of one half ("dev" or "test"): sentence, gloss, kind."""
    translations = json.loads(TRANSLATIONS.read_text("utf-8"))["translations"]
    labels = json.loads(LABELS.read_text("utf-8"))["labels"]
    sentences = list(translations)
    dev, test = split_sentences(sentences)
    chosen = dev if half == "dev" else test
    glosses = [translations[s] for s in sentences]
    scores = model.claims(glosses) @ model.sources(sentences).T  # gloss x sentence
    out = []
    for i, sentence in enumerate(sentences):
        if sentence not in chosen:
            continue
        out.append({"sentence": sentence, "gloss": glosses[i],
                    "kind": labels[sentence]["label"]})
        other = max((j for j in range(len(sentences)) if j != i), key=lambda j: scores[i, j])
        out.append({"sentence": sentences[other], "gloss": glosses[i], "kind": "mismatched"})
    return out


def run(model: Any, rows: Sequence[dict[str, Any]], threshold: float) -> list[bool]:
    """Passed or not, per pair, as the engine checks a gloss."""
    return [check_gloss(model, threshold, r["sentence"], r["gloss"], "en").passed for r in rows]


def table(rows: Sequence[dict[str, Any]], passed: Sequence[bool]) -> dict[str, dict[str, Any]]:
    out = {}
    for kind in KINDS:
        got = [p for r, p in zip(rows, passed, strict=True) if r["kind"] == kind]
        out[kind] = {"pairs": len(got), "shown": round(sum(got) / max(len(got), 1), 4)}
    return out


def print_table(result: dict[str, dict[str, Any]], title: str) -> None:
    print(title)
    for kind, row in result.items():
        print(f"  {kind:<11} {row['pairs']:>3} pairs, shown {row['shown']:.3f}")


def calibrate(model: Any) -> float:
    rows = pairs(model, "dev")
    scores = np.array([float(model.claims([r["gloss"]])[0] @ model.sources([r["sentence"]])[0])
                       for r in rows])
    chosen = float(scores.min())
    print(f"{'threshold':>9} " + " ".join(f"{k:>10}" for k in KINDS))
    for threshold in np.round(np.arange(np.floor(scores.min() * 100) / 100, scores.max(),
                                        0.01), 2):
        result = table(rows, run(model, rows, float(threshold)))
        if result["faithful"]["shown"] >= TARGET_KEPT:
            chosen = float(threshold)
        print(f"{threshold:>9.2f} " + " ".join(f"{result[k]['shown']:>10.3f}" for k in KINDS))
    print(f"chosen: {chosen:.2f} (the highest showing >= {TARGET_KEPT:.0%} of the faithful)")
    return chosen


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rag.eval.gloss_set",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--calibrate", action="store_true", help="sweep on the dev half")
    parser.add_argument("--out", help="write the test figures as JSON here")
    args = parser.parse_args(argv)
    from rag.similarity import default_similarity

    model = default_similarity()  # the embedder the settings choose (RAG_EMBEDDER)
    if args.calibrate:
        calibrate(model)
        return 0
    rows = pairs(model, "test")
    result = table(rows, run(model, rows, THRESHOLDS[model.family]))
    print_table(result, f"gloss check ({model.family}, threshold {THRESHOLDS[model.family]:.2f}) "
                        "on the test half")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
