"""OpenVINO IR straight from a framework's model, for the direct routes (``artifacts.routes``): ``ov.convert_model``
of a TensorFlow SavedModel folder or a ``torch.export`` program, with no ONNX in between, then the ONNX route's own
quantizers and ``save_model`` (``convert.quantized``: NNCF for int8, fp16 by ``compress_to_fp16``).

The IR's tensors take the names of the source's hub ONNX (``tensors.matched``: by name, else in order) and its
inputs the hub ONNX's shapes (OpenVINO converts a program with every dimension open), so a dataset, a calibration
set and the agreement check keyed by those names serve both routes alike.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Sequence

from edgebench.data.source import TensorSpec
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.formats.openvino.convert import _adopt_source_names, conversion_failure, describe, ov_module, quantized
from edgebench.formats.tensors import Artifact, matched
from edgebench.formats.tooling import quiet

CONVERTER = "openvino.convert_model"


def convert_framework(model: Any, precision: str, out_dir: Path, what: str, inputs: Sequence[TensorSpec],
                      outputs: Sequence[TensorSpec], calibration: Path | None = None, per_channel: bool = True,
                      shapes: dict[str, Any] | None = None) -> Artifact:
    """The IR of ``model`` (what ``ov.convert_model`` takes: a SavedModel folder's path, an ExportedProgram) at
    ``precision`` into ``out_dir``, its tensors named and shaped as the hub ONNX's ``inputs`` and ``outputs``.
    ``what`` names the model in a failure, which is one line."""
    ov = ov_module()
    try:
        with quiet(), warnings.catch_warnings():  # the frameworks' deprecation notices while OpenVINO reads them
            warnings.simplefilter("ignore")
            converted = ov.convert_model(model)
    except Exception as exc:  # OpenVINO raises its own exception types per frontend
        raise EdgebenchError(f"OpenVINO cannot convert {what}: {conversion_failure(str(exc))}: convert it through its "
                             "ONNX (--route hub)", ExitStatus.CONVERSION_FAILED) from None
    for ports, specs in ((converted.inputs, inputs), (converted.outputs, outputs)):
        for port, spec in zip(ports, matched([_name(p) for p in ports], specs, f"OpenVINO's conversion of {what}")):
            port.get_tensor().set_names({spec.name})
    converted.reshape({s.name: ov.PartialShape([d if isinstance(d, int) else -1 for d in s.shape]) for s in inputs})
    how: dict[str, Any] = {"converter": CONVERTER, "compress_to_fp16": precision == "fp16"}
    converted = quantized(converted, precision, calibration, per_channel, shapes, how)
    out_dir.mkdir(parents=True, exist_ok=True)
    xml = out_dir / "model.xml"
    ov.save_model(converted, str(xml), compress_to_fp16=(precision == "fp16"))
    ins, outs = describe(xml)
    _adopt_source_names(ins, inputs)
    _adopt_source_names(outs, outputs)
    return Artifact("openvino", precision, [xml, xml.with_suffix(".bin")], xml, ins, outs,
                    meta={**how, "tool_versions": {"openvino": ov.get_version()}})


def _name(port: Any) -> str:
    return port.get_any_name() if port.get_names() else ""
