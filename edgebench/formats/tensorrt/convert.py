"""The TensorRT "converter": the ONNX the device builds its engine from (the QDQ ONNX for int8), and a
serialized engine's tensors read with TensorRT on the host (see the package's docstring)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.formats.tensorrt import TensorRtFormat
from edgebench.formats.tensors import Artifact, TensorIO
from edgebench.data.source import load_onnx_info


def convert(source: Path, precision: str, out_dir: Path, calibration: Path | None = None,
            quantization: dict[str, Any] | None = None, shapes: dict[str, Any] | None = None,
            **_: Any) -> Artifact:
    target = out_dir / "model.onnx"
    from edgebench.formats.prequantized import asymmetric_quantizers, check_qdq, qdq_file

    meta: dict[str, Any] = {"engine": "built on the target by the runner's tensorrt backend"}
    qdq = qdq_file(quantization)
    if qdq is not None:  # quantization-aware training's QDQ ONNX: the engine takes its scales from the Q/DQ nodes
        meta.update(check_qdq(qdq, precision, "tensorrt"))
        if asymmetric := asymmetric_quantizers(qdq):  # the engine build on the device would refuse it
            raise EdgebenchError(f"TensorRT takes only symmetric int8 Q/DQ (zero point 0), and this quantization-"
                                 f"aware-trained model quantizes {asymmetric} tensors asymmetrically (uint8 or a "
                                 "zero point, TF Model Optimization's and torch.ao's default for activations): bench "
                                 "it in onnx or openvino, or train it with symmetric int8 activations",
                                 ExitStatus.CONVERSION_FAILED)
        shutil.copyfile(qdq, target)
    elif precision == "int8":
        from edgebench.formats.onnx.convert import int8

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
        raise EdgebenchError(f"reading the inputs of {path.name} needs TensorRT on this host: "
                             f"{TensorRtFormat.install_hint()}, or bench the .onnx with --format tensorrt",
                             ExitStatus.RUNTIME_MISSING) from None
    runtime = trt.Runtime(trt.Logger(trt.Logger.ERROR))
    engine = runtime.deserialize_cuda_engine(path.read_bytes())
    if engine is None:
        raise EdgebenchError(f"{path} is not a TensorRT engine this TensorRT ({trt.__version__}) can read: "
                             "rebuild it on this device or bench the .onnx with --format tensorrt",
                             ExitStatus.INVALID_MODEL)
    ins: list[TensorIO] = []
    outs: list[TensorIO] = []
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        shape = tuple(int(d) if d >= 0 else None for d in engine.get_tensor_shape(name))
        dtype = trt.nptype(engine.get_tensor_dtype(name)).__name__
        t = TensorIO(name, dtype, shape, name, shape)
        (ins if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT else outs).append(t)
    return ins, outs
