"""TFLite (LiteRT) flatbuffers: from ONNX through onnx2tf (``convert``), from Keras and from torch modules
(``api``), run by LiteRT (or tflite-runtime / TensorFlow) on the device.

onnx2tf's integer_quant is int8 (int8 weights and activations calibrated on the calibration set,
float32 I/O), its dynamic-range quantization int8-dynamic (int8 weights).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgebench.formats.base import Format, Weights, runner_options_for
from edgebench.formats.tensors import Artifact, TensorIO
from edgebench.runner.backends import tflite_backend


class TfliteFormat(Format):
    name = "tflite"
    runtime = "tflite"
    # LiteRT, to read a .tflite on the host; the ONNX converter runs in its own environment (convert_env.py)
    extra = "tflite"
    runtime_modules = ("ai_edge_litert", "tflite_runtime", "tensorflow")  # as the runner's backend tries them
    suffixes = (".tflite",)
    precisions = ("fp32", "fp16", "int8", "int8-dynamic")
    runner_options = runner_options_for(tflite_backend.Backend)

    def tool_versions(self) -> dict[str, str]:
        from edgebench.formats.tflite.convert import tool_versions

        return tool_versions()

    def convert(self, source: Path, precision: str, out_dir: Path, calibration: Path | None = None,
                **options: Any) -> Artifact:
        from edgebench.formats.tflite.convert import convert

        return convert(source, precision, out_dir, calibration, **options)

    def describe(self, path: Path) -> tuple[list[TensorIO], list[TensorIO]]:
        from edgebench.formats.tflite.interpreter import describe

        return describe(path)

    def can_read_weights(self, main: Path) -> bool:
        return True

    def read_weights(self, main: Path) -> tuple[Weights, Weights]:
        from edgebench.formats.tflite.readers import tflite_weights

        return tflite_weights(main)

    def read_precision(self, path: Path) -> str:
        from edgebench.formats.tflite.readers import tflite_precision

        return tflite_precision(path)
