"""Format-native ONNX quantization with ``onnxruntime.quantization``, and fp16 conversion.

``int8`` is static QDQ quantization calibrated on the user's calibration set (its dynamic dimensions
sized by ``--shape`` or by the set's arrays), in the scheme that runs fast on the runtime and the host's
instruction set (``int8_scheme``): int8 weights (symmetric, so zero stays exactly zero and pruning
survives), activation ranges from MinMax, Percentile or Entropy calibration, only the compute ops
quantized. The float model is first prepared as onnxruntime's guide advises (``quant_pre_process``:
shape inference, then its basic graph optimizations, which fold BatchNorm into Conv and turn
Constant-node weights into initializers) and lifted to opset 13 when older, because per-channel scales
(DequantizeLinear ``axis``) need it; a model the ONNX version converter cannot lift gets per-tensor
scales. Weights are per-channel except after clustering, where one per-tensor scale maps each shared
value to one integer and keeps the layer at ≤ K values (per-channel scales, or BatchNorm folding, would
split each shared value). ``int8-dynamic`` quantizes MatMul/Gemm weights and computes activation ranges
at run time: no calibration set, less speed-up. ``fp16`` halves every float weight and keeps the model's
inputs and outputs float32 (keep_io_types), so the same datasets and runners feed it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from edgebench.compress.graph import save_model, topological_sort
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.files import atomic_write, temp_prefix
from edgebench.formats.calibration import Shapes, calibration_batches, require_calibration
from edgebench.formats.onnx import OnnxFormat
from edgebench.formats.onnx.int8_scheme import Int8Scheme, int8_scheme
from edgebench.formats.tooling import quiet, tool_message

PER_CHANNEL_OPSET = 13  # DequantizeLinear's ``axis`` (one scale per output channel) arrived in opset 13


def _ort_quantization() -> Any:
    return OnnxFormat.require("onnxruntime.quantization", "ONNX quantization needs onnxruntime")


def _reader(batches: list[dict[str, np.ndarray]]) -> Any:
    base: Any = _ort_quantization().CalibrationDataReader

    class Reader(base):
        def __init__(self) -> None:
            self._it = iter(batches)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._it, None)

        def rewind(self) -> None:
            self._it = iter(batches)

    return Reader()


def quantize_int8(model: Path, out: Path, calibration: Path | None, method: str = "minmax",
                  per_channel: bool = True, shapes: Shapes | None = None,
                  scheme: Int8Scheme | None = None) -> Path:
    """Static QDQ int8 calibrated on ``calibration`` (an .npz fitting the model's inputs, dynamic
    dimensions sized by ``shapes`` or by its arrays), in ``scheme`` (default: onnxruntime on this host).
    ``per_channel=False`` also leaves every weight's values as they are (no BatchNorm folding)."""
    calibration = require_calibration(calibration)
    q = _ort_quantization()
    scheme = scheme or int8_scheme("onnxruntime")
    batches = list(calibration_batches(model, calibration, shapes))
    methods = {"minmax": q.CalibrationMethod.MinMax, "percentile": q.CalibrationMethod.Percentile,
               "entropy": q.CalibrationMethod.Entropy}
    types = {"uint8": q.QuantType.QUInt8, "int8": q.QuantType.QInt8}

    def write(tmp: Path) -> None:
        with tempfile.TemporaryDirectory(prefix=temp_prefix("int8")) as work:
            try:
                prepared, channels = _prepare(model, Path(work), per_channel)
                q.quantize_static(
                    str(prepared), str(tmp), _reader(batches), quant_format=q.QuantFormat.QDQ,
                    per_channel=channels, reduce_range=scheme.reduce_range, op_types_to_quantize=list(scheme.op_types),
                    activation_type=types[scheme.activations], weight_type=q.QuantType.QInt8,
                    calibrate_method=methods[method],
                    extra_options={"WeightSymmetric": True, "ActivationSymmetric": scheme.activation_symmetric})
            except Exception as exc:  # onnxruntime.quantization raises bare Exceptions of every kind
                raise EdgebenchError(f"onnxruntime.quantization could not quantize the model ({tool_message(exc)}): "
                                     "try another precision (int8-dynamic, fp16) or another format",
                                     ExitStatus.CONVERSION_FAILED) from None
        _check_written(tmp, "onnxruntime.quantization")

    with quiet():
        return atomic_write(out, write, suffix=".onnx")  # onnxruntime wants the .onnx ending


def _prepare(model: Path, work: Path, per_channel: bool) -> tuple[Path, bool]:
    """The float model as onnxruntime's quantizer wants it, and whether it can take per-channel scales:
    at opset ≥ 13 (lifted by the ONNX version converter; a model it cannot lift keeps its opset and gets
    per-tensor scales), then ``quant_pre_process``. Its symbolic shape inference is skipped: it adds nothing
    for these models and, when it fails, writes files into the working directory."""
    import onnx
    from onnxruntime.quantization.shape_inference import quant_pre_process

    proto = onnx.load(str(model))
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), PER_CHANNEL_OPSET)
    if per_channel and opset < PER_CHANNEL_OPSET:
        try:
            proto = onnx.version_converter.convert_version(proto, PER_CHANNEL_OPSET)
            onnx.checker.check_model(proto)
        except Exception:  # the converter lacks an adapter for some op: per-tensor scales work at any opset
            proto, per_channel = onnx.load(str(model)), False
    lifted = work / "float.onnx"
    onnx.save(proto, str(lifted))
    prepared = work / "prepared.onnx"
    # BatchNorm folding rescales each output channel's weights: a clustered layer (per-tensor) is left alone
    quant_pre_process(str(lifted), str(prepared), skip_optimization=not per_channel, skip_symbolic_shape=True)
    return prepared, per_channel


def _check_written(path: Path, tool: str) -> None:
    """A model a quantizer wrote must pass the checker: if not, the fault is the tool's (or edgebench's),
    never the user's model, and the message names neither a temp path nor a re-export."""
    import onnx

    try:
        onnx.checker.check_model(str(path))
    except (onnx.checker.ValidationError, ValueError) as exc:
        raise EdgebenchError(f"{tool} wrote an ONNX model that fails the checker ({tool_message(exc)}): report "
                             "this to edgebench with the model; meanwhile try int8-dynamic or another format",
                             ExitStatus.CONVERSION_FAILED) from None


# Ops a per-tensor DequantizeLinear commutes with (onnxruntime's QDQ propagation moves it past them):
# data read through them from a DequantizeLinear is still int8 data (tf2onnx leaves tfmot's MaxPool and
# Flatten after the activation's DequantizeLinear).
DQ_COMMUTES = ("Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze", "MaxPool")


def int8_structure(path: Path) -> dict[str, Any]:
    """What a QDQ int8 ONNX holds, read from the file: opset, activation type, per-channel or not, and
    which compute ops run in int8 (a DequantizeLinear on both data and weight) versus float.
    ``weights_int8`` is the share of the compute ops' weight elements stored as 8-bit integers;
    ``mostly_float`` flags a model whose int8 covers less than half of them."""
    import onnx

    proto = onnx.load(str(path))
    graphs = [proto.graph]
    for g in graphs:  # control-flow subgraphs too
        graphs.extend(a.g for n in g.node for a in n.attribute if a.HasField("g"))
        graphs.extend(sub for n in g.node for a in n.attribute for sub in a.graphs)
    init = {i.name: i for g in graphs for i in g.initializer}
    producer = {o: n for g in graphs for n in g.node for o in n.output}
    quantized: dict[str, int] = {}
    floating: dict[str, int] = {}
    int8_elems = all_elems = 0
    axes, activations = set(), set()
    for node in (n for g in graphs for n in g.node):
        if node.op_type == "QuantizeLinear" and len(node.input) > 2 and node.input[2] in init:
            activations.add(onnx.helper.tensor_dtype_to_np_dtype(init[node.input[2]].data_type).name)
        if node.op_type == "DequantizeLinear" and node.input[1] in init:
            axes.add(int(np.prod(init[node.input[1]].dims or [1])) > 1)
        if node.op_type not in ("Conv", "ConvTranspose", "MatMul", "Gemm") or len(node.input) < 2:
            continue
        data, weight = (producer.get(node.input[i]) for i in (0, 1))
        while data is not None and data.op_type in DQ_COMMUTES:  # quantized data moved or max-pooled
            data = producer.get(data.input[0])
        dq = weight is not None and weight.op_type == "DequantizeLinear" and weight.input[0] in init
        stored = weight.input[0] if weight is not None and dq else node.input[1]
        size = int(np.prod(init[stored].dims)) if stored in init else 0
        all_elems += size
        if dq and data is not None and data.op_type == "DequantizeLinear":
            quantized[node.op_type] = quantized.get(node.op_type, 0) + 1
            int8_elems += size
        else:
            floating[node.op_type] = floating.get(node.op_type, 0) + 1
    share = round(int8_elems / all_elems, 4) if all_elems else 0.0
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    return {"opset": opset, "activations": sorted(activations), "per_channel": True in axes,
            "int8_ops": quantized, "float_ops": floating, "weights_int8": share, "mostly_float": share < 0.5}


def quantize_dynamic_int8(model: Path, out: Path, per_channel: bool = True) -> Path:
    """Dynamic int8 of MatMul/Gemm weights, symmetric and per output channel (per-tensor after clustering,
    where one scale keeps each shared value one integer). Per-channel scales cost little time and gave
    MiniLM-L6 13.3 dB against 10.5 dB per-tensor. Conv is left float because onnxruntime's CPU ConvInteger
    takes only uint8 weights, whose non-zero zero point would break the zeros of a pruned layer."""
    q = _ort_quantization()
    with quiet():
        return atomic_write(out, lambda tmp: q.quantize_dynamic(
            str(model), str(tmp), op_types_to_quantize=["MatMul", "Gemm"], weight_type=q.QuantType.QInt8,
            per_channel=per_channel, extra_options={"WeightSymmetric": True}), suffix=".onnx")


def convert_fp16(model: Path, out: Path, fold: bool = True) -> Path:
    """Float16 weights and compute, float32 inputs and outputs. With ``fold`` (not after clustering, whose
    shared values a per-channel rescale would split) onnxruntime's basic optimizations run first: they fold
    BatchNorm into the Conv before it, whose running variance can exceed float16's range (PP-OCRv4's
    detection head: the converter clamps it to 65504 and the map came out at −1 dB; folded, 51 dB)."""
    import onnx

    try:
        import onnxruntime as ort
        from onnxruntime.transformers.float16 import convert_float_to_float16
    except ImportError:
        raise EdgebenchError(f"fp16 ONNX conversion needs onnxruntime: {OnnxFormat.install_hint()}",
                             ExitStatus.RUNTIME_MISSING) from None
    with tempfile.TemporaryDirectory(prefix=temp_prefix("fp16")) as work:
        source = model
        if fold:
            source = Path(work) / "folded.onnx"
            options = ort.SessionOptions()
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
            options.optimized_model_filepath = str(source)
            try:
                ort.InferenceSession(str(model), sess_options=options, providers=["CPUExecutionProvider"])
            except Exception as exc:  # onnxruntime's own errors have no common base class
                raise EdgebenchError(f"onnxruntime cannot load the model to prepare its fp16 copy: "
                                     f"{tool_message(exc)}", ExitStatus.CONVERSION_FAILED) from None
        half = convert_float_to_float16(onnx.load(str(source)), keep_io_types=True)
    topological_sort(half)
    return save_model(half, out)
