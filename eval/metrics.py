"""Pure metric functions over file names and answer text, so each one can be checked by hand.

Everything is scored at FILE level: a question lists the files that answer it,
and retrieval/citations are reduced to the files they point at. Retrieved
files are de-duplicated keeping the first (best-ranked) occurrence, because
several chunks of one article must not push another article out of hit@k.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

# name -> (better direction, what it measures); the keys of summary.json.
METRICS: dict[str, tuple[str, str]] = {
    "hit@1": ("higher", "answerable: an expected file is the top retrieved file"),
    "hit@k": ("higher", "answerable: an expected file is among the top-k retrieved files"),
    "mrr": ("higher", "answerable: mean reciprocal rank of the first expected file"),
    "citation_precision": ("higher", "answers citing something: share of cited files expected"),
    "citation_recall": ("higher", "answerable: the answer cites at least one expected file"),
    "groundedness": ("higher", "answers: share of sentences supported by their cited passage"),
    "expected_content": ("higher", "answerable with expect_any: answer contains one string"),
    "refusal_accuracy": ("higher", "unanswerable: the assistant declined"),
    "false_refusal_rate": ("lower", "answerable: the assistant declined"),
    "answer_language": ("higher", "answers: the answer's detected language is the question's"),
    "latency_p50_ms": ("lower", "median time per question"),
    "latency_p95_ms": ("lower", "95th percentile time per question"),
    "judge_faithfulness": ("higher", "optional LLM judge: share of answers judged faithful"),
    "top_cited": ("higher", "answerable: the first cited file is an expected one"),
    "top_cited_paraphrased": ("higher", "paraphrased answerable: the first cited file is expected"),
    "near_topic_declined": ("higher", "near-topic unanswerable: the assistant declined"),
    "answerable_not_stated": ("lower", "answerable: answered 'the documents do not say this "
                                       "directly' with the closest passages"),
    "near_topic_not_answered": ("higher", "near-topic unanswerable: declined or 'not stated'"),
    "top_cited_first": ("higher", "first turns of conversations: first cited file expected"),
    "top_cited_follow_up": ("higher", "follow-up turns: the first cited file is expected"),
    "top_cited_topic_change": ("higher", "topic-change turns: the first cited file is expected"),
}
# Subsets that get their own top-cited figure: summary key -> (row field, value).
TOP_CITED_SUBSETS = {
    "top_cited_paraphrased": ("kind", "paraphrase"),
    "top_cited_first": ("turn_kind", "first"),
    "top_cited_follow_up": ("turn_kind", "follow-up"),
    "top_cited_topic_change": ("turn_kind", "topic-change"),
}
TURN_KINDS = ("first", "follow-up", "topic-change")


class UnknownMetricError(ValueError):
    """A threshold names a metric that does not exist (the CLI exits 2)."""


@dataclass(frozen=True)
class Question:
    """One line of a question file; empty ``sources`` means the assistant should decline."""

    id: str
    question: str
    sources: tuple[str, ...] = ()
    expect_any: tuple[str, ...] = ()
    lang: str = ""
    kind: str = ""  # direct, paraphrase, near-topic, off-topic (optional)
    conversation: str = ""  # the conversation a turn belongs to ("" = a single question)
    turn_kind: str = ""  # first, follow-up, topic-change (turns only)

    @property
    def answerable(self) -> bool:
        return bool(self.sources)


def _strings(raw: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = raw.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{where}: {key!r} must be a list of strings")
    return tuple(value)


def _question(raw: Any, where: str, qid: str, **extra: str) -> Question:
    """One question (or one turn of a conversation) from its JSON object."""
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: each question must be a JSON object")
    text = raw.get("question")
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{where}: 'question' must be a non-empty string")
    return Question(qid, text.strip(), _strings(raw, "sources", where),
                    _strings(raw, "expect_any", where), str(raw.get("lang", "")),
                    str(raw.get("kind", "")), **extra)  # type: ignore[arg-type]


def _turns(raw: dict[str, Any], where: str, cid: str) -> list[Question]:
    """A conversation record: ``{"id", "lang", "turns": [{question, sources, kind}, ...]}``."""
    turns = raw["turns"]
    if not isinstance(turns, list) or not turns:
        raise ValueError(f"{where}: 'turns' must be a non-empty list")
    out = []
    for i, turn in enumerate(turns, 1):
        kind = turn.get("kind", "first" if i == 1 else "follow-up") if isinstance(
            turn, dict) else ""
        if kind not in TURN_KINDS:
            raise ValueError(f"{where}: turn {i}: 'kind' must be one of {', '.join(TURN_KINDS)}")
        q = _question(turn, f"{where}: turn {i}", f"{cid}.{i}", conversation=cid, turn_kind=kind)
        out.append(replace(q, lang=q.lang or str(raw.get("lang", "")), kind=""))
    return out


def load_questions(path: str | Path) -> list[Question]:
    """Read a JSONL question file, failing with the line number on malformed input.

    A line is one question, or a conversation (``turns``) that becomes one
    question per turn, in order, with ``conversation`` set so the runner passes
    the earlier turns as history.
    """
    questions: list[Question] = []
    seen: set[str] = set()
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{where}: not valid JSON ({exc.msg})") from exc
            if not isinstance(raw, dict):
                raise ValueError(f"{where}: each line must be a JSON object")
            qid = str(raw.get("id") or f"q{number}")
            if qid in seen:
                raise ValueError(f"{where}: duplicate id {qid!r}")
            seen.add(qid)
            if "turns" in raw:
                questions.extend(_turns(raw, where, qid))
            else:
                questions.append(_question(raw, where, qid))
    if not questions:
        raise ValueError(f"{path}: no questions")
    return questions


def first_cited_correct(cited: Sequence[str], expected: Iterable[str]) -> float:
    """1.0 when the first citation (what a reader sees first) points at an expected file."""
    return 1.0 if cited and cited[0] in set(expected) else 0.0


def dedupe(items: Iterable[T]) -> list[T]:
    """Items in order, keeping only the first occurrence of each."""
    seen: set[T] = set()
    out: list[T] = []
    for item in items:
        if item not in seen:
            seen.add(item)
            out.append(item)
    return out


def hit_at(ranked: Sequence[str], expected: Iterable[str], k: int) -> float:
    """1.0 when an expected file is among the first ``k`` distinct retrieved files."""
    wanted = set(expected)
    return 1.0 if any(s in wanted for s in dedupe(ranked)[:k]) else 0.0


def reciprocal_rank(ranked: Sequence[str], expected: Iterable[str]) -> float:
    """1/rank of the first expected file among distinct retrieved files, 0 when absent."""
    wanted = set(expected)
    for rank, source in enumerate(dedupe(ranked), 1):
        if source in wanted:
            return 1.0 / rank
    return 0.0


def citation_precision(cited: Sequence[str], expected: Iterable[str]) -> float | None:
    """Share of distinct cited files that are expected; None when nothing is cited."""
    files = dedupe(cited)
    if not files:
        return None
    wanted = set(expected)
    return sum(1 for s in files if s in wanted) / len(files)


def citation_recall(cited: Sequence[str], expected: Iterable[str]) -> float:
    """1.0 when at least one expected file is cited (a declined answer cites nothing)."""
    wanted = set(expected)
    return 1.0 if any(s in wanted for s in cited) else 0.0


def contains_expected(answer: str, expect_any: Iterable[str]) -> float:
    """1.0 when the answer contains one of the strings, ignoring case."""
    text = answer.casefold()
    return 1.0 if any(e.casefold() in text for e in expect_any if e) else 0.0


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolation percentile (numpy's default), None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(pos), math.ceil(pos)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def mean(values: Iterable[float | None]) -> float | None:
    """Mean of the values that apply (not None); None when none apply."""
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


@dataclass
class Outcome:
    """What one question produced, reduced to what the metrics need."""

    question: Question
    answer: str
    declined: bool
    cited_sources: list[str]
    retrieved_sources: list[str]
    latency_ms: float
    groundedness: float | None = None  # share of supported sentences; None if nothing to check
    judge: float | None = None  # LLM judge verdict (1 faithful, 0 not), when configured
    extra: dict[str, Any] = field(default_factory=dict)
    status: str = ""  # answered, not_stated or declined (rag.types); "" = from ``declined``

    def __post_init__(self) -> None:
        if self.declined or not self.status:
            self.status = "declined" if self.declined else "answered"


def detect(text: str) -> str:
    """ISO 639-1 code of ``text`` by py3langid (the project's detector), short texts too."""
    import py3langid

    return str(py3langid.classify(text)[0]) if text.strip() else "und"


def answer_language_match(answer: str, question_lang: str) -> float | None:
    """1.0 when the answer (markers and framing lines removed) is in the question's language."""
    from rag.groundedness import answer_claims

    text = " ".join(c.text for c in answer_claims(answer))
    if not text.strip() or not question_lang or question_lang == "und":
        return None
    return 1.0 if detect(text) == question_lang else 0.0


def score_question(outcome: Outcome, k: int) -> dict[str, float | None]:
    """Per-question metric values; None where a metric does not apply to this question."""
    q = outcome.question
    answered = not outcome.declined
    cited = outcome.cited_sources if answered else []
    row: dict[str, Any] = dict.fromkeys(
        ("hit@1", "hit@k", "rr", "citation_recall", "expected_content",
         "false_refusal", "refused", "top_cited", "not_stated", "not_answered")
    )
    row["status"] = outcome.status
    not_stated = 1.0 if outcome.status == "not_stated" else 0.0
    if q.answerable:
        row["hit@1"] = hit_at(outcome.retrieved_sources, q.sources, 1)
        row["hit@k"] = hit_at(outcome.retrieved_sources, q.sources, k)
        row["rr"] = reciprocal_rank(outcome.retrieved_sources, q.sources)
        row["citation_recall"] = citation_recall(cited, q.sources)
        row["top_cited"] = first_cited_correct(cited, q.sources)
        row["false_refusal"] = 0.0 if answered else 1.0
        row["not_stated"] = not_stated
        if q.expect_any:
            row["expected_content"] = (
                contains_expected(outcome.answer, q.expect_any) if answered else 0.0
            )
    else:
        row["refused"] = 1.0 if outcome.declined else 0.0
        row["not_answered"] = max(row["refused"], not_stated)
    # An unanswerable question answered with citations has no expected file: precision 0.
    row["citation_precision"] = citation_precision(cited, q.sources)
    row["groundedness"] = outcome.groundedness if answered else None
    row["answer_language"] = (
        answer_language_match(outcome.answer, q.lang or detect(q.question)) if answered else None)
    row["judge_faithfulness"] = outcome.judge if answered else None
    return row


def summarize(
    rows: Sequence[Mapping[str, Any]], latencies: Sequence[float]
) -> dict[str, float | None]:
    """Aggregate per-question values into the summary metrics (keys of ``METRICS``)."""

    def col(key: str) -> list[float | None]:
        return [r.get(key) for r in rows]

    summary: dict[str, float | None] = {
        "hit@1": mean(col("hit@1")),
        "hit@k": mean(col("hit@k")),
        "mrr": mean(col("rr")),
        "citation_precision": mean(col("citation_precision")),
        "citation_recall": mean(col("citation_recall")),
        "groundedness": mean(col("groundedness")),
        "expected_content": mean(col("expected_content")),
        "refusal_accuracy": mean(col("refused")),
        "false_refusal_rate": mean(col("false_refusal")),
        "answer_language": mean(col("answer_language")),
        "latency_p50_ms": percentile(latencies, 50),
        "latency_p95_ms": percentile(latencies, 95),
        "judge_faithfulness": mean(col("judge_faithfulness")),
        "top_cited": mean(col("top_cited")),
        "near_topic_declined": mean(r.get("refused") for r in rows
                                    if r.get("kind") == "near-topic"),
        "answerable_not_stated": mean(col("not_stated")),
        "near_topic_not_answered": mean(r.get("not_answered") for r in rows
                                        if r.get("kind") == "near-topic"),
    }
    for name, (field_name, value) in TOP_CITED_SUBSETS.items():
        summary[name] = mean(r.get("top_cited") for r in rows if r.get(field_name) == value)
    return summary


def parse_thresholds(items: Iterable[str]) -> dict[str, float]:
    """``["hit@1=0.8", ...]`` -> ``{"hit@1": 0.8}``; unknown names raise UnknownMetricError."""
    out: dict[str, float] = {}
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep:
            raise ValueError(f"threshold {item!r} must look like METRIC=VALUE")
        if name not in METRICS:
            raise UnknownMetricError(
                f"unknown metric {name!r}; known metrics: {', '.join(METRICS)}"
            )
        try:
            out[name] = float(value)
        except ValueError as exc:
            raise ValueError(f"threshold {item!r}: {value!r} is not a number") from exc
    return out


def check_thresholds(
    summary: Mapping[str, float | None],
    minimums: Mapping[str, float],
    maximums: Mapping[str, float] | None = None,
) -> list[str]:
    """Failed thresholds as readable lines; a metric that could not be computed fails."""
    failures: list[str] = []
    for name, bound in minimums.items():
        value = summary.get(name)
        if value is None:
            failures.append(f"{name}: not computed (needed >= {bound:g})")
        elif value < bound:
            failures.append(f"{name}: {value:.4g} < {bound:g}")
    for name, bound in (maximums or {}).items():
        value = summary.get(name)
        if value is None:
            failures.append(f"{name}: not computed (needed <= {bound:g})")
        elif value > bound:
            failures.append(f"{name}: {value:.4g} > {bound:g}")
    return failures
