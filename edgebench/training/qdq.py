"""The QAT-trained model as a QDQ ONNX that each format's int8 path takes as is (no re-calibration).

``export_qdq`` bakes every other parametrization (pruning masks, cluster centroids) into the weights, keeps
the fake quantization of ``methods.qat`` (each weight's scale frozen from the baked weight), exports with
``importer.to_onnx`` (the reference's input/output names and dynamic dimensions, opset ≥ 13 for per-channel
scales) — torch writes each fake quant as QuantizeLinear → DequantizeLinear — and then folds each weight's
QuantizeLinear into an int8 initializer, ``q = saturate(round_half_even(w / scale) + zero_point)``, as
QuantizeLinear itself computes. The file then holds int8 weights → DequantizeLinear and activation Q → DQ
pairs before each quantized layer, as onnxruntime's ``quantize_static`` QDQ output does: a quarter of the
float file's weight bytes, zeros still zero.
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.files import atomic_write, temp_prefix
from edgebench.training.importer import to_onnx
from edgebench.training.methods.qat import input_fake_quant, is_weight_fake_quant, weight_fake_quant

if TYPE_CHECKING:
    import onnx
    import torch

COMPUTE_OPS = ("Conv", "Gemm", "MatMul")


def private_copy(model: torch.nn.Module) -> torch.nn.Module:
    """A deep copy whose parametrized modules have classes of their own. ``copy.deepcopy`` keeps the class
    torch.nn.utils.parametrize made for each module, and ``remove_parametrizations`` deletes the weight's
    property from that class: on a plain copy it would strip the original model's weight too."""
    from torch.nn.utils import parametrize

    replica = copy.deepcopy(model)
    for module in replica.modules():
        if parametrize.is_parametrized(module):
            cls = type(module)
            module.__class__ = type(cls.__name__, cls.__bases__, dict(cls.__dict__))
    return replica


def _freeze(model: torch.nn.Module) -> None:
    """In place: every parametrization baked, except each QAT layer's weight fake quant, re-attached over
    the baked weight with its scale frozen (also where a method's ``strip`` had baked it already)."""
    import torch
    from torch.nn.utils import parametrize

    for module in list(model.modules()):
        inputs = input_fake_quant(module)
        if inputs is not None and not inputs.observed:
            raise ValueError("a QAT layer has never seen data: train (or run) the model after prepare_qat")
        per_channel = inputs.weight_per_channel if inputs is not None else None
        if parametrize.is_parametrized(module):
            chains: Any = module.parametrizations
            for name in list(chains.keys()):
                chain = chains[name]
                value = chain.original.detach()
                with torch.no_grad():
                    for item in chain:
                        if is_weight_fake_quant(item):
                            per_channel = item.per_channel
                        else:
                            value = item(value)
                parametrize.remove_parametrizations(module, name, leave_parametrized=False)
                setattr(module, name, torch.nn.Parameter(value.clone()))
        if per_channel is not None:
            quant: Any = weight_fake_quant(per_channel)
            quant.freeze(module.weight)
            parametrize.register_parametrization(module, "weight", quant)


def _skip_identities(model: onnx.ModelProto) -> None:
    """In place: consumers read an initializer itself rather than the Identity nodes torch's exporter shares
    equal constants through (weight readers and runtimes look for Q/DQ parameters among initializers)."""
    graph = model.graph
    names = {i.name for i in graph.initializer}
    outputs = {o.name for o in graph.output}
    alias = {n.output[0]: n.input[0] for n in graph.node
             if n.op_type == "Identity" and n.input[0] in names and n.output[0] not in outputs}
    for node in graph.node:
        for i, name in enumerate(node.input):
            node.input[i] = alias.get(name, name)
    for node in [n for n in graph.node if n.op_type == "Identity" and n.output[0] in alias]:
        graph.node.remove(node)


def _constant(model: onnx.ModelProto, name: str) -> np.ndarray | None:
    from onnx import numpy_helper

    found = next((i for i in model.graph.initializer if i.name == name), None)
    return None if found is None else numpy_helper.to_array(found)


def fold_weight_quantizers(model: onnx.ModelProto) -> int:
    """In place: each QuantizeLinear of an initializer (with initializer scale and zero point, Identity nodes
    skipped) becomes an integer initializer its DequantizeLinear reads; 1-element scales and zero points become scalars (the
    per-tensor form every runtime takes); unused initializers go. Returns how many weights were folded."""
    from onnx import numpy_helper

    graph = model.graph
    _skip_identities(model)
    folded: list[Any] = []
    for node in graph.node:
        if node.op_type != "QuantizeLinear" or len(node.input) < 3:
            continue
        weight, scale, zero = (_constant(model, n) for n in node.input[:3])
        if weight is None or scale is None or zero is None:
            continue
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
        shape = [1] * weight.ndim
        if scale.size > 1:
            shape[axis] = scale.size
        info = np.iinfo(zero.dtype)
        q = np.round(weight / scale.reshape(shape)) + zero.astype(np.int64).reshape(shape)
        ints = np.clip(q, info.min, info.max).astype(zero.dtype)
        stored = node.input[0].replace(".parametrizations.weight.original", ".weight") + "_quantized"
        graph.initializer.append(numpy_helper.from_array(ints, stored))
        for consumer in graph.node:
            for i, name in enumerate(consumer.input):
                if name == node.output[0]:
                    consumer.input[i] = stored
        folded.append(node)
    for node in folded:
        graph.node.remove(node)
    for init in graph.initializer:  # scalars, not [1]: per-tensor Q/DQ parameters
        if list(init.dims) == [1] and any(n.op_type in ("QuantizeLinear", "DequantizeLinear") and init.name in n.input[1:]
                                          for n in graph.node):
            del init.dims[:]
    used = {name for n in graph.node for name in n.input} | {o.name for o in graph.output}
    for init in [i for i in graph.initializer if i.name not in used]:
        graph.initializer.remove(init)
    return len(folded)


def qdq_report(model: onnx.ModelProto, folded: int) -> dict[str, Any]:
    """What the QDQ file holds: compute ops whose data and weight come through DequantizeLinear, per-channel
    or not, the int8 weights and the activation scales."""
    init = {i.name: i for i in model.graph.initializer}
    producer = {o: n for n in model.graph.node for o in n.output}
    quantized: dict[str, int] = {}
    for node in model.graph.node:
        if node.op_type in COMPUTE_OPS and len(node.input) > 1 and all(
                getattr(producer.get(node.input[i]), "op_type", None) == "DequantizeLinear" for i in (0, 1)):
            quantized[node.op_type] = quantized.get(node.op_type, 0) + 1
    dequant = [n for n in model.graph.node if n.op_type == "DequantizeLinear"]
    weights = [n for n in dequant if n.input[0] in init]
    return {"ops_quantized": quantized,
            "per_channel": any(int(np.prod(init[n.input[1]].dims)) > 1 for n in weights if n.input[1] in init),
            "weights_int8": folded,
            "activation_scales": sum(1 for n in model.graph.node if n.op_type == "QuantizeLinear"),
            "scheme": "symmetric int8, zero point 0; weights max|w|/127, activations EMA min/max"}


def export_qdq(model: torch.nn.Module, reference: Path, out: Path,
               shapes: Mapping[str, tuple[int, ...]] | None = None) -> dict[str, Any]:
    """Write ``model`` (prepared by ``methods.qat.prepare_qat`` and trained) to ``out`` as a QDQ ONNX with
    int8 weight initializers and the reference's inputs and outputs; ``model`` itself is left as it is.
    Returns the report (``qdq_report``)."""
    import onnx

    frozen = private_copy(model)
    _freeze(frozen)
    with tempfile.TemporaryDirectory(prefix=temp_prefix("qdq")) as work:
        exported = Path(work) / "qdq.onnx"
        to_onnx(frozen, reference, exported, shapes=shapes)
        proto = onnx.load(str(exported))
    folded = fold_weight_quantizers(proto)
    try:
        onnx.checker.check_model(proto, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise EdgebenchError(f"the QAT model's QDQ export fails the ONNX checker ({exc}): report this to "
                             "edgebench with the model; meanwhile quantize without fine-tuning",
                             ExitStatus.CONVERSION_FAILED) from None
    atomic_write(out, lambda tmp: onnx.save(proto, str(tmp)), suffix=".onnx")
    return qdq_report(proto, folded)
