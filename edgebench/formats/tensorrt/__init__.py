"""TensorRT: engines are GPU-specific, so the host ships the ONNX and the target builds the engine.

The artifact is the ONNX itself plus the precision; the runner's TensorRT backend builds the engine
with the TensorRT Python API on the device and caches it there, keyed by the ONNX sha256, precision,
TensorRT version and GPU name. A ready ``.engine``/``.plan`` can be benchmarked as is. For int8 the
shipped ONNX is the static QDQ ONNX (onnxruntime.quantization, calibrated on the host) in TensorRT's
scheme — symmetric int8 activations and weights, zero points 0, as TensorRT requires: it takes its
scales from the Q/DQ nodes, so the device needs no calibration data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgebench.formats.base import Format, Weights, runner_options_for
from edgebench.formats.tensors import Artifact, TensorIO
from edgebench.runner.backends import tensorrt_backend


class TensorRtFormat(Format):
    name = "tensorrt"
    runtime = "tensorrt"
    extra = "tensorrt"
    runtime_modules = ("tensorrt",)
    takes_qdq = True
    suffixes = (".engine", ".plan")
    precisions = ("fp32", "fp16", "int8")
    runner_options = runner_options_for(tensorrt_backend.Backend)

    def tool_versions(self) -> dict[str, str]:
        """The host's tools only: the engine's TensorRT version is the device's, recorded by the runner."""
        import onnx

        return {"onnx": onnx.__version__, "engine_built_on": "target"}

    def key_material(self, precision: str) -> dict[str, Any]:
        """The int8 scheme (TensorRT's symmetric int8)."""
        from edgebench.formats.onnx.int8_scheme import int8_scheme

        return {"int8_scheme": int8_scheme("tensorrt").to_dict()} if precision == "int8" else {}

    def convert(self, source: Path, precision: str, out_dir: Path, calibration: Path | None = None,
                **options: Any) -> Artifact:
        from edgebench.formats.tensorrt.convert import convert

        return convert(source, precision, out_dir, calibration, **options)

    def describe(self, path: Path) -> tuple[list[TensorIO], list[TensorIO]]:
        from edgebench.formats.tensorrt.convert import describe

        return describe(path)

    def can_read_weights(self, main: Path) -> bool:
        """The ONNX an engine is built from, yes; a serialized engine, no."""
        return main.suffix.lower() == ".onnx"

    def read_weights(self, main: Path) -> tuple[Weights, Weights]:
        from edgebench.compress.metrics import onnx_weights

        return onnx_weights(main)

    def job_options(self, precision: str) -> dict[str, Any]:
        return {"precision": precision}  # the engine is built at this precision on the device
