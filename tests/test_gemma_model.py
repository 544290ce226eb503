"""The real EmbeddingGemma-300M (installed by `make test`): its tokenizer against
``tokenizers``, the exact variant against sentence-transformers (the ``st`` extra), the fast
one against the exact one. Skipped only when the model is not installed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from rag.bench.corpus import corpus_sentences

from rag.config import PROJECT_ROOT, Settings
from rag.embedding import make_embedder
from rag.embedding.gemma import installed

pytestmark = pytest.mark.skipif(
    not installed(), reason="EmbeddingGemma is not installed "
                            "(python -m rag.models install embeddinggemma-300m)")

HARD_TEXTS = [
    "Zażółć gęślą jaźń  \t tab\n newline\r\n",
    "Romanian: ş ţ (cedilla) and ș ț (comma), ĂÂÎȘȚ",
    "Ｆｕｌｌｗｉｄｔｈ ﬁ ligature, NBSP\u00a0here, é vs e\u0301",
    "emoji 🙂🙂 中文字 العربية עברית",
    "   leading spaces and trailing   ",
    "▁ literal metaspace ▁▁ and x▁▁▁y",
    "<bos> literal <eos>specials<pad> and <unused3> <start_of_image> <table>",
    "",
]
# Over 256 tokens apart: the sliding layers' band mask decides what each token sees.
LONG_TEXT = " ".join(["Ambasadorowie NATO spotkali się z delegacją Rosji w Brukseli, aby "
                      "omówić bezpieczeństwo w Europie."] * 30)


def _texts() -> list[str]:
    return [s.text for s in corpus_sentences()]


ST_SCRIPT = """
import json, sys, numpy as np, torch
from sentence_transformers import SentenceTransformer
torch.set_num_threads(2)
folder, texts, out = sys.argv[1], json.load(open(sys.argv[2], encoding="utf-8")), sys.argv[3]
m = SentenceTransformer(folder, device="cpu", local_files_only=True)
for role in ("query", "document"):
    v = getattr(m, "encode_" + role)(texts, batch_size=8, convert_to_numpy=True,
                                     normalize_embeddings=True)
    np.save(out + "/" + role + ".npy", v)
"""


@pytest.fixture(scope="module")
def exact():
    return make_embedder(Settings(embedder="gemma-exact"))


@pytest.fixture(scope="module")
def exact_vectors(exact) -> dict[str, np.ndarray]:
    texts = [*_texts(), LONG_TEXT]
    return {"query": exact.embed_queries(texts), "document": exact.embed_passages(texts)}


def test_tokenizer_gives_the_ids_of_tokenizer_json(exact) -> None:
    from rag.embedding.onnxrt.tokenizer import load_tokenizer

    reference = load_tokenizer(exact.model_dir / "tokenizer.json")
    for prompt in (exact.query_prompt, exact.document_prompt, ""):
        for text in [*_texts(), *HARD_TEXTS, LONG_TEXT]:
            want = reference.encode(prompt + text, add_special_tokens=False).ids
            assert exact.tokenizer.ids([prompt + text])[0] == want, (prompt, text[:40])


@pytest.mark.st
def test_exact_variant_matches_sentence_transformers(exact, exact_vectors, tmp_path: Path
                                                     ) -> None:
    """Every corpus sentence in both roles, and a text longer than the band's reach.
    sentence-transformers runs in its own process: beside onnxruntime's spinning threads
    torch ran 3x slower on 2 cores."""
    pytest.importorskip("sentence_transformers")
    texts = [*_texts(), LONG_TEXT]
    tokens = len(exact.tokenizer.ids([exact.query_prompt + LONG_TEXT])[0])
    assert 300 < tokens < 2046  # one window, longer than the sliding layers' reach (256)
    (tmp_path / "texts.json").write_text(json.dumps(texts), encoding="utf-8")
    subprocess.run([sys.executable, "-c", ST_SCRIPT, str(exact.model_dir),
                    str(tmp_path / "texts.json"), str(tmp_path)], check=True, cwd=PROJECT_ROOT,
                   timeout=1200, env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
    for role, ours in exact_vectors.items():
        cosines = (ours * np.load(tmp_path / f"{role}.npy")).sum(axis=1)
        worst = int(np.argmin(cosines))
        assert cosines.min() >= 0.9999, (role, texts[worst][:60], float(cosines.min()))


def test_fast_variant_stays_close_to_exact(exact, exact_vectors) -> None:
    """int8 weights: measured cosine to float32 0.955-0.99 (mean 0.98) on these sentences."""
    fast = make_embedder(Settings(embedder="gemma-fast"))
    assert fast.name == exact.name + "-fast" and fast.dim == exact.dim == 768
    texts = _texts()  # the corpus sentences (the long repeated text drifts more: 0.93)
    cosines = np.concatenate([(fast.embed_queries(texts) * exact_vectors["query"][:-1]).sum(1),
                              (fast.embed_passages(texts) * exact_vectors["document"][:-1]
                               ).sum(1)])
    assert cosines.min() >= 0.94 and cosines.mean() >= 0.975, (cosines.min(), cosines.mean())
