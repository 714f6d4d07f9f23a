"""What pruning, clustering and the metrics share about an ONNX graph: its weight layers and safe writes.

A "weight layer" is a Conv, ConvTranspose, Gemm or MatMul whose weight (input 1) is a constant: a float
initializer, or in a quantized QDQ graph a DequantizeLinear of an integer initializer (and the
MatMulInteger/ConvInteger of dynamic quantization). Layers inside control-flow subgraphs (the branches of
an ``If``, the body of a ``Loop``) count too.

Some exporters (Paddle2ONNX, spox, some tf2onnx versions) hold the weights in ``Constant`` nodes instead of
initializers. ``lift_constants`` moves those into initializers, the form every quantizer, pruner and
converter recognises as a weight; ``Graph.load`` does it on every model it reads, and the artifact cache
does it once on the float model every format starts from.

Layer selection (``LayerSelection``): by default every weight layer is touched except the first and the
last (in graph order) while each holds a small share of the weights. The literature leaves them alone
because they usually are few weights (the first conv, the classifier) to which the accuracy is most
sensitive; an edge layer holding a large share (the first layer of a small MLP often holds 90 %) is
touched, since skipping it would leave most of the model uncompressed.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.files import atomic_write
from edgebench.text import one_line

WEIGHT_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul", "MatMulInteger", "ConvInteger")
INTEGER_OPS = ("MatMulInteger", "ConvInteger")  # dynamic quantization: integer weight, zero point at input 3
# What the parameter count covers besides the weight layers' weights: embedding tables (the data a Gather
# reads) and the input and recurrence matrices of recurrent layers. Op → inputs holding such weights.
COUNTED_INPUTS = {**{op: (1,) for op in WEIGHT_OPS}, "Gather": (0,), "LSTM": (1, 2), "GRU": (1, 2), "RNN": (1, 2)}
# Ops that only move or relabel a constant's elements: a weight seen through them is still that constant.
SHAPE_OPS = ("Identity", "Reshape", "Unsqueeze", "Squeeze", "Transpose", "Flatten")
# Inputs that are parameters whatever their size (weights, biases, normalization statistics): a Constant
# feeding one is lifted into an initializer even when small.
PARAMETER_INPUTS = {"Conv": (1, 2), "ConvTranspose": (1, 2), "Gemm": (1, 2), "MatMul": (1,),
                    "BatchNormalization": (1, 2, 3, 4), "InstanceNormalization": (1, 2),
                    "LayerNormalization": (1, 2), "LSTM": (1, 2, 3), "GRU": (1, 2, 3), "RNN": (1, 2, 3), "PRelu": (1,)}
LIFT_MIN_ELEMENTS = 16  # a float Constant this large is a weight (smaller ones: scalars, Resize scales, Clip bounds)
EDGE_SHARE = 0.10  # the first/last layer is left alone by default only while it holds less than this share


@dataclass(frozen=True)
class WeightLayer:
    node: str  # node name ("/conv2/Conv"), or the weight's name where the name is missing or not unique
    op: str
    weight: str  # name of the float initializer (or of the integer one behind a DequantizeLinear)
    bias: str | None
    scope: str = ""  # "" in the main graph; inside an If/Loop/Scan body, the path of that body ("If_0/then_branch")

    @property
    def main(self) -> bool:
        return not self.scope


@dataclass(frozen=True)
class LayerSelection:
    """Which weight layers a step may touch: fnmatch patterns over node or weight names, and the edge rule.

    By default the first and the last weight layer (of the main graph, and of each control-flow body on its
    own) are left alone when each holds less than ``edge_share`` of all weight-layer elements;
    ``first_last`` touches them whatever their share. A layer named by ``include`` is always touched
    (unless also excluded)."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    first_last: bool = False
    edge_share: float = EDGE_SHARE

    def pick(self, layers: Sequence[WeightLayer], sizes: Sequence[int]) -> list[WeightLayer]:
        """The selected layers; ``sizes`` are the layers' element counts, in the same order."""
        total = sum(sizes) or 1
        edges = set()
        scopes: dict[str, list[tuple[WeightLayer, int]]] = {}
        for layer, size in zip(layers, sizes):
            scopes.setdefault(layer.scope, []).append((layer, size))
        for members in scopes.values():
            if not self.first_last and len(members) >= 3:
                edges |= {layer.node for layer, size in (members[0], members[-1]) if size / total < self.edge_share}
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

    def describe(self) -> str:
        """The options that made this selection, as the user would type them."""
        parts = [f"--include '{p}'" for p in self.include] + [f"--exclude '{p}'" for p in self.exclude]
        return " ".join(parts + (["--all-layers"] if self.first_last else [])) or "the default selection"


def layer_selection(include: Sequence[str] = (), exclude: Sequence[str] = (), all_layers: bool = False) -> LayerSelection:
    """The selection of the ``--include/--exclude/--all-layers`` options (or a sweep model's ``layers:``)."""
    return LayerSelection(tuple(include), tuple(exclude), all_layers)


def _named_subgraphs(node: Any) -> Iterator[tuple[str, Any]]:
    from onnx import AttributeProto

    for attr in node.attribute:
        if attr.type == AttributeProto.GRAPH:
            yield attr.name, attr.g
        elif attr.type == AttributeProto.GRAPHS:
            yield from ((f"{attr.name}[{i}]", g) for i, g in enumerate(attr.graphs))


def _subgraphs(node: Any) -> Iterator[Any]:
    return (g for _, g in _named_subgraphs(node))


def _subgraphs_of(node: Any) -> bool:
    return any(True for _ in _named_subgraphs(node))


def graphs(graph: Any) -> Iterator[Any]:
    """``graph`` and every subgraph under it (If branches, Loop/Scan bodies), outermost first."""
    yield graph
    for node in graph.node:
        for sub in _subgraphs(node):
            yield from graphs(sub)


def _liftable(node: Any, parameter_inputs: set[str], outputs: set[str]) -> bool:
    """Whether ``node`` is a weight-like Constant: a float tensor, large or feeding a parameter input."""
    from onnx import TensorProto

    if node.op_type != "Constant" or node.domain not in ("", "ai.onnx") or len(node.attribute) != 1:
        return False
    attr = node.attribute[0]
    if attr.name != "value" or node.output[0] in outputs:
        return False
    tensor = attr.t
    floats = (TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.DOUBLE, TensorProto.BFLOAT16)
    if tensor.data_type not in floats or tensor.data_location == TensorProto.EXTERNAL:
        return False
    size = int(np.prod(tensor.dims)) if len(tensor.dims) else 1
    return size >= LIFT_MIN_ELEMENTS or (size > 1 and node.output[0] in parameter_inputs)


def _liftable_nodes(graph: Any) -> list[int]:
    """Positions of the weight-like Constant nodes in ``graph`` (not in its subgraphs)."""
    params = {n.input[i] for n in graph.node for i in PARAMETER_INPUTS.get(n.op_type, ())
              if i < len(n.input) and n.input[i]}
    outputs = {o.name for o in graph.output}
    return [i for i, node in enumerate(graph.node) if _liftable(node, params, outputs)]


def lift_constants(model: Any) -> int:
    """Move weight-like ``Constant`` nodes into initializers of the graph that holds them (subgraphs
    included: ONNX allows initializers there); returns how many were moved. Floating-point tensors of at
    least ``LIFT_MIN_ELEMENTS`` elements, or of more than one element feeding a parameter input
    (``PARAMETER_INPUTS``), are weights; scalars and integer (shape, index) constants stay nodes. Values
    and names are unchanged, so the model computes exactly what it did."""
    if model.ir_version < 4:  # before IR 4 every initializer must also be a graph input
        return 0
    lifted = 0
    for graph in list(graphs(model.graph)):
        moved = _liftable_nodes(graph)
        for index in moved:
            init = graph.initializer.add()
            init.CopyFrom(graph.node[index].attribute[0].t)
            init.name = graph.node[index].output[0]
        for index in reversed(moved):
            del graph.node[index]
        lifted += len(moved)
    return lifted


def constant_weights(path: str | Path) -> int:
    """How many weight-like Constant nodes ``lift_constants`` would move in the model at ``path`` (0: the
    weights are initializers already, and the file can be used as it is)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    if model.ir_version < 4:
        return 0
    return sum(len(_liftable_nodes(graph)) for graph in graphs(model.graph))


def _initializers(model: Any) -> dict[str, np.ndarray]:
    """Every initializer of the model (subgraphs' too) by name; a name two sibling subgraphs both use is left
    out, since an edit could not say which one it means."""
    from onnx import numpy_helper

    arrays: dict[str, np.ndarray] = {}
    seen: set[str] = set()
    for graph in graphs(model.graph):
        for init in graph.initializer:
            if init.name in seen:
                arrays.pop(init.name, None)
                continue
            seen.add(init.name)
            arrays[init.name] = numpy_helper.to_array(init)
    return arrays


@dataclass
class Graph:
    """A loaded ONNX model with its initializers (those of subgraphs too) as numpy arrays, edited in place
    and saved once. Loading lifts weight-like Constant nodes into initializers first. The edits change
    initializers, never which nodes there are."""

    model: Any
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    _nodes: list[tuple[Any, str]] | None = field(default=None, init=False, repr=False)

    @classmethod
    def load(cls, path: str | Path) -> "Graph":
        import onnx

        model = onnx.load(str(path))
        lift_constants(model)
        return cls(model, _initializers(model))

    def nodes(self) -> list[tuple[Any, str]]:
        """(node, scope) for every node, a subgraph's nodes right after the node that holds it; the scope is
        "" in the main graph, else the path of the body ("If_0/then_branch")."""
        if self._nodes is not None:
            return self._nodes
        found: list[tuple[Any, str]] = []

        def walk(graph: Any, scope: str) -> None:
            for node in graph.node:
                found.append((node, scope))
                for attr, sub in _named_subgraphs(node):
                    walk(sub, f"{scope}/{node.name or node.output[0]}/{attr}".lstrip("/"))

        walk(self.model.graph, "")
        self._nodes = found
        return found

    def producers(self) -> dict[str, Any]:
        return {out: n for n, _ in self.nodes() for out in n.output}

    def consumers(self, tensor: str) -> list[Any]:
        return [n for n, _ in self.nodes() if tensor in n.input]

    def weight_layers(self) -> list[WeightLayer]:
        """Weight layers in graph order, seeing through DequantizeLinear to the stored integer weight."""
        producers, nodes = self.producers(), self.nodes()
        names: dict[str, int] = {}
        for node, _ in nodes:
            names[node.name] = names.get(node.name, 0) + 1
        layers = []
        for node, scope in nodes:
            if node.op_type not in WEIGHT_OPS or len(node.input) < 2:
                continue
            weight = self._constant_source(node.input[1], producers)
            if weight is None:
                continue
            bias = None
            if node.op_type in ("Conv", "ConvTranspose", "Gemm", "ConvInteger") and len(node.input) > 2 and node.input[2]:
                bias = self._constant_source(node.input[2], producers)
            key = node.name if node.name and names[node.name] == 1 else weight
            layers.append(WeightLayer(key, node.op_type, weight, bias, scope))
        return layers

    def counted_weights(self) -> list[str]:
        """The stored tensors the parameter count covers (``COUNTED_INPUTS``: weight layers' weights,
        embedding tables, recurrent matrices), each once, in graph order: the initializers a counted input
        is computed from when it is a constant (directly, or folded from initializers by Slice, Concat,
        DequantizeLinear …), float ones or integer ones that a DequantizeLinear or an integer op reads."""
        producers = self.producers()
        dequantized = {n.input[0] for n, _ in self.nodes() if n.op_type == "DequantizeLinear"}
        found: dict[str, None] = {}
        for node, _ in self.nodes():
            for index in COUNTED_INPUTS.get(node.op_type, ()):
                if index >= len(node.input) or not node.input[index]:
                    continue
                for source in self._constant_cone(node.input[index], producers) or ():
                    if self.arrays[source].dtype.kind == "f" or source in dequantized or node.op_type in INTEGER_OPS:
                        found[source] = None
        return list(found)

    def _constant_cone(self, tensor: str, producers: dict[str, Any]) -> list[str] | None:
        """The initializers ``tensor`` is computed from when nothing else feeds it (a constant), else None."""
        sources, stack, seen = [], [tensor], set()
        while stack:
            name = stack.pop()
            if name in seen or not name:
                continue
            seen.add(name)
            if name in self.arrays:
                sources.append(name)
                continue
            node = producers.get(name)
            if node is None or _subgraphs_of(node):
                return None  # a graph input, a value from outside, or control flow: not a constant
            # a (De)QuantizeLinear's scale and zero point are not weights: follow only its data
            stack.extend(node.input[:1] if node.op_type in ("DequantizeLinear", "QuantizeLinear") else node.input)
        return sources

    def _constant_source(self, tensor: str, producers: dict[str, Any]) -> str | None:
        """The initializer behind ``tensor``: itself, or seen through DequantizeLinear and ops that only
        reshape or transpose (``SHAPE_OPS``)."""
        seen = set()
        while tensor not in self.arrays:
            node = producers.get(tensor)
            if node is None or node.op_type not in ("DequantizeLinear", *SHAPE_OPS) or tensor in seen:
                return None
            seen.add(tensor)
            tensor = node.input[0]
        return tensor

    def float_weight(self, layer: WeightLayer) -> np.ndarray:
        """The stored weight as the model computes with it: dequantized ``(q - zero_point) * scale`` for
        QDQ; ``q - zero_point`` for the integer ops, whose scale is applied to the product (zeros and
        distinct values, what the metrics look at, are the same). In its stored shape."""
        return self.float_tensor(layer.weight)

    def float_tensor(self, name: str) -> np.ndarray:
        """The initializer ``name`` as float32, dequantized when a DequantizeLinear or an integer op reads it."""
        for node, _ in self.nodes():
            if node.op_type == "DequantizeLinear" and node.input[0] == name:
                return dequantize(self, node)
            if node.op_type in INTEGER_OPS and len(node.input) > 1 and node.input[1] == name:
                zero = self.arrays.get(node.input[3], 0) if len(node.input) > 3 else 0
                return (self.arrays[name].astype(np.float32) - np.float32(zero)).astype(np.float32)
        return self.arrays[name].astype(np.float32)

    def set(self, name: str, array: np.ndarray) -> None:
        from onnx import numpy_helper

        for graph in graphs(self.model.graph):
            for i, init in enumerate(graph.initializer):
                if init.name == name:
                    graph.initializer[i].CopyFrom(numpy_helper.from_array(array, name))
                    self.arrays[name] = array
                    return
        raise KeyError(name)

    def save(self, path: str | Path) -> Path:
        return save_model(self.model, path)


def select_layers(graph: Graph, selection: LayerSelection, what: str, convs: bool = False) -> list[WeightLayer]:
    """The float weight layers a recipe step (``what``, e.g. ``prune:0.5``) may touch, in graph order; with
    ``convs`` only the main graph's Conv layers. A step that would touch none is refused with the reason."""
    layers = [layer for layer in graph.weight_layers() if graph.arrays[layer.weight].dtype.kind == "f"
              and (not convs or (layer.op == "Conv" and layer.main))]
    kind = "Conv layer (outside If/Loop bodies)" if convs else "Conv, ConvTranspose, Gemm or MatMul layer"
    if not layers:
        raise EdgebenchError(f"{what}: the model has no {kind} with float constant weights, so there is nothing "
                             "to compress (an already quantized model cannot be pruned or clustered: start from "
                             "the float model)", ExitStatus.USAGE)
    chosen = selection.pick(layers, [graph.arrays[layer.weight].size for layer in layers])
    if not chosen:
        names = ", ".join(repr(layer.node) for layer in layers[:3]) + (", …" if len(layers) > 3 else "")
        raise EdgebenchError(f"{what}: {selection.describe()} leaves none of the model's {len(layers)} {kind}s "
                             f"(named {names}; patterns match node or weight names): change the patterns",
                             ExitStatus.USAGE)
    return chosen


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


def _needs(node: Any) -> set[str]:
    """The names a node reads: its inputs and, for a control-flow node, what its subgraphs take from outside."""
    needed = set(node.input)
    for sub in _subgraphs(node):
        inner = {i.name for i in sub.input} | {i.name for i in sub.initializer}
        for child in sub.node:
            needed |= _needs(child) - inner
            inner.update(child.output)
    return needed


def topological_sort(model: Any) -> None:
    """Reorder nodes so each comes after its inputs' producers (ONNX requires it; some rewriting tools,
    such as onnxruntime's fp16 converter, append the Casts they insert at the end). A control-flow node
    waits for the outer names its subgraphs read too."""
    graph = model.graph
    ready = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    pending, ordered = [(n, _needs(n)) for n in graph.node], []
    while pending:
        still = []
        for node, needed in pending:
            if needed <= ready:
                ordered.append(node)
                ready.update(node.output)
            else:
                still.append((node, needed))
        if len(still) == len(pending):
            return  # a cycle or a name from nowhere: leave the order for the checker to judge
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
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        raise EdgebenchError(f"the compressed model fails the ONNX checker ({one_line(str(exc), 600)}): "
                             "report this with the recipe", ExitStatus.CONVERSION_FAILED) from None
    return atomic_write(path, lambda tmp: onnx.save(model, str(tmp)))
