"""The claim check measured on the labeled claim set (issue 24), and its calibration.

``rag eval --claims eval/claims/claims-test.jsonl --out DIR`` (or ``python -m
rag.eval.claim_set FILE``) runs ``rag.answering.claim_check`` on every claim of
the file against its quote and passage, and reports, per kind, how many claims
were kept or removed: the check's *recall* is the share of unfaithful claims it
removes, its *precision* the share of removed claims that were unfaithful, and
"faithful kept" the share of faithful restatements it lets through.

``--calibrate`` (dev file only) prints the threshold sweep and picks the highest
similarity threshold that keeps at least ``TARGET_KEPT`` of the faithful claims;
``--judge`` adds the local model's reading (``rag.answering.claim_judge``; it needs the
model installed), and with ``--calibrate`` sweeps its cut instead;
``--rule names`` / ``--rule negation`` measure candidate extra rules (issue 24
asks whether a rule for names helps; see docs/evaluation.md for the answer).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import unicodedata
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from rag.answering.claim_check import ClaimChecker
from rag.answering.numbers import missing_numbers

FAITHFUL = "restatement"
UNFAITHFUL_KINDS = ("other-sentence", "number", "name", "negation", "added-fact")
# Keep at least this share of the dev set's faithful claims (the issue asks >= 0.90 on
# test; the margin is for the dev/test difference).
TARGET_KEPT = 0.95


def load(path: str | Path) -> list[dict[str, Any]]:
    """The claim set: id, quote, passage, claim, lang, label, kind per line."""
    rows = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            missing = {"quote", "passage", "claim", "label", "kind"} - set(row)
            if missing:
                raise ValueError(f"{path}:{number}: missing {', '.join(sorted(missing))}")
            rows.append(row)
    return rows


# -- candidate rules, measured (not part of the check unless they help) -----------------

_FOLD = str.maketrans({"w": "v", "j": "i", "y": "i", "k": "c", "ł": "l", "ø": "o"})


def _fold(word: str) -> str:
    plain = unicodedata.normalize("NFKD", word.casefold())
    plain = "".join(c for c in plain if not unicodedata.combining(c))
    for a, b in (("sz", "s"), ("cz", "c"), ("ch", "h"), ("ph", "f"), ("ks", "x")):
        plain = plain.replace(a, b)
    return plain.translate(_FOLD)


# Capitalised words that are not names (titles, days, months) in the claim languages.
_NOT_NAMES = {w.casefold() for w in (
    "President", "Prime", "Minister", "Secretary", "General", "Foreign", "Deputy", "Monday",
    "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday", "January", "February",
    "March", "April", "May", "June", "July", "August", "September", "October", "November",
    "December", "Founding", "Act", "Declaration", "Council", "Summit", "Treaty", "Alliance",
    "Yes", "No", "The", "According")}


def _names(text: str, lang: str) -> list[str]:
    """Capitalised words that do not start the sentence and are not titles, days or months;
    none for German, which capitalises every noun."""
    if lang == "de":
        return []
    words = re.findall(r"[\w'’]+", text)
    return [w for i, w in enumerate(words) if i > 0 and w[:1].isupper() and not w.isupper()
            and len(w) > 2 and w.casefold() not in _NOT_NAMES]


def _close(a: str, b: str) -> bool:
    """Equal, or one letter apart (Rusi-a / Rosj-a fold to "rusi" / "rosi")."""
    return len(a) == len(b) and sum(x != y for x, y in zip(a, b, strict=True)) <= 1


def names_missing(claim: str, quote: str, passage: str, lang: str = "") -> list[str]:
    """Names of the claim that no word of the quote or passage matches on its first four
    letters, after folding diacritics and Polish/Romanian spellings (w->v, j->i, k->c...)
    and allowing one letter's difference: Moscow ~ Moskwy, Russia ~ Rosja pass,
    Georgia ~ Gruzja does not."""
    stems = {_fold(w)[:4] for w in re.findall(r"\w+", f"{quote} {passage}") if len(w) > 2}
    return [n for n in _names(claim, lang)
            if not any(_close(_fold(n)[:4], stem) for stem in stems)]


_NEGATIONS = re.compile(
    r"\b(not|no|never|none|nothing|n't|cannot|nie|nigdy|żaden|żadnych|nu|niciodată|niciun|"
    r"nicio|nicht|kein\w*|nie|ne|pas|jamais|aucun\w*|nunca|ningún|ninguna|non|mai)\b|n't",
    re.I)


def negation_differs(claim: str, quote: str) -> bool:
    """One side negated and the other not (counted negation words, by parity)."""
    return (len(_NEGATIONS.findall(claim)) % 2) != (len(_NEGATIONS.findall(quote)) % 2)


RULES: dict[str, Callable[[dict[str, Any]], bool]] = {
    "names": lambda r: bool(names_missing(r["claim"], r["quote"], r["passage"], r["lang"])),
    "negation": lambda r: negation_differs(r["claim"], r["quote"]),
}


# -- scoring ----------------------------------------------------------------------------

def similarities(checker: ClaimChecker, rows: Sequence[dict[str, Any]]) -> np.ndarray:
    """Each claim against its quote, as the check scores it (embedded in two batches)."""
    checker.model.claims([r["claim"] for r in rows])
    checker.model.sources([r["quote"] for r in rows])
    return np.array([checker.similarity(r["claim"], r["quote"]) for r in rows])


def decide(rows: Sequence[dict[str, Any]], scores: np.ndarray, threshold: float,
           numbers: bool = True, rules: Sequence[str] = ()) -> list[bool]:
    """Removed or not, per claim: below the threshold, a number not in its passage, or a
    failing candidate rule."""
    removed = []
    for row, score in zip(rows, scores, strict=True):
        bad = score < threshold
        bad = bad or (numbers and bool(missing_numbers(row["claim"], row["quote"],
                                                       row["passage"])))
        bad = bad or any(RULES[rule](row) for rule in rules)
        removed.append(bool(bad))
    return removed


def summary(rows: Sequence[dict[str, Any]], removed: Sequence[bool]) -> dict[str, Any]:
    """Per kind: claims and the share removed; overall precision/recall of removal."""
    kinds: dict[str, dict[str, Any]] = {}
    for row, gone in zip(rows, removed, strict=True):
        k = kinds.setdefault(row["kind"], {"claims": 0, "removed": 0})
        k["claims"] += 1
        k["removed"] += int(gone)
    for k in kinds.values():
        k["removed_share"] = round(k["removed"] / k["claims"], 4)
    bad = [r["label"] != "faithful" for r in rows]
    true_pos = sum(g and b for g, b in zip(removed, bad, strict=True))
    faithful = len(bad) - sum(bad)
    kept_faithful = sum(not g and not b for g, b in zip(removed, bad, strict=True))
    return {
        "claims": len(rows), "faithful": faithful, "unfaithful": sum(bad),
        "recall": round(true_pos / max(sum(bad), 1), 4),
        "precision": round(true_pos / max(sum(removed), 1), 4),
        "faithful_kept": round(kept_faithful / max(faithful, 1), 4),
        "by_kind": {k: kinds[k] for k in (FAITHFUL, *UNFAITHFUL_KINDS) if k in kinds},
    }


def print_summary(result: dict[str, Any], title: str, stream: TextIO) -> None:
    print(f"{title}: {result['claims']} claims ({result['faithful']} faithful, "
          f"{result['unfaithful']} unfaithful)", file=stream)
    print(f"  unfaithful removed (recall) {result['recall']:.3f}, removed that were "
          f"unfaithful (precision) {result['precision']:.3f}, faithful kept "
          f"{result['faithful_kept']:.3f}", file=stream)
    print(f"  {'kind':<16} {'claims':>6} {'removed':>8} {'kept':>6}", file=stream)
    for kind, k in result["by_kind"].items():
        print(f"  {kind:<16} {k['claims']:>6} {k['removed_share']:>8.3f} "
              f"{1 - k['removed_share']:>6.3f}", file=stream)


def judge_scores(judge: Any, rows: Sequence[dict[str, Any]],
                 removed: Sequence[bool]) -> list[float | None]:
    """The judge's P(yes) for each claim the embedding check kept (None: not asked, or the
    judge could not say), as the engine asks it: only about what passed."""
    return [None if gone else judge(row["claim"], row["quote"])
            for row, gone in zip(rows, removed, strict=True)]


def judged(removed: Sequence[bool], scores: Sequence[float | None], cut: float) -> list[bool]:
    return [gone or (p is not None and p < cut) for gone, p in zip(removed, scores, strict=True)]


def evaluate(path: str | Path, checker: ClaimChecker | None = None,
             rules: Sequence[str] = (), stream: TextIO | None = None) -> dict[str, Any]:
    """The check as the engine runs it, on one claim-set file; prints the table."""
    stream = stream or sys.stdout
    checker = checker or ClaimChecker.for_embedder(None)
    rows = load(path)
    removed = decide(rows, similarities(checker, rows), checker.threshold, rules=rules)
    title = f"claim check ({checker.model.family}, threshold {checker.threshold:.3f}"
    judge = checker.judge
    if judge is not None:
        removed = judged(removed, judge_scores(judge, rows, removed), judge.threshold)
        title += f", judge {judge.name} below P(yes) {judge.threshold:.2f}"
    result = {"file": str(path), "model": checker.model.family,
              "threshold": checker.threshold, "rules": list(rules),
              "judge": getattr(judge, "name", None), **summary(rows, removed)}
    print_summary(result, f"{title}) on {path}", stream)
    return result


def _sweep_header(label: str, width: int) -> str:
    return f"{label:>{width}} {'kept':>6} {'recall':>7} " + " ".join(
        f"{k[:10]:>10}" for k in UNFAITHFUL_KINDS)


def _sweep_row(value: float, width: int, result: dict[str, Any]) -> str:
    """One line of a sweep: the faithful kept, the recall, the share removed per kind."""
    cells = " ".join(f"{result['by_kind'].get(k, {}).get('removed_share', 0):>10.3f}"
                     for k in UNFAITHFUL_KINDS)
    return f"{value:>{width}.2f} {result['faithful_kept']:>6.3f} {result['recall']:>7.3f} {cells}"


def calibrate_judge(path: str | Path, checker: ClaimChecker, stream: TextIO) -> float:
    """Sweep the judge's cut on a dev file, after the embedding check at its threshold: among
    the cuts keeping ``TARGET_KEPT`` of the faithful claims, the lowest with the best recall
    (the furthest from where faithful claims start to go)."""
    rows = load(path)
    removed = decide(rows, similarities(checker, rows), checker.threshold)
    scores = judge_scores(checker.judge, rows, removed)
    best: tuple[float, float] | None = None  # (recall, -cut)
    print(_sweep_header("cut", 5), file=stream)
    for cut in np.round(np.arange(0.0, 1.0, 0.02), 2):
        result = summary(rows, judged(removed, scores, float(cut)))
        if result["faithful_kept"] >= TARGET_KEPT and (
                best is None or (result["recall"], -cut) > best):
            best = (result["recall"], -float(cut))
        print(_sweep_row(cut, 5, result), file=stream)
    chosen = -best[1] if best else 0.0
    print(f"chosen: {chosen:.2f} (keeping >= {TARGET_KEPT:.0%} of the faithful, the best "
          "recall, the lowest such cut)", file=stream)
    return chosen


def calibrate(path: str | Path, checker: ClaimChecker, stream: TextIO) -> float:
    """Sweep the threshold on a dev file; the highest keeping ``TARGET_KEPT`` of the faithful."""
    rows = load(path)
    scores = similarities(checker, rows)
    faithful = np.array([r["label"] == "faithful" for r in rows])
    print(f"similarity ({checker.model.family}), faithful: min {scores[faithful].min():.3f} "
          f"p5 {np.percentile(scores[faithful], 5):.3f} median "
          f"{np.median(scores[faithful]):.3f}", file=stream)
    for kind in UNFAITHFUL_KINDS:
        mask = np.array([r["kind"] == kind for r in rows])
        if mask.any():
            print(f"  {kind:<16} median {np.median(scores[mask]):.3f} max "
                  f"{scores[mask].max():.3f}", file=stream)
    chosen = float(scores.min())
    print(_sweep_header("threshold", 9), file=stream)
    for threshold in np.round(np.arange(np.floor(scores.min() * 100) / 100,
                                        scores.max(), 0.01), 2):
        result = summary(rows, decide(rows, scores, float(threshold)))
        if result["faithful_kept"] >= TARGET_KEPT:
            chosen = float(threshold)
        print(_sweep_row(threshold, 9, result), file=stream)
    print(f"chosen: {chosen:.2f} (the highest keeping >= {TARGET_KEPT:.0%} of the faithful)",
          file=stream)
    without = summary(rows, decide(rows, scores, chosen))
    for rule in RULES:
        best = None  # the rule, with the threshold re-chosen under the same target
        for threshold in np.round(np.arange(0.0, scores.max(), 0.01), 2):
            result = summary(rows, decide(rows, scores, float(threshold), rules=[rule]))
            if result["faithful_kept"] >= TARGET_KEPT:
                best = (float(threshold), result)
        if best is None:
            print(f"rule {rule!r}: keeps under {TARGET_KEPT:.0%} of the faithful at any "
                  "threshold", file=stream)
            continue
        at, result = best
        print(f"rule {rule!r} (threshold {at:.2f}): faithful kept {without['faithful_kept']:.3f}"
              f" -> {result['faithful_kept']:.3f}, recall {without['recall']:.3f} -> "
              f"{result['recall']:.3f}", file=stream)
    return chosen


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rag.eval.claim_set",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("file", help="a claim-set JSONL file (eval/claims/claims-*.jsonl)")
    parser.add_argument("--calibrate", action="store_true",
                        help="sweep thresholds (dev file only) and print the chosen one")
    parser.add_argument("--rule", action="append", default=[], choices=sorted(RULES),
                        help="add a candidate rule to the check (measurement only)")
    parser.add_argument("--judge", action="store_true",
                        help="add the local model's reading (the calibrated model installed)")
    parser.add_argument("--out", help="write the result as JSON here")
    args = parser.parse_args(argv)
    from rag.similarity import default_similarity

    model = default_similarity()  # the embedder the settings choose (RAG_EMBEDDER)
    judge = None
    if args.judge:
        from rag.answering.claim_judge import local_judge
        from rag.config import Settings

        judge = local_judge(Settings(claim_judge="auto"))
        if judge is None:
            print("error: no claim judge: install the local model it was calibrated for "
                  "(make install-llm)", file=sys.stderr)
            return 1
    if args.calibrate and judge is not None:
        calibrate_judge(args.file, ClaimChecker(model, judge=judge), sys.stdout)
        return 0
    if args.calibrate:
        calibrate(args.file, ClaimChecker(model, threshold=0.0), sys.stdout)
        return 0
    result = evaluate(args.file, ClaimChecker(model, judge=judge), rules=args.rule)
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
