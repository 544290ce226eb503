"""Writing encoder graphs with the ``onnx`` helper API (no torch, nothing downloaded).

``Graph`` accumulates nodes and initializers under unique names; ``int8_per_channel``
and ``Graph.int8_matmul`` are the "fast" variants' weight format, shared by both
models: int8 per output channel run by ``DynamicQuantizeMatMul`` (VNNI kernels).
Per-tensor int8, ``quantize_dynamic``'s default, drifted to cosine 0.98 on e5, so it is
not used.
"""

from __future__ import annotations

from typing import Any

import numpy as np

MS_DOMAIN = "com.microsoft"


def int8_per_channel(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``w`` (out, in) as int8 (out, in) and one float32 scale per output row."""
    scale = np.abs(w).max(axis=1) / 127.0
    scale[scale == 0] = 1.0
    q = np.clip(np.rint(w / scale[:, None]), -127, 127).astype(np.int8)
    return q, scale.astype(np.float32)


class Graph:
    """Accumulates nodes and initializers with unique names."""

    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self._n = 0

    def name(self, hint: str) -> str:
        self._n += 1
        return f"{hint}_{self._n}"

    def const(self, array: np.ndarray, hint: str) -> str:
        from onnx import numpy_helper

        name = self.name(hint)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def op(self, op_type: str, inputs: list[str], hint: str = "", domain: str = "",
           **attrs: object) -> str:
        """One node with one output; its name is returned."""
        return self.ops(op_type, inputs, 1, hint, domain, **attrs)[0]

    def ops(self, op_type: str, inputs: list[str], outputs: int, hint: str = "",
            domain: str = "", **attrs: object) -> list[str]:
        """One node with ``outputs`` outputs (an empty name skips an optional one)."""
        from onnx import helper

        names = [self.name(hint or op_type.lower()) for _ in range(outputs)]
        self.nodes.append(helper.make_node(op_type, inputs, names, domain=domain or None,
                                           **attrs))
        return names

    def int8_matmul(self, x: str, w: np.ndarray, bias: np.ndarray | None = None) -> str:
        """``x @ w.T (+ bias)`` with ``w`` (out, in) quantised to int8 per output channel."""
        q, scale = int8_per_channel(w)
        inputs = [x, self.const(q.T, "w"), self.const(scale, "s"),
                  self.const(np.zeros(len(scale), np.int8), "zp")]
        if bias is not None:
            inputs.append(self.const(bias.astype(np.float32), "b"))
        return self.op("DynamicQuantizeMatMul", inputs, domain=MS_DOMAIN)

    def model(self, name: str, inputs: list[Any], outputs: list[Any], producer: str,
              opset: int = 21) -> Any:  # onnx.ModelProto
        from onnx import helper

        graph = helper.make_graph(self.nodes, name, inputs, outputs, self.inits)
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset),
                                                       helper.make_opsetid(MS_DOMAIN, 1)],
                                 producer_name=producer)
