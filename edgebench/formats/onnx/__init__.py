"""ONNX: the source model itself, or with onnxruntime's offline graph optimizations saved, run by onnxruntime.

``optimize="basic"|"extended"|"all"`` saves what onnxruntime would otherwise redo at every load;
onnxruntime's docs advise keeping the offline level at ``basic``/``extended`` for portability across
execution providers, so the default is no rewrite at all. The other precisions are ONNX-native
quantization (``quantize``): fp16 weights and compute with float32 I/O, static QDQ int8 calibrated on the
calibration set (dynamic dimensions sized by ``shapes``, else by the set) in the scheme that runs fast on
this host's instruction set (``int8_scheme``), and dynamic int8 of MatMul/Gemm weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgebench.formats.base import Format, Weights, runner_options_for
from edgebench.formats.tensors import Artifact, TensorIO
from edgebench.runner.backends import onnxruntime_backend


class OnnxFormat(Format):
    name = "onnx"
    runtime = "onnxruntime"
    extra = "onnx"
    runtime_modules = ("onnxruntime",)
    takes_qdq = True
    suffixes = (".onnx",)
    precisions = ("fp32", "fp16", "int8", "int8-dynamic")
    runner_options = runner_options_for(onnxruntime_backend.Backend)

    def tool_versions(self) -> dict[str, str]:
        import onnx

        versions = {"onnx": onnx.__version__}
        try:
            import onnxruntime

            versions["onnxruntime"] = onnxruntime.__version__
        except ImportError:
            pass
        return versions

    def key_material(self, precision: str) -> dict[str, Any]:
        """The int8 scheme, which follows the host's ISA, and the dynamic int8 weights' granularity
        (per-tensor until edgebench 0.2)."""
        from edgebench.formats.onnx.int8_scheme import int8_scheme

        if precision == "int8-dynamic":
            return {"dynamic_weights": "per-channel"}
        if precision == "fp16":
            return {"fp16_prepared": "basic-optimized"}
        return {"int8_scheme": int8_scheme("onnxruntime").to_dict()} if precision == "int8" else {}

    def convert(self, source: Path, precision: str, out_dir: Path, calibration: Path | None = None,
                **options: Any) -> Artifact:
        from edgebench.formats.onnx.convert import convert

        return convert(source, precision, out_dir, calibration, **options)

    def describe(self, path: Path) -> tuple[list[TensorIO], list[TensorIO]]:
        from edgebench.formats.onnx.convert import describe

        return describe(path)

    def can_read_weights(self, main: Path) -> bool:
        return True

    def read_weights(self, main: Path) -> tuple[Weights, Weights]:
        """Initializers, DequantizeLinear applied (``compress.metrics.onnx_weights``)."""
        from edgebench.compress.metrics import onnx_weights

        return onnx_weights(main)

    def read_precision(self, path: Path) -> str:
        from edgebench.formats.onnx.readers import onnx_precision

        return onnx_precision(path)
