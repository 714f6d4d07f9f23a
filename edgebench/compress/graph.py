"""What pruning, clustering and the metrics share about an ONNX graph: its weight layers and safe writes.

A "weight layer" is a Conv, ConvTranspose, Gemm or MatMul whose weight (input 1) is a constant: a float
initializer, or in a quantized QDQ graph a DequantizeLinear of an integer initializer (and the
MatMulInteger/ConvInteger of dynamic quantization). The first and last
weight layers in graph order are left alone by default, as the compression literature does: they hold few
weights and the accuracy is most sensitive to them.
"""

from __future__ import annotations

import fnmatch
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from edgebench.errors import EdgebenchError, ExitStatus

WEIGHT_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul", "MatMulInteger", "ConvInteger")
INTEGER_OPS = ("MatMulInteger", "ConvInteger")  # dynamic quantization: integer weight, zero point at input 3


@dataclass(frozen=True)
class WeightLayer:
    node: str  # node name ("/conv2/Conv"), or the weight's name where the node has none
    op: str
    weight: str  # name of the float initializer (or of the integer one behind a DequantizeLinear)
    bias: str | None


@dataclass(frozen=True)
class LayerSelection:
    """Which weight layers a step may touch: fnmatch patterns over node or weight names."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    first_last: bool = False  # True: the first and last weight layers may be touched too

    def pick(self, layers: Sequence[WeightLayer]) -> list[WeightLayer]:
        edges = set() if self.first_last or len(layers) < 3 else {layers[0].node, layers[-1].node}
        chosen = []
        for layer in layers:
            def hit(patterns: tuple[str, ...]) -> bool:
                return any(fnmatch.fnmatchcase(n, p) for p in patterns for n in (layer.node, layer.weight))
            if self.include and not hit(self.include):
                continue
            if hit(self.exclude) or (layer.node in edges and not (self.include and hit(self.include))):
                continue
            chosen.append(layer)
        return chosen


@dataclass
class Graph:
    """A loaded ONNX model with its initializers as numpy arrays, edited in place and saved once."""

    model: Any
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path) -> "Graph":
        import onnx
        from onnx import numpy_helper

        model = onnx.load(str(path))
        return cls(model, {i.name: numpy_helper.to_array(i) for i in model.graph.initializer})

    def producers(self) -> dict[str, Any]:
        return {out: n for n in self.model.graph.node for out in n.output}

    def consumers(self, tensor: str) -> list[Any]:
        return [n for n in self.model.graph.node if tensor in n.input]

    def weight_layers(self) -> list[WeightLayer]:
        """Weight layers in graph order, seeing through DequantizeLinear to the stored integer weight."""
        producers = self.producers()
        layers = []
        for node in self.model.graph.node:
            if node.op_type not in WEIGHT_OPS or len(node.input) < 2:
                continue
            weight = self._constant_source(node.input[1], producers)
            if weight is None:
                continue
            bias = None
            if node.op_type in ("Conv", "ConvTranspose", "Gemm", "ConvInteger") and len(node.input) > 2 and node.input[2]:
                bias = self._constant_source(node.input[2], producers)
            layers.append(WeightLayer(node.name or weight, node.op_type, weight, bias))
        return layers

    def _constant_source(self, tensor: str, producers: dict[str, Any]) -> str | None:
        if tensor in self.arrays:
            return tensor
        node = producers.get(tensor)
        if node is not None and node.op_type == "DequantizeLinear" and node.input[0] in self.arrays:
            return node.input[0]
        return None

    def float_weight(self, layer: WeightLayer) -> np.ndarray:
        """The weight as the model computes with it: dequantized ``(q - zero_point) * scale`` for QDQ;
        ``q - zero_point`` for the integer ops, whose scale is applied to the product (zeros and distinct
        values, what the metrics look at, are the same)."""
        if layer.op in INTEGER_OPS:
            node = next(n for n in self.model.graph.node if (n.name or layer.weight) == layer.node)
            zero = self.arrays[node.input[3]] if len(node.input) > 3 and node.input[3] in self.arrays else 0
            return (self.arrays[layer.weight].astype(np.float32) - np.float32(zero)).astype(np.float32)
        for node in self.model.graph.node:
            if node.op_type == "DequantizeLinear" and node.input[0] == layer.weight:
                return dequantize(self, node)
        return self.arrays[layer.weight].astype(np.float32)

    def set(self, name: str, array: np.ndarray) -> None:
        from onnx import numpy_helper

        for i, init in enumerate(self.model.graph.initializer):
            if init.name == name:
                self.model.graph.initializer[i].CopyFrom(numpy_helper.from_array(array, name))
                self.arrays[name] = array
                return
        raise KeyError(name)

    def save(self, path: str | Path) -> Path:
        return save_model(self.model, path)


def dequantize(graph: Graph, node: Any) -> np.ndarray:
    """DequantizeLinear of a constant: per-tensor or per-axis scale and zero point."""
    q = graph.arrays[node.input[0]].astype(np.float64)
    scale = graph.arrays[node.input[1]].astype(np.float64)
    zero = graph.arrays[node.input[2]].astype(np.float64) if len(node.input) > 2 and node.input[2] else 0.0
    if np.ndim(scale) == 1 and scale.size > 1:
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1) % q.ndim
        shape = [1] * q.ndim
        shape[axis] = -1
        scale = scale.reshape(shape)
        zero = np.reshape(zero, shape) if np.ndim(zero) else zero
    return ((q - zero) * scale).astype(np.float32)


def topological_sort(model: Any) -> None:
    """Reorder nodes so each comes after its inputs' producers (ONNX requires it; some rewriting tools,
    such as onnxruntime's fp16 converter, append the Casts they insert at the end)."""
    graph = model.graph
    ready = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        still = []
        for node in pending:
            if all(i in ready for i in node.input):
                ordered.append(node)
                ready.update(node.output)
            else:
                still.append(node)
        if len(still) == len(pending):
            return  # a cycle or a subgraph-captured name: leave the order for the checker to judge
        pending = still
    nodes = [type(n)() for n in ordered]
    for copy, node in zip(nodes, ordered):
        copy.CopyFrom(node)
    del graph.node[:]
    graph.node.extend(nodes)


def save_model(model: Any, path: str | Path) -> Path:
    """Check and write atomically: a temp file in the target folder renamed over the target at the end,
    so an error never leaves a partial model where a later run would pick it up."""
    import onnx

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        raise EdgebenchError(f"the compressed model fails the ONNX checker ({str(exc).splitlines()[0][:200]}): "
                             "report this with the recipe", ExitStatus.CONVERSION_FAILED) from None
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        onnx.save(model, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
