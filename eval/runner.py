"""``rag eval QUESTIONS.jsonl --out DIR``: run a question file through the engine and score it.

Writes ``DIR/per_question.jsonl`` (one row per question, with every metric's
per-question value), ``DIR/summary.json`` (the metrics, keys as in
``eval.metrics.METRICS``) and prints a table. ``--min METRIC=VALUE`` /
``--max METRIC=VALUE`` turn the run into a gate: exit 1 when a threshold is
missed, exit 2 for usage errors (unknown metric, malformed question file).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from rag.eval.judge import Judge
from rag.eval.metrics import (
    METRICS,
    TOP_CITED_SUBSETS,
    Outcome,
    Question,
    UnknownMetricError,
    check_thresholds,
    dedupe,
    load_questions,
    parse_thresholds,
    score_question,
    summarize,
)

from rag.groundedness import DEFAULT_THRESHOLD, Grounder
from rag.types import STATUSES

EXIT_OK, EXIT_BELOW_MIN, EXIT_USAGE = 0, 1, 2
# Per-language breakdown: the metrics that are meaningful on a handful of questions.
LANGUAGE_METRICS = ("hit@1", "top_cited", "citation_recall", "expected_content",
                    "groundedness", "answer_language", "refusal_accuracy", "false_refusal_rate")


def cited_passages(answer: Any) -> dict[int, str]:
    """Citation number -> the whole passage it points at (what a sentence must be backed by)."""
    retrieved = {p.n: p.text for p in getattr(answer, "retrieved", [])}
    out: dict[int, str] = {}
    for c in answer.citations:
        out[c.n] = c.passage_text or retrieved.get(c.n) or c.text
    return out


def evaluate_answer(
    question: Question, answer: Any, grounder: Grounder | None, judge: Judge | None,
    latency_ms: float,
) -> tuple[Outcome, dict[str, Any]]:
    """Reduce an ``Answer`` to an ``Outcome`` plus the detail written to per_question.jsonl."""
    passages = cited_passages(answer)
    detail: dict[str, Any] = {}
    grounded: float | None = None
    if grounder is not None and not answer.declined:
        grounding = grounder.ground(answer.answer, passages)
        grounded = grounding.score
        detail["sentences"] = [
            {"text": s.text, "cited": list(s.cited),
             "support": None if s.support is None else round(s.support, 4),
             "supported": s.supported}
            for s in grounding.sentences
        ]
    verdict = None
    if judge is not None and not answer.declined:
        verdict = judge.verdict(question.question, answer.answer, passages)
    outcome = Outcome(
        question=question,
        answer=answer.answer,
        declined=bool(answer.declined),
        status=str(getattr(answer, "status", "") or ""),
        cited_sources=[c.source for c in answer.citations],
        retrieved_sources=dedupe(p.source for p in answer.retrieved),
        latency_ms=latency_ms,
        groundedness=grounded,
        judge=verdict,
    )
    return outcome, detail


def _round(value: Any) -> Any:
    """Floats to 4 places; anything else (None, a status) as it is."""
    return round(value, 4) if isinstance(value, float) else value


def load_all(paths: str | Path | Sequence[str | Path]) -> list[Question]:
    """Questions of one or more files (ids must stay unique across them)."""
    files = [paths] if isinstance(paths, (str, Path)) else list(paths)
    questions: list[Question] = []
    for path in files:
        questions.extend(load_questions(path))
    ids = [q.id for q in questions]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise ValueError(f"question id {dup!r} appears in more than one file")
    return questions


def ask(engine: Any, q: Question, history: list[tuple[str, str]], top_k: int | None,
        answerer: str | None) -> Any:
    """Ask one question; a conversation turn gets the earlier turns, as the chat passes them."""
    if q.conversation and history:
        return engine.ask(q.question, top_k=top_k, answerer=answerer, history=list(history))
    return engine.ask(q.question, top_k=top_k, answerer=answerer)


def run_eval(
    engine: Any,
    questions_path: str | Path | Sequence[str | Path],
    out_dir: str | Path,
    answerer: str | None = None,
    minimums: Mapping[str, float] | None = None,
    maximums: Mapping[str, float] | None = None,
    top_k: int | None = None,
    grounder: Grounder | None = None,
    judge: Judge | None = None,
    use_judge: bool = True,
    warmup: bool = True,
    stream: TextIO | None = None,
) -> dict[str, Any]:
    """Run every question, write the two files, print the table; returns the summary dict.

    ``summary["failures"]`` lists the thresholds that were missed (empty: all met).
    Threshold names are checked before any question runs, so a typo fails fast.
    """
    stream = stream or sys.stdout
    minimums, maximums = dict(minimums or {}), dict(maximums or {})
    for name in [*minimums, *maximums]:
        if name not in METRICS:
            raise UnknownMetricError(
                f"unknown metric {name!r}; known metrics: {', '.join(METRICS)}"
            )
    questions = load_all(questions_path)
    k = int(top_k or getattr(getattr(engine, "settings", None), "top_k", 5) or 5)
    grounder = grounder or Grounder()
    if judge is None and use_judge:
        judge = Judge.from_env()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    if warmup:  # load models and open the store outside the timed questions
        engine.ask(questions[0].question, top_k=top_k, answerer=answerer)
    rows: list[dict[str, Any]] = []
    records: list[dict[str, Any]] = []
    latencies: list[float] = []
    answerers: dict[str, int] = {}
    history: list[tuple[str, str]] = []
    for i, q in enumerate(questions):
        if i == 0 or q.conversation != questions[i - 1].conversation:
            history = []
        started = time.perf_counter()
        answer = ask(engine, q, history, top_k, answerer)
        latency = (time.perf_counter() - started) * 1000
        if q.conversation:
            history.append((q.question, answer.answer))
        latencies.append(latency)
        answerers[answer.answerer] = answerers.get(answer.answerer, 0) + 1
        outcome, detail = evaluate_answer(q, answer, grounder, judge, latency)
        row = score_question(outcome, k)
        rows.append({**row, "lang": q.lang, "kind": q.kind, "turn_kind": q.turn_kind,
                     "multi_file": len(q.sources) > 1})
        records.append({
            "id": q.id, "lang": q.lang, "kind": q.kind, "turn_kind": q.turn_kind,
            "question": q.question,
            "standalone_question": getattr(answer, "standalone_question", None),
            "expected_sources": list(q.sources), "answer": answer.answer,
            "answerer": answer.answerer, "status": outcome.status,
            "declined": outcome.declined,
            "cited_sources": outcome.cited_sources,
            "retrieved_sources": outcome.retrieved_sources,
            "latency_ms": round(latency, 1), "support": _round(getattr(answer, "support", None)),
            "fallback_reason": getattr(answer, "fallback_reason", None),
            # an LLM's claims as the engine checked them (quote, similarity), and removed ones
            "claims": getattr(answer, "sentences", []),
            "removed_claims": getattr(answer, "removed_claims", []),
            **{key: _round(value) for key, value in row.items()},
            **detail,
        })

    metrics = summarize(rows, latencies)
    summary: dict[str, Any] = {key: _round(value) for key, value in metrics.items()}
    summary.update({
        "k": k,
        "answerer": answerer or getattr(getattr(engine, "settings", None), "answerer", None),
        "answerers_used": answerers,
        "questions_file": (str(questions_path) if isinstance(questions_path, (str, Path))
                           else [str(p) for p in questions_path]),
        "groundedness_threshold": grounder.threshold,
        "counts": {
            "questions": len(questions),
            "answerable": sum(q.answerable for q in questions),
            "unanswerable": sum(not q.answerable for q in questions),
            **{f"n_{key}": sum(r.get(col) is not None for r in rows)
               for key, col in (("citation_precision", "citation_precision"),
                                ("groundedness", "groundedness"),
                                ("expected_content", "expected_content"))},
        },
        "judge": None if judge is None else {"model": judge.model, "errors": judge.errors,
                                             "last_error": judge.last_error or None},
        "by_language": by_language(rows),
        "by_kind": by_group(rows, "kind"),
        "by_turn_kind": by_group(rows, "turn_kind"),
    })
    summary["failures"] = check_thresholds(metrics, minimums, maximums)
    summary["minimums"], summary["maximums"] = minimums, maximums

    with open(out / "per_question.jsonl", "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    (out / "summary.json").write_text(
        json.dumps(summary, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    print_table(summary, rows, stream)
    return summary


def by_group(rows: Sequence[Mapping[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    """The main metrics per value of a row field (language, question kind, turn kind)."""
    out: dict[str, dict[str, Any]] = {}
    for value in sorted({str(r.get(key) or "") for r in rows} - {""}):
        subset = [r for r in rows if r.get(key) == value]
        metrics = summarize(subset, [])
        out[value] = {"questions": len(subset),
                      **{m: _round(metrics[m]) for m in LANGUAGE_METRICS},
                      "statuses": {s: sum(r.get("status") == s for r in subset)
                                   for s in STATUSES}}
    return out


def by_language(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The main metrics per question language (``lang`` field), to spot a weak language."""
    return by_group(rows, "lang")


def print_table(
    summary: Mapping[str, Any], rows: Sequence[Mapping[str, Any]], stream: TextIO
) -> None:
    """A readable table: value, how many questions it is over, and threshold status."""
    per_q = {"mrr": "rr", "refusal_accuracy": "refused", "false_refusal_rate": "false_refusal",
             "answerable_not_stated": "not_stated"}
    limits = {**{m: f">= {v:g}" for m, v in summary["minimums"].items()},
              **{m: f"<= {v:g}" for m, v in summary["maximums"].items()}}
    failed = {line.split(":")[0] for line in summary["failures"]}
    counts = summary["counts"]
    print(f"questions: {counts['questions']} ({counts['answerable']} answerable, "
          f"{counts['unanswerable']} unanswerable), k={summary['k']}, "
          f"answerer: {summary['answerer']}", file=stream)
    used = summary.get("answerers_used") or {}
    if len(used) > 1 or any("fallback" in name for name in used):
        # an LLM that failed is replaced by the extractive answerer: say whose answers these are
        print("answers written by: " + ", ".join(f"{n} ({c})" for n, c in used.items()),
              file=stream)
    print(f"{'metric':<22} {'value':>9} {'n':>5}  {'better':<7} threshold", file=stream)
    for name, (direction, _) in METRICS.items():
        value = summary.get(name)
        if name == "judge_faithfulness" and summary.get("judge") is None:
            continue
        n = (counts["questions"] if name.startswith("latency")
             else metric_count(name, rows, per_q))
        shown = "-" if value is None else (f"{value:.1f}" if name.startswith("latency")
                                           else f"{value:.3f}")
        status = ""
        if name in limits:
            status = f"{limits[name]} {'FAIL' if name in failed else 'ok'}"
        print(f"{name:<22} {shown:>9} {n:>5}  {direction:<7} {status}", file=stream)
    for key, title in (("by_language", "language"), ("by_kind", "question kind"),
                       ("by_turn_kind", "turn kind")):
        print_groups(summary.get(key) or {}, title, stream)
    for line in summary["failures"]:
        print(f"below threshold: {line}", file=stream)


def metric_count(name: str, rows: Sequence[Mapping[str, Any]], per_q: Mapping[str, str]) -> int:
    """How many questions a summary metric is computed over (subset metrics included)."""
    if name in ("near_topic_declined", "near_topic_not_answered"):
        return sum(r.get("kind") == "near-topic" for r in rows)
    if name in TOP_CITED_SUBSETS:
        field_name, value = TOP_CITED_SUBSETS[name]
        return sum(r.get(field_name) == value and r.get("top_cited") is not None for r in rows)
    col = per_q.get(name, name)
    return sum(r.get(col) is not None for r in rows)


def print_groups(groups: Mapping[str, Mapping[str, Any]], title: str, stream: TextIO) -> None:
    """One line per group (language, kind) with the main metrics."""
    if not groups:
        return
    print(f"\nby {title}:", file=stream)
    print(f"{'':<13} {'n':>3} " + " ".join(f"{m[:12]:>12}" for m in LANGUAGE_METRICS)
          + "  answered/not stated/declined", file=stream)
    for name, values in groups.items():
        cells = " ".join(f"{'-' if values[m] is None else format(values[m], '.2f'):>12}"
                         for m in LANGUAGE_METRICS)
        statuses = "/".join(str(values.get("statuses", {}).get(s, 0)) for s in STATUSES)
        print(f"{name:<13} {values['questions']:>3} {cells}  {statuses}", file=stream)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rag eval", description="Grounding evaluation of the assistant on a question file."
    )
    parser.add_argument("questions", nargs="*",
                        help="JSONL files: questions (id, question, sources, expect_any, kind) "
                             "or conversations (id, turns: [{question, sources, kind}])")
    parser.add_argument("--claims", action="append", default=[], metavar="FILE",
                        help="a labeled claim set (eval/claims/claims-test.jsonl): the claim "
                             "check's precision and recall per kind, in claims.json")
    parser.add_argument("--out", required=True, help="folder for per_question.jsonl, summary.json")
    parser.add_argument("--answerer", default=None, help="an answerer name (rag answerers)")
    parser.add_argument("--top-k", type=int, default=None, help="passages to retrieve")
    parser.add_argument("--min", action="append", default=[], metavar="METRIC=VALUE",
                        help=f"fail (exit 1) below this; metrics: {', '.join(METRICS)}")
    parser.add_argument("--max", action="append", default=[], metavar="METRIC=VALUE",
                        help="fail (exit 1) above this (for latency, false_refusal_rate)")
    parser.add_argument("--ingest", action="append", default=[], metavar="PATH",
                        help="ingest these files/folders first (default: use the store as is)")
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                        help=f"groundedness support threshold (calibrated: {DEFAULT_THRESHOLD})")
    parser.add_argument("--no-judge", action="store_true",
                        help="skip the LLM judge even when RAG_JUDGE_* is set")
    return parser


def store_is_empty(engine: Any) -> bool:
    """True when nothing is ingested, so ``rag eval`` on a fresh install measures the sample.

    The store is opened with the engine's embedder, which also refuses a store
    built by another embedder before any question runs.
    """
    store = engine.store
    if not store.open(engine.embedder.name, engine.embedder.dim, create=False):
        return True
    return int(store.count()) == 0


def answerer_problem(engine: Any, name: str | None) -> str | None:
    """Why ``--answerer NAME`` cannot be used (unknown or not configured), else None.

    Checked before any question runs: otherwise every answer would silently be
    the extractive fallback and the run would measure the wrong answerer.
    """
    if not name:
        return None
    build = getattr(engine, "answerer", None)
    if build is None:  # a scripted engine in tests: only its listed answerers exist
        names = engine.answerer_names()
        ok = name.lower() in names
        return None if ok else f"answerer {name!r} is not available; choose {', '.join(names)}"
    try:
        build(name)
    except (ValueError, ImportError, RuntimeError) as exc:
        return f"answerer {name!r} cannot be used: {exc}"
    return None


def check_askable(questions: Sequence[Question]) -> None:
    """Every question must pass the engine's own checks before any runs: one bad question is
    a usage error (exit 2) naming it, not an error mid-run that looks like a missed threshold."""
    from rag.config import Settings
    from rag.engine import QuestionError, check_question

    max_chars = Settings().max_question_chars
    for q in questions:
        try:
            check_question(q.question, max_chars)
        except QuestionError as exc:
            raise ValueError(f"question {q.id!r}: {exc}") from exc


def check_out_dir(out: str | Path) -> None:
    """--out must be a folder (or not exist yet), checked before the questions run."""
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise ValueError(f"--out {path} is a file, not a folder: give a folder for "
                         "per_question.jsonl and summary.json")
    path.mkdir(parents=True, exist_ok=True)


def main(argv: Sequence[str] | None = None, engine: Any = None) -> int:
    """CLI entry point; returns 0 ok, 1 a threshold missed, 2 usage error."""
    try:
        args = build_parser().parse_args(list(argv) if argv is not None else None)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return int(exc.code or 0)
    try:
        if not args.questions and not args.claims:
            raise ValueError("give question files, --claims FILE, or both")
        minimums = parse_thresholds(args.min)
        maximums = parse_thresholds(args.max)
        if args.questions:
            check_askable(load_all(args.questions))
        claim_sets = [(path, load_claims(path)) for path in args.claims]
        check_out_dir(args.out)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.top_k is not None and args.top_k < 1:
        print(f"error: --top-k must be at least 1, got {args.top_k}", file=sys.stderr)
        return EXIT_USAGE
    built = engine is None
    if engine is None:
        from rag.config import Settings
        from rag.engine import Engine

        engine = Engine(Settings())
    if claim_sets:
        run_claim_sets(claim_sets, args.out, engine)
        if not args.questions:
            return EXIT_OK
    if built and not args.ingest and store_is_empty(engine):
        from rag.config import DEFAULT_CORPUS

        print(f"the store is empty: ingesting the sample corpus {DEFAULT_CORPUS}",
              file=sys.stderr)
        args.ingest = [str(DEFAULT_CORPUS)]
    problem = answerer_problem(engine, args.answerer)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_USAGE
    if args.ingest:
        print(engine.ingest(args.ingest).summary(), file=sys.stderr)
    summary = run_eval(
        engine, args.questions, args.out, answerer=args.answerer, minimums=minimums,
        maximums=maximums, top_k=args.top_k, grounder=Grounder(threshold=args.threshold),
        use_judge=not args.no_judge,
    )
    return EXIT_BELOW_MIN if summary["failures"] else EXIT_OK


def load_claims(path: str) -> list[dict[str, Any]]:
    from rag.eval.claim_set import load

    return load(path)


def run_claim_sets(claim_sets: Sequence[tuple[str, list[dict[str, Any]]]], out: str | Path,
                   engine: Any = None) -> None:
    """The claim check (as the engine would run it) on each labeled claim set: a table per
    file, and ``claims.json`` in ``out``."""
    from rag.eval.claim_set import evaluate

    checker = getattr(engine, "claim_checker", None) if engine is not None else None
    results = [evaluate(path, checker) for path, _ in claim_sets]
    (Path(out) / "claims.json").write_text(json.dumps(results, ensure_ascii=False, indent=2)
                                           + "\n", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
