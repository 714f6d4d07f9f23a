"""Which values an integer model input may take, read from the ONNX graph, for seeded random inputs.

Random token ids outside the vocabulary make one runtime fail and another compute garbage. The graph
often says what is valid: ids that index a ``Gather`` over a constant table of N rows take [0, N); an
input compared for equality with a constant (silero's ``sr == 16000``) is meant to be that constant; an
input used only in arithmetic, comparisons and reductions (an attention mask) works with 0/1. An
integer input that feeds anything else (a shape, a slice bound, a ``TopK`` k, a loop count, an index
into a computed tensor) has values the graph cannot bound, so random data needs the user's range.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

# Ops whose output (from the listed inputs) carries the input's values unchanged, only moved or retyped.
_CARRY = {"Cast": (0,), "CastLike": (0,), "Identity": (0,), "Unsqueeze": (0,), "Squeeze": (0,),
          "Reshape": (0,), "Flatten": (0,), "Expand": (0,), "Transpose": (0,), "Slice": (0,), "Tile": (0,),
          "Gather": (0,), "Concat": None, "Split": (0,)}
# Ops that use the values arithmetically: any small non-negative integer is a fair sample.
_ARITHMETIC = {"Add", "Sub", "Mul", "Div", "Neg", "Abs", "Sign", "Min", "Max", "Mean", "Sum", "Clip",
               "ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
               "Greater", "Less", "GreaterOrEqual", "LessOrEqual", "Not", "And", "Or", "Xor", "Where",
               "CumSum", "Pow", "Sqrt", "Exp", "Log", "Softmax", "MatMul", "Einsum"}
# Ops that read only the input's shape or type, never its values.
_SHAPE_ONLY = {"Shape", "Size", "EyeLike"}


@dataclass(frozen=True)
class InputDomain:
    """Valid values of one integer input: a range [low, high), one fixed value, or neither (``reason``
    then says what the graph does with the input)."""

    reason: str
    low: int | None = None
    high: int | None = None
    value: float | None = None

    @property
    def known(self) -> bool:
        return self.value is not None or self.low is not None


def integer_input_domains(path: Path) -> dict[str, InputDomain]:
    """An :class:`InputDomain` for every integer graph input of the ONNX file at ``path``."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    graph = model.graph
    initializers = {i.name for i in graph.initializer}
    integer_inputs = [v.name for v in graph.input if v.name not in initializers
                      and onnx.helper.tensor_dtype_to_np_dtype(v.type.tensor_type.elem_type).kind in "iu"]
    if not integer_inputs:
        return {}
    constants: dict[str, onnx.TensorProto] = {}
    consumers: dict[str, list[Any]] = {}
    for g in _graphs(graph):
        constants.update({t.name: t for t in g.initializer})
        for node in g.node:
            if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
                constants[node.output[0]] = node.attribute[0].t
            for k, name in enumerate(node.input):
                consumers.setdefault(name, []).append((node, k))
            for attr in node.attribute:  # a subgraph reads outer values by name, without listing them as inputs
                for sub in ([attr.g] if attr.HasField("g") else list(attr.graphs)):
                    for used in _outer_names(sub):
                        consumers.setdefault(used, []).append((node, -1))
    return {name: _domain(name, constants, consumers) for name in integer_inputs}


def _graphs(graph: Any) -> Iterator[Any]:
    yield graph
    for node in graph.node:
        for attr in node.attribute:
            for sub in ([attr.g] if attr.HasField("g") else list(attr.graphs)):
                yield from _graphs(sub)


def _outer_names(sub: Any) -> set[str]:
    produced = {i.name for i in sub.input} | {i.name for i in sub.initializer}
    used: set[str] = set()
    for node in sub.node:
        used.update(n for n in node.input if n and n not in produced)
        produced.update(node.output)
    return used


def _domain(name: str, constants: dict[str, Any], consumers: dict[str, list[Any]]) -> InputDomain:
    from onnx import numpy_helper

    rows: list[tuple[int, str]] = []
    equals: list[tuple[float, str]] = []
    other: list[str] = []
    seen: set[str] = set()
    todo = [name]
    while todo:
        tensor = todo.pop()
        if tensor in seen:
            continue
        seen.add(tensor)
        for node, k in consumers.get(tensor, []):
            op, label = node.op_type, f"{node.op_type} {node.name!r}" if node.name else node.op_type
            if op == "Gather" and k == 1 and node.input[0] in constants:
                table = constants[node.input[0]]
                axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
                if len(table.dims) > axis % max(len(table.dims), 1):
                    rows.append((int(table.dims[axis]), node.input[0]))
                    continue
            if op == "Equal":
                other_side = node.input[1 - k] if k in (0, 1) else ""
                value = constants.get(other_side)
                if value is not None and int(numpy_helper.to_array(value).size) == 1:
                    equals.append((float(numpy_helper.to_array(value).reshape(-1)[0]), label))
                    continue
            carried = _CARRY.get(op, ())
            if carried is None or k in carried:
                todo.extend(o for o in node.output if o)
            elif op in _ARITHMETIC or op in _SHAPE_ONLY or op == "Equal":
                continue
            else:
                other.append(label)
    if rows:
        size, table_name = min(rows)
        return InputDomain(f"indexes {table_name!r} ({size} rows)", 0, size)
    if equals:
        value, where = equals[0]
        return InputDomain(f"compared with the constant {value:g} ({where})", value=value)
    if other:
        return InputDomain(f"feeds {other[0]}")
    return InputDomain("used only in arithmetic (a mask or flag): 0/1", 0, 2)
