"""The ONNX converter: a copy, onnxruntime's offline graph optimizations, or a quantized copy (see the
package's docstring)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.formats.onnx import OnnxFormat
from edgebench.formats.tensors import Artifact, TensorIO
from edgebench.data.source import load_onnx_info

_LEVELS = {"basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED", "all": "ORT_ENABLE_ALL"}


def convert(source: Path, precision: str, out_dir: Path, calibration: Path | None = None,
            optimize: str | None = None, quantization: dict[str, Any] | None = None,
            shapes: dict[str, Any] | None = None, **_: Any) -> Artifact:
    target = out_dir / "model.onnx"
    if precision != "fp32":
        return _quantized(source, precision, target, calibration, quantization or {}, shapes)
    if optimize:
        if optimize not in _LEVELS:
            raise EdgebenchError(f"unknown ONNX optimization level {optimize!r}: choose one of {', '.join(_LEVELS)}",
                                 ExitStatus.USAGE)
        ort = OnnxFormat.require("onnxruntime", "onnxruntime is not installed")
        so = ort.SessionOptions()
        so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, _LEVELS[optimize])
        so.optimized_model_filepath = str(target)
        ort.InferenceSession(str(source), sess_options=so, providers=["CPUExecutionProvider"])
    else:
        shutil.copyfile(source, target)
    return Artifact("onnx", precision, [target], target, *describe(target), meta={"optimize": optimize})


def _quantized(source: Path, precision: str, target: Path, calibration: Path | None,
               quantization: dict[str, Any], shapes: dict[str, Any] | None) -> Artifact:
    from edgebench.formats.onnx import quantize as q
    from edgebench.formats.prequantized import check_qdq, qdq_file

    qdq = qdq_file(quantization)
    if qdq is not None:  # quantization-aware training's QDQ ONNX, as it is
        how = check_qdq(qdq, precision, "onnx")
        shutil.copyfile(qdq, target)
    elif precision == "int8":
        how = int8(source, target, calibration, quantization, shapes, "onnxruntime")
    elif precision == "int8-dynamic":
        per_channel = bool(quantization.get("per_channel", True))
        q.quantize_dynamic_int8(source, target, per_channel)
        how = {"quantizer": "onnxruntime.quantization.quantize_dynamic (MatMul/Gemm weights)",
               "per_channel": per_channel}
    else:
        fold = bool(quantization.get("per_channel", True))  # False after clustering: see convert_fp16
        q.convert_fp16(source, target, fold)
        how = {"quantizer": "onnxruntime float16 converter (keep_io_types)",
               "prepared": "onnxruntime basic optimizations (BatchNorm folded)" if fold else "as is (clustered)"}
    return Artifact("onnx", precision, [target], target, *describe(target), meta=how)


def int8(source: Path, target: Path, calibration: Path | None, quantization: dict[str, Any],
         shapes: dict[str, Any] | None, runtime: str) -> dict[str, Any]:
    """Static QDQ int8 of ``source`` into ``target`` for ``runtime``; returns what the meta records: the
    scheme, and the structure read back from the file (opset, per-channel, which ops run in int8)."""
    from edgebench.formats.onnx import quantize as q
    from edgebench.formats.onnx.int8_scheme import int8_scheme

    method = quantization.get("method", "minmax")
    per_channel = bool(quantization.get("per_channel", True))
    scheme = int8_scheme(runtime)
    q.quantize_int8(source, target, calibration, method, per_channel,
                    {k: tuple(v) for k, v in (shapes or {}).items()}, scheme)
    structure = q.int8_structure(target)
    how = {"quantizer": "onnxruntime.quantization.quantize_static (QDQ, after quant_pre_process)",
           "calibration_method": method, "scheme": scheme.to_dict(), **structure}
    if per_channel and not structure["per_channel"]:
        how["note"] = (f"per-tensor scales: the ONNX version converter could not lift the model to opset "
                       f"{q.PER_CHANNEL_OPSET}, which per-channel scales need")
    if structure["mostly_float"]:
        how["warning"] = (f"int8 covers {structure['weights_int8']:.0%} of the compute weights: most compute "
                          "stays float, so expect little speed-up")
    return how


def describe(path: Path) -> tuple[list[TensorIO], list[TensorIO]]:
    info = load_onnx_info(path)
    return [TensorIO.same_as(t) for t in info.inputs], [TensorIO.same_as(t) for t in info.outputs]
