"""Read ``.safetensors`` files as memory maps, without the ``safetensors`` package or torch.

The format is an 8-byte little-endian header length, a JSON header naming each tensor's
dtype, shape and byte range, then the raw bytes. Tensors are memory maps (the graph
builder reads them once); the 805 MB word-embedding table is read row by row at run
time (``RowReader``), only the rows a text uses, so a start does not load it.
"""

from __future__ import annotations

import contextlib
import json
import os
import struct
from pathlib import Path

import numpy as np

DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": None, "I64": np.int64,
          "I32": np.int32, "I8": np.int8, "U8": np.uint8}


class SafetensorsError(ValueError):
    """Not a safetensors file we can read, or a tensor is missing; the message is one line."""


def read_header(path: Path) -> tuple[dict[str, dict], int]:
    """The tensor table and the offset where the data starts."""
    try:
        with path.open("rb") as f:
            (length,) = struct.unpack("<Q", f.read(8))
            if not 2 <= length <= 100_000_000:
                raise SafetensorsError(f"{path} is not a safetensors file (header length "
                                       f"{length})")
            header = json.loads(f.read(length))
    except (OSError, struct.error, ValueError, UnicodeDecodeError) as exc:
        if isinstance(exc, SafetensorsError):
            raise
        raise SafetensorsError(f"{path} is not a readable safetensors file: {exc}") from exc
    header.pop("__metadata__", None)
    return header, 8 + length


class Tensors:
    """The tensors of one file by name, each a read-only memory map."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.table, self._start = read_header(self.path)
        self._map = np.memmap(self.path, dtype=np.uint8, mode="r")

    def __contains__(self, name: str) -> bool:
        return name in self.table

    def names(self) -> list[str]:
        return sorted(self.table)

    def get(self, name: str) -> np.ndarray:
        """The tensor ``name`` (a view of the map: copy it before changing it)."""
        entry = self.table.get(name)
        if entry is None:
            raise SafetensorsError(f"{self.path.name} has no tensor {name!r}")
        dtype = DTYPES.get(entry["dtype"])
        if dtype is None:
            raise SafetensorsError(f"{self.path.name}: tensor {name!r} is {entry['dtype']}, "
                                   "which this reader does not handle")
        begin, end = entry["data_offsets"]
        raw = self._map[self._start + begin : self._start + end]
        return raw.view(dtype).reshape(entry["shape"])

    def rows(self, name: str) -> RowReader:
        """Random access to the rows of a float32 matrix, read from the file on demand."""
        entry = self.table.get(name)
        if entry is None or entry["dtype"] != "F32" or len(entry["shape"]) != 2:
            raise SafetensorsError(f"{self.path.name} has no float32 matrix {name!r}")
        return RowReader(self.path, self._start + entry["data_offsets"][0], *entry["shape"])


class RowReader:
    """Rows of a float32 matrix in a file, read with ``pread`` (only the rows asked for).

    A memory map of the 805 MB embedding table looked the same but was not: the kernel
    maps page-cache neighbours of each row touched (large folios, read-ahead), and
    embedding the corpus sentences (4,000 tokens) put 680 MB of it in the process's RSS.
    """

    def __init__(self, path: Path, offset: int, rows: int, cols: int) -> None:
        self._fd = os.open(path, os.O_RDONLY)
        self._offset, self.rows, self.cols = offset, rows, cols
        self._row_bytes = cols * 4

    def __call__(self, ids: np.ndarray) -> np.ndarray:
        """The rows ``ids`` (any shape) as float32, shape ``ids.shape + (cols,)``."""
        unique, inverse = np.unique(ids, return_inverse=True)
        if len(unique) and (unique[0] < 0 or unique[-1] >= self.rows):
            raise IndexError(f"row id out of range 0..{self.rows - 1}")
        data = b"".join(os.pread(self._fd, self._row_bytes, self._offset + int(i) * self._row_bytes)
                        for i in unique)
        table = np.frombuffer(data, dtype=np.float32).reshape(len(unique), self.cols)
        return table[inverse.reshape(-1)].reshape(*ids.shape, self.cols)

    def __del__(self) -> None:
        with contextlib.suppress(OSError, AttributeError):
            os.close(self._fd)
