"""OpenVINO IR (.xml + .bin) through ``ov.convert_model`` and ``ov.save_model``, run by OpenVINO.

``save_model`` compresses weights to fp16 unless told otherwise, so the precision decides
``compress_to_fp16`` explicitly: an "fp32" IR really holds fp32 weights. (Inference precision on
a device is the runtime's choice — CPU runs fp16 weights in fp32 or bf16 — and is reported by the runner.)
int8 is NNCF post-training quantization of the converted model on the calibration set (FakeQuantize,
stored as int8 weights, ``quantize``); int8-dynamic has no OpenVINO counterpart with run-time activation
ranges, so it maps to NNCF's weight-only int8 (``compress_weights`` INT8_SYM: int8 weights, float compute).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgebench.formats.base import Format, Weights, runner_options_for
from edgebench.formats.tensors import Artifact, TensorIO
from edgebench.runner.backends import openvino_backend
from edgebench.data.source import require_file


class OpenVinoFormat(Format):
    name = "openvino"
    runtime = "openvino"
    extra = "openvino"
    runtime_modules = ("openvino",)
    takes_qdq = True
    suffixes = (".xml",)
    precisions = ("fp32", "fp16", "int8", "int8-dynamic")
    runner_options = runner_options_for(openvino_backend.Backend)

    def tool_versions(self) -> dict[str, str]:
        from edgebench.formats.openvino.convert import ov_module

        return {"openvino": ov_module().get_version()}

    def convert(self, source: Path, precision: str, out_dir: Path, calibration: Path | None = None,
                **options: Any) -> Artifact:
        from edgebench.formats.openvino.convert import convert

        return convert(source, precision, out_dir, calibration, **options)

    def describe(self, path: Path) -> tuple[list[TensorIO], list[TensorIO]]:
        from edgebench.formats.openvino.convert import describe

        return describe(path)

    def artifact_files(self, main: Path) -> list[Path]:
        return [main, require_file(main.with_suffix(".bin"), "IR weights (.bin)")]

    def can_read_weights(self, main: Path) -> bool:
        return True

    def read_weights(self, main: Path) -> tuple[Weights, Weights]:
        from edgebench.formats.openvino.readers import openvino_weights

        return openvino_weights(main)

    def read_precision(self, path: Path) -> str:
        from edgebench.formats.openvino.readers import openvino_precision

        return openvino_precision(path)

    def job_files(self, main: Path, files: list[Path]) -> dict[str, Path]:
        """The IR's weights travel beside the .xml."""
        weights = [f for f in files if f.suffix == ".bin"]
        return {"artifact": main, **({"artifact_weights": weights[0]} if weights else {})}

    def job_options(self, precision: str) -> dict[str, Any]:
        return {"precision": precision}  # the backend executes fp16 IRs in f16 where the device can
