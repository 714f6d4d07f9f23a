"""Structured pruning: remove whole Conv output channels (filters) by L1 norm (Li et al., ICLR 2017).

Unlike magnitude pruning this makes the model physically smaller and faster on any dense runtime: the
pruned Conv loses output channels and its bias entries, and every consumer of those channels loses the
matching inputs — a following Conv its input channels, a BatchNormalization its per-channel parameters, a
Gemm/MatMul behind a Flatten the flattened features of those channels. Channel-wise ops in between
(activations, pooling, dropout) pass channels through unchanged. Anything else (a residual Add, a Concat,
a Reshape, a graph output) cannot follow a channel removal, so the Conv is refused by name rather than
pruned into a wrong model.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgebench.compress.graph import Graph, LayerSelection, WeightLayer, select_layers
from edgebench.errors import EdgebenchError, ExitStatus

PASSTHROUGH = {"Relu", "LeakyRelu", "PRelu", "Sigmoid", "Tanh", "Clip", "Elu", "Selu", "Softplus", "HardSigmoid",
               "HardSwish", "Mish", "Gelu", "Identity", "Dropout", "MaxPool", "AveragePool", "LpPool",
               "GlobalAveragePool", "GlobalMaxPool"}


def _attr(node: Any, name: str, default: Any) -> Any:
    from onnx import helper

    return next((helper.get_attribute_value(a) for a in node.attribute if a.name == name), default)


def _refuse(conv: WeightLayer, node: Any, why: str) -> EdgebenchError:
    where = f"{node.op_type} node {node.name or node.output[0]!r}" if node is not None else "a graph output"
    return EdgebenchError(f"cannot prune filters of {conv.node}: its channels reach {where}, {why}; exclude it "
                          f"with --exclude '{conv.node}' or use prune:S", ExitStatus.CONVERSION_FAILED)


def _edits(graph: Graph, conv: WeightLayer, conv_node: Any) -> list[tuple[str, Any]]:
    """Walk the channels' consumers; return (kind, node) edits, or refuse at the first node that blocks."""
    outputs = {o.name for o in graph.model.graph.output}
    edits, frontier = [], list(conv_node.output[:1])
    while frontier:
        tensor = frontier.pop()
        if tensor in outputs:
            raise _refuse(conv, None, "which would change the model's output shape")
        for node in graph.consumers(tensor):
            data_input = node.input[0] == tensor
            if node.op_type in PASSTHROUGH and data_input:
                frontier.extend(node.output[:1])
            elif node.op_type == "BatchNormalization" and data_input:
                edits.append(("bn", node))
                frontier.append(node.output[0])
            elif node.op_type == "Conv" and data_input and _attr(node, "group", 1) == 1 \
                    and node.input[1] in graph.arrays:
                edits.append(("conv", node))
            elif node.op_type == "Flatten" and data_input and _attr(node, "axis", 1) == 1:
                for dense in graph.consumers(node.output[0]):
                    if dense.op_type not in ("Gemm", "MatMul") or dense.input[0] != node.output[0] \
                            or dense.input[1] not in graph.arrays or _attr(dense, "transA", 0):
                        raise _refuse(conv, dense, "which is not a Gemm/MatMul with constant weights")
                    edits.append(("dense", dense))
                if node.output[0] in outputs:
                    raise _refuse(conv, None, "which would change the model's output shape")
            else:
                raise _refuse(conv, node, "which cannot drop channels")
    return edits


def _take(graph: Graph, name: str, keep: np.ndarray, axis: int) -> None:
    graph.set(name, np.take(graph.arrays[name], keep, axis=axis))


def _prune_one(graph: Graph, conv: WeightLayer, sparsity: float) -> tuple[int, int]:
    node = next((n for n in graph.model.graph.node if n.op_type == "Conv" and n.input[1] == conv.weight), None)
    if node is None:
        raise EdgebenchError(f"cannot prune filters of {conv.node}: its weight {conv.weight!r} reaches it through "
                             f"other nodes, so its channels cannot be cut: exclude it with --exclude '{conv.node}' or "
                             "use prune:S", ExitStatus.CONVERSION_FAILED)
    w = graph.arrays[conv.weight]
    if _attr(node, "group", 1) != 1:
        raise _refuse(conv, node, "a grouped/depthwise Conv whose groups would break")
    if len(graph.consumers(conv.weight)) > 1:
        raise _refuse(conv, node, "whose weight is shared with another node")
    channels = w.shape[0]
    n_keep = channels - int(round(sparsity * channels))
    if n_keep < 1:
        raise EdgebenchError(f"prune-filters:{sparsity:g} would remove every filter of {conv.node} ({channels} "
                             "channels): lower the sparsity or --exclude this layer", ExitStatus.CONVERSION_FAILED)
    edits = _edits(graph, conv, node)
    l1 = np.abs(w.astype(np.float64)).reshape(channels, -1).sum(axis=1)
    keep = np.sort(np.argsort(-l1, kind="stable")[:n_keep])
    _take(graph, conv.weight, keep, 0)
    if conv.bias:
        _take(graph, conv.bias, keep, 0)
    for kind, consumer in edits:
        if kind == "conv":
            _take(graph, consumer.input[1], keep, 1)
        elif kind == "bn":
            for name in consumer.input[1:5]:
                _take(graph, name, keep, 0)
        else:
            weight = graph.arrays[consumer.input[1]]
            trans_b = consumer.op_type == "Gemm" and _attr(consumer, "transB", 0)
            features = weight.shape[1] if trans_b else weight.shape[0]
            if features % channels:
                raise _refuse(conv, consumer, f"whose {features} input features are not {channels} channels × "
                                              "positions")
            per_channel = features // channels
            idx = (keep[:, None] * per_channel + np.arange(per_channel)[None, :]).ravel()
            _take(graph, consumer.input[1], idx, 1 if trans_b else 0)
    return channels, n_keep


def prune_filters(graph: Graph, sparsity: float,
                  selection: LayerSelection = LayerSelection()) -> dict[str, tuple[int, int]]:
    """Remove the ``sparsity`` fraction of lowest-L1 filters of each selected Conv; returns (before, after)."""
    convs = select_layers(graph, selection, f"prune-filters:{sparsity:g}", convs=True)
    result = {conv.node: _prune_one(graph, conv, sparsity) for conv in convs}
    del graph.model.graph.value_info[:]  # intermediate shapes changed; runtimes infer them again
    return result
