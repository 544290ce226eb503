"""Write the claim set and its fixed dev/test split (``python -m rag.eval.claims.split``).

Split by quote (every claim of a quote lands in the same half), stratified by
article and by whether the quote has a swapped-number claim: each stratum's quotes
are shuffled with a fixed seed and alternate dev/test. Each item carries the passage
an answerer would have seen around its quote (the quote's sentence and its
neighbours, as the project's splitter cuts the article), so the set is self-contained.
Choose thresholds on dev; report test.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from rag.eval.claims.claims_src import QUOTES

SEED = 24
HERE = Path(__file__).resolve().parent
CORPUS = HERE.parent.parent / "corpus"
FILES = sorted(p.name for p in CORPUS.glob("*.txt"))
NEIGHBOURS = 1  # sentences on each side of the quote's


def _normal(text: str) -> str:
    from rag.answering.claims import _normalise

    return _normalise(text)


def passage_around(quote: str, file_name: str) -> str:
    """The sentence holding ``quote`` with ``NEIGHBOURS`` sentences either side."""
    from rag.chunking import split_sentences
    from rag.loading import load_document

    text = load_document(CORPUS / file_name, max_bytes=10_000_000).text
    sentences = split_sentences(text)
    wanted = _normal(quote).strip(" \"'")
    for i, sentence in enumerate(sentences):
        if wanted in _normal(sentence) or _normal(sentence).strip(" \"'") in wanted:
            j = i
            while wanted not in _normal(" ".join(sentences[i : j + 1])):
                j += 1
            return " ".join(sentences[max(0, i - NEIGHBOURS) : j + 1 + NEIGHBOURS])
    raise ValueError(f"quote not in {file_name}: {quote[:60]}")


def items() -> list[dict[str, Any]]:
    """Every claim as one JSON object, grouped by quote (``quote_id``)."""
    out = []
    for q, (file_index, quote, claims) in enumerate(QUOTES, start=1):
        source = FILES[file_index]
        passage = passage_around(quote, source)
        for j, (kind, lang, claim) in enumerate(claims, start=1):
            out.append({"id": f"q{q:02d}-{j}", "quote_id": f"q{q:02d}", "source": source,
                        "quote": quote, "passage": passage, "claim": claim, "lang": lang,
                        "label": "faithful" if kind == "restatement" else "unfaithful",
                        "kind": kind})
    return out


def split(rows: list[dict[str, Any]], seed: int = SEED
          ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Dev and test halves by quote, alternating within each stratum after a seeded shuffle."""
    rng = random.Random(seed)
    numbered = {r["quote_id"] for r in rows if r["kind"] == "number"}
    strata: dict[tuple[str, bool], list[str]] = {}
    for row in rows:
        quotes = strata.setdefault((row["source"], row["quote_id"] in numbered), [])
        if row["quote_id"] not in quotes:
            quotes.append(row["quote_id"])
    dev_quotes: set[str] = set()
    turn = 0
    for stratum in sorted(strata):
        quotes = strata[stratum]
        rng.shuffle(quotes)
        for quote_id in quotes:
            if turn % 2 == 0:
                dev_quotes.add(quote_id)
            turn += 1
    return ([r for r in rows if r["quote_id"] in dev_quotes],
            [r for r in rows if r["quote_id"] not in dev_quotes])


def write(rows: list[dict[str, Any]], path: Path) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def main() -> None:
    dev, test = split(items())
    write(dev, HERE / "claims-dev.jsonl")
    write(test, HERE / "claims-test.jsonl")
    print(f"claims-dev.jsonl: {len(dev)} claims; claims-test.jsonl: {len(test)} claims")


if __name__ == "__main__":
    main()
