"""ONNX: the source model itself, or with onnxruntime's offline graph optimizations saved.

``optimize="basic"|"extended"|"all"`` saves what onnxruntime would otherwise redo at every load;
onnxruntime's docs advise keeping the offline level at ``basic``/``extended`` for portability across
execution providers, so the default is no rewrite at all. The other precisions are the compression
layer's ONNX-native quantization (``compress.quantize_onnx``): fp16 weights and compute with float32 I/O,
static QDQ int8 calibrated on the calibration set (dynamic dimensions sized by ``shapes``, else by the set)
in the scheme that runs fast on this host's instruction set, and dynamic int8 of MatMul/Gemm weights.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from edgebench.convert.tensors import Artifact, TensorIO
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.source import load_onnx_info

PRECISIONS = ("fp32", "fp16", "int8", "int8-dynamic")
BACKEND = "onnxruntime"
EXTRA = "onnx"
SUFFIXES = (".onnx",)
_LEVELS = {"basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED", "all": "ORT_ENABLE_ALL"}


def tool_versions() -> dict[str, str]:
    import onnx

    versions = {"onnx": onnx.__version__}
    try:
        import onnxruntime

        versions["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    return versions


def key_material(precision: str) -> dict[str, Any]:
    """What the artifact cache keys on besides tool versions: the int8 scheme, which follows the host's ISA,
    and the dynamic int8 weights' granularity (per-tensor until edgebench 0.2)."""
    from edgebench.compress.int8_scheme import int8_scheme

    if precision == "int8-dynamic":
        return {"dynamic_weights": "per-channel"}
    if precision == "fp16":
        return {"fp16_prepared": "basic-optimized"}
    return {"int8_scheme": int8_scheme("onnxruntime").to_dict()} if precision == "int8" else {}


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
        try:
            import onnxruntime as ort
        except ImportError:
            raise EdgebenchError("onnxruntime is not installed: pip install 'edgebench[onnx]'",
                                 ExitStatus.RUNTIME_MISSING) from None
        so = ort.SessionOptions()
        so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, _LEVELS[optimize])
        so.optimized_model_filepath = str(target)
        ort.InferenceSession(str(source), sess_options=so, providers=["CPUExecutionProvider"])
    else:
        shutil.copyfile(source, target)
    return Artifact("onnx", precision, [target], target, *describe(target), meta={"optimize": optimize})


def _quantized(source: Path, precision: str, target: Path, calibration: Path | None,
               quantization: dict[str, Any], shapes: dict[str, Any] | None) -> Artifact:
    from edgebench.compress import quantize_onnx as q

    if precision == "int8":
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
    from edgebench.compress import quantize_onnx as q
    from edgebench.compress.int8_scheme import int8_scheme

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
