"""TensorRT: engines are GPU-specific, so the host ships the ONNX and the target builds the engine.

The artifact is the ONNX itself plus the precision; the runner's TensorRT backend builds the engine
with the TensorRT Python API on the device and caches it there, keyed by the ONNX sha256, precision,
TensorRT version and GPU name. A ready ``.engine``/``.plan`` can be benchmarked as is. For int8 the
shipped ONNX is the static QDQ ONNX (onnxruntime.quantization, calibrated on the host) in TensorRT's
scheme — symmetric int8 activations and weights, zero points 0, as TensorRT requires: it takes its
scales from the Q/DQ nodes, so the device needs no calibration data.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from edgebench.convert.tensors import Artifact, TensorIO
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.source import load_onnx_info

PRECISIONS = ("fp32", "fp16", "int8")
BACKEND = "tensorrt"
EXTRA = "tensorrt"
SUFFIXES = (".engine", ".plan")


def tool_versions() -> dict[str, str]:
    """The host's tools only: the engine's TensorRT version is the device's, recorded by the runner."""
    import onnx

    return {"onnx": onnx.__version__, "engine_built_on": "target"}


def key_material(precision: str) -> dict[str, Any]:
    """What the artifact cache keys on besides tool versions: the int8 scheme (TensorRT's symmetric int8)."""
    from edgebench.compress.int8_scheme import int8_scheme

    return {"int8_scheme": int8_scheme("tensorrt").to_dict()} if precision == "int8" else {}


def convert(source: Path, precision: str, out_dir: Path, calibration: Path | None = None,
            quantization: dict[str, Any] | None = None, shapes: dict[str, Any] | None = None,
            **_: Any) -> Artifact:
    target = out_dir / "model.onnx"
    meta: dict[str, Any] = {"engine": "built on the target by the runner's tensorrt backend"}
    if precision == "int8":
        from edgebench.convert.onnx import int8

        meta.update(int8(source, target, calibration, quantization or {}, shapes, "tensorrt"))
    else:
        shutil.copyfile(source, target)
    info = load_onnx_info(target)
    return Artifact("tensorrt", precision, [target], target, [TensorIO.same_as(t) for t in info.inputs],
                    [TensorIO.same_as(t) for t in info.outputs], meta=meta)


def describe(path: Path) -> tuple[list[TensorIO], list[TensorIO]]:
    """I/O of a serialized engine, read with TensorRT on the host (engines carry no portable header)."""
    try:
        import tensorrt as trt
    except ImportError:
        raise EdgebenchError(f"reading the inputs of {path.name} needs TensorRT on this host: pip install "
                             "'edgebench[tensorrt]', or bench the .onnx with --format tensorrt",
                             ExitStatus.RUNTIME_MISSING) from None
    runtime = trt.Runtime(trt.Logger(trt.Logger.ERROR))
    engine = runtime.deserialize_cuda_engine(path.read_bytes())
    if engine is None:
        raise EdgebenchError(f"{path} is not a TensorRT engine this TensorRT ({trt.__version__}) can read: "
                             "rebuild it on this device or bench the .onnx with --format tensorrt",
                             ExitStatus.INVALID_MODEL)
    ins, outs = [], []
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        shape = tuple(int(d) if d >= 0 else None for d in engine.get_tensor_shape(name))
        dtype = trt.nptype(engine.get_tensor_dtype(name)).__name__
        t = TensorIO(name, dtype, shape, name, shape)
        (ins if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT else outs).append(t)
    return ins, outs
