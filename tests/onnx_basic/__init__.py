"""A toy format, to show that adding one is one folder plus one registry line (tests/test_formats_registry.py):
a second ONNX Runtime flavour, the ONNX with onnxruntime's basic graph optimizations saved, run by the
existing onnxruntime backend. Registered with ``"onnx-basic": "tests.onnx_basic:OnnxBasicFormat"``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgebench.compress.metrics import onnx_weights
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.formats import Artifact, Format, TensorIO, Weights
from edgebench.formats.onnx import OnnxFormat
from edgebench.formats.onnx.readers import onnx_precision
from edgebench.data.source import load_onnx_info


class OnnxBasicFormat(Format):
    name = "onnx-basic"
    runtime = "onnxruntime"
    extra = "onnx"
    suffixes = ()  # its files end in .onnx, which stay the onnx format's when given by path
    precisions = ("fp32",)
    runner_options = OnnxFormat.runner_options  # the same onnxruntime backend

    def tool_versions(self) -> dict[str, str]:
        try:
            import onnxruntime
        except ImportError:
            raise EdgebenchError(f"onnxruntime is not installed: {self.install_hint()}",
                                 ExitStatus.RUNTIME_MISSING) from None
        return {"onnxruntime": onnxruntime.__version__}

    def convert(self, source: Path, precision: str, out_dir: Path, calibration: Path | None = None,
                **options: Any) -> Artifact:
        import onnxruntime as ort

        target = out_dir / "model.onnx"
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        so.optimized_model_filepath = str(target)
        ort.InferenceSession(str(source), sess_options=so, providers=["CPUExecutionProvider"])
        return Artifact(self.name, precision, [target], target, *self.describe(target), meta={"optimize": "basic"})

    def describe(self, path: Path) -> tuple[list[TensorIO], list[TensorIO]]:
        info = load_onnx_info(path)
        return [TensorIO.same_as(t) for t in info.inputs], [TensorIO.same_as(t) for t in info.outputs]

    def can_read_weights(self, main: Path) -> bool:
        return True

    def read_weights(self, main: Path) -> tuple[Weights, Weights]:
        return onnx_weights(main)

    def read_precision(self, path: Path) -> str:
        return onnx_precision(path)


class ToyRuntimeFormat(OnnxBasicFormat):
    """The same files for a runtime no device here has: a registered format's runtime is a profile's choice."""

    name = "onnx-toyrt"
    runtime = "toyrt"
