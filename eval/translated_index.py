"""Would an English translation of every stored sentence help retrieval? (issue 11 experiment)

Not part of the engine, on purpose: translating needs the local LLM (``make install-llm``)
at about 6 s per sentence on this 2-core machine (77 sentences of the sample corpus: 7.5
minutes), which no ingest of a real folder can afford, and on the test split it gained two
questions (docs/evaluation.md, "Techniques, one by one"). It stays here so the figures can be
re-measured when a faster translator or machine appears::

    python -m rag.eval.translated_index eval/questions/single-dev.jsonl \
        [--test eval/questions/single-test.jsonl] [--weight 0.7] \
        [--cache eval/translations/sample-corpus.en.json]

It compares, as file-level hit@1 of the best sentence: the engine's own search (cosine and
pseudo-relevance feedback, ``Retriever.search``) and a fused score ``(1 - w) x cosine(question,
sentence) + w x cosine(question, the sentence's English translation)``; and, for declining,
how many near-topic questions the best score declines when at most 5 % of answerable ones are.
Translations are read from ``--cache`` (keyed by sentence text) and only missing ones are
asked of the local model, then written back. The sample corpus's cache is committed.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from rag.eval.metrics import Question, load_questions

from rag.glosses import SYSTEM as GLOSS_SYSTEM
from rag.glosses import translation_prompt

DEFAULT_CACHE = Path(__file__).parent / "translations" / "sample-corpus.en.json"
# The prompt is the glosses' own (rag.glosses), which grew out of this experiment.
SYSTEM = GLOSS_SYSTEM.replace("{target}", "English")


def translate_missing(records: Sequence[Any], cache: dict[str, str],
                      complete: Callable[[str], str]) -> int:
    """Fill ``cache`` for every non-English record; ``complete`` sends one prompt to the LLM."""
    asked = 0
    by_file: dict[str, list[str]] = {}
    for record in records:
        texts = by_file.setdefault(record.meta.source, [])
        if record.meta.language != "en" and record.text not in cache:
            title = texts[0] if texts else record.text
            cache[record.text] = complete(
                translation_prompt(record.text, record.meta.language, title, texts))
            asked += 1
        texts.append(record.text)
    return asked


@contextmanager
def local_completion(max_tokens: int = 200) -> Iterator[Callable[[str], str]]:
    """One-prompt completions from the local model of the settings, greedy (reproducible)."""
    from rag.answering.local_server import LocalServer
    from rag.config import Settings
    from rag.models import resolve
    from rag.openai_client import make_client

    path, sha256 = resolve(Settings().llm.model_path)
    server = LocalServer(path, sha256, context_window=2048)
    client = make_client(server.start(), server.api_key, timeout_s=300)

    def complete(prompt: str) -> str:
        reply = client.chat.completions.create(
            model="local", temperature=0, max_tokens=max_tokens,
            messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}])
        return (reply.choices[0].message.content or "").strip()

    try:
        yield complete
    finally:
        client.close()
        server.stop()


def fused_scores(queries: np.ndarray, sentences: np.ndarray, translations: np.ndarray,
                 weight: float) -> np.ndarray:
    """Question x sentence scores: the sentence's cosine and its translation's, mixed."""
    return (1 - weight) * queries @ sentences.T + weight * queries @ translations.T


def hit_at_1(best_sources: Sequence[str], questions: Sequence[Question]) -> dict[str, float]:
    """File-level hit@1 over answerable questions, overall and per question kind."""
    hits: dict[str, list[bool]] = {"all": []}
    for source, q in zip(best_sources, questions, strict=True):
        if q.answerable:
            for key in ("all", q.kind or "other"):
                hits.setdefault(key, []).append(source in q.sources)
    return {key: float(np.mean(values)) for key, values in hits.items()}


def near_topic_declined(best: np.ndarray, questions: Sequence[Question]) -> float:
    """Near-topic questions declined when the threshold declines at most 5 % of answerable."""
    answerable = np.array([b for b, q in zip(best, questions, strict=True) if q.answerable])
    near = np.array([b for b, q in zip(best, questions, strict=True) if q.kind == "near-topic"])
    if not len(answerable) or not len(near):
        return float("nan")
    return float(np.mean(near < np.quantile(answerable, 0.05, method="lower")))


def measure(engine: Any, records: Sequence[Any], translations: np.ndarray,
            questions: Sequence[Question], weight: float) -> dict[str, dict[str, float]]:
    """Both searches on one question list: {search: {figure: value}}."""
    queries = engine.embedder.embed_queries([q.question for q in questions])
    sentences = np.stack([r.vector for r in records])
    sources = [r.meta.source for r in records]
    fused = fused_scores(queries, sentences, translations, weight)
    engine_top, engine_best = [], []
    for vector in queries:
        plain, ranked = engine.retriever.search(vector, 5)
        engine_top.append(str(ranked[0].metadata.get("source", "")) if ranked else "")
        engine_best.append(plain[0].score if plain else 0.0)
    results = {}
    for name, top, best in (
        ("engine (cosine + feedback)", engine_top, np.array(engine_best)),
        (f"fused with translations, w={weight:g}", [sources[i] for i in fused.argmax(1)],
         fused.max(1)),
    ):
        results[name] = {**hit_at_1(top, questions),
                         "near-topic declined": near_topic_declined(best, questions)}
    return results


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("questions", nargs="+")
    parser.add_argument("--test", nargs="*", default=[])
    parser.add_argument("--weight", type=float, default=0.7)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    args = parser.parse_args(argv)
    from rag.engine import Engine

    engine = Engine()
    records = [r for page in engine.retriever.store.iter_records(with_vectors=True) for r in page]
    saved = json.loads(args.cache.read_text("utf-8")) if args.cache.exists() else {}
    cache = saved.setdefault("translations", {})
    if any(r.meta.language != "en" and r.text not in cache for r in records):
        with local_completion() as complete:
            print(f"translated {translate_missing(records, cache, complete)} sentences")
        args.cache.write_text(json.dumps(saved, ensure_ascii=False, indent=1), "utf-8")
    translations = engine.embedder.embed_passages([cache.get(r.text, r.text) for r in records])
    for label, files in (("dev", args.questions), ("test", args.test)):
        questions = [q for f in files for q in load_questions(f) if not q.conversation]
        if not questions:
            continue
        for name, figures in measure(engine, records, translations, questions,
                                     args.weight).items():
            shown = ", ".join(f"{k} {v:.3f}" for k, v in figures.items())
            print(f"{label} ({len(questions)} questions), {name}: hit@1 {shown}")


if __name__ == "__main__":
    main()
