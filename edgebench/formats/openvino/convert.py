"""The OpenVINO converter: ``ov.convert_model`` of the ONNX, NNCF for int8, ``ov.save_model`` (see the
package's docstring); and the IR's tensors read back with the OpenVINO runtime."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.formats.openvino import OpenVinoFormat
from edgebench.formats.tensors import Artifact, TensorIO
from edgebench.data.source import load_onnx_info


def ov_module() -> Any:
    """The ``openvino`` module, or RUNTIME_MISSING naming the extra that installs it."""
    return OpenVinoFormat.require("openvino", "OpenVINO is not installed")


def convert(source: Path, precision: str, out_dir: Path, calibration: Path | None = None,
            quantization: dict[str, Any] | None = None, shapes: dict[str, Any] | None = None,
            **_: Any) -> Artifact:
    from edgebench.formats.prequantized import check_qdq, qdq_file

    ov = ov_module()
    qdq_path = qdq_file(quantization)
    qdq = None if qdq_path is None else check_qdq(qdq_path, precision, "openvino")
    try:
        model = ov.convert_model(str(qdq_path or source))
    except Exception as exc:  # OpenVINO raises its own exception types per frontend
        raise EdgebenchError(f"OpenVINO's ONNX frontend cannot convert the model: {conversion_failure(str(exc))}: "
                             "bench it in the onnx format, or give OpenVINO a model exported for it (static "
                             "shapes, supported ops)", ExitStatus.CONVERSION_FAILED) from None
    how: dict[str, Any] = {"compress_to_fp16": precision == "fp16"}
    if qdq is not None:  # its Q/DQ pairs are FakeQuantize now, run in int8 as NNCF's would be
        how.update(qdq)
    else:
        model = quantized(model, precision, calibration, bool((quantization or {}).get("per_channel", True)),
                          shapes, how)
    xml = out_dir / "model.xml"
    ov.save_model(model, str(xml), compress_to_fp16=(precision == "fp16"))
    inputs, outputs = describe(xml)
    info = load_onnx_info(source)
    _adopt_source_names(inputs, info.inputs)
    _adopt_source_names(outputs, info.outputs)
    return Artifact("openvino", precision, [xml, xml.with_suffix(".bin")], xml, inputs, outputs,
                    meta=how)


def quantized(model: Any, precision: str, calibration: Path | None, per_channel: bool,
              shapes: dict[str, Any] | None, how: dict[str, Any]) -> Any:
    """The converted ``model`` quantized by OpenVINO's own tools at ``precision`` (int8: NNCF on the calibration
    set; int8-dynamic: NNCF's weight-only int8; otherwise as it is), what was done added to ``how``."""
    if precision == "int8":
        from edgebench.formats.openvino.quantize import nncf_settings, quantize_openvino

        how.update(nncf_settings(model, per_channel))
        return quantize_openvino(model, calibration, per_channel=per_channel,
                                 shapes={k: tuple(v) for k, v in (shapes or {}).items()})
    if precision == "int8-dynamic":
        from edgebench.formats.openvino.quantize import compress_weights_int8

        how.update(quantizer="nncf.compress_weights INT8_SYM (weight-only int8, float activations)")
        return compress_weights_int8(model)
    return model


def _adopt_source_names(tensors: list[TensorIO], specs: Any) -> None:
    """convert_model keeps ONNX names; record the ONNX shapes (symbolic names included) beside them."""
    by_name = {s.name: s for s in specs}
    for i, t in enumerate(tensors):
        spec = by_name.get(t.name) or (specs[i] if i < len(specs) else None)
        if spec is not None:
            tensors[i] = TensorIO(t.name, t.dtype, t.shape, spec.name, spec.shape, t.layout, None)


def describe(path: Path) -> tuple[list[TensorIO], list[TensorIO]]:
    """Names, dtypes and shapes of an IR, read with the OpenVINO runtime on the host."""
    ov = ov_module()
    try:
        model = ov.Core().read_model(str(path))
    except Exception as exc:
        raise EdgebenchError(f"{path} is not a readable OpenVINO IR ({conversion_failure(str(exc))}): pass the .xml with "
                             "its .bin beside it, or convert again", ExitStatus.INVALID_MODEL) from None

    def tensors(ports: Any) -> list[TensorIO]:
        out = []
        for port in ports:
            shape = tuple(d.get_length() if d.is_static else None for d in port.get_partial_shape())
            name = port.get_any_name() if port.get_names() else port.get_node().get_friendly_name()
            out.append(TensorIO(name, port.get_element_type().to_dtype().name, shape, name, shape))
        return out

    return tensors(model.inputs), tensors(model.outputs)


def conversion_failure(message: str) -> str:
    """The failing op, its node and the frontend's reason, from OpenVINO's page-long conversion report."""
    failed = re.search(r"Conversion is failed for: (.+)", message)
    node = re.search(r"<Node\((\w+)\): ([^>]+)>", message)
    noise = ("Check ", "While validating", "FrontEnd API failed", "[ONNX Frontend]", "Model wasn't", "Summary",
             "Traceback", "Conversion is failed for")
    lines = [ln.strip().removeprefix("-- ") for ln in message.splitlines() if not ln.strip().endswith("with a message:")]
    reasons = [ln for ln in lines if ln and not ln.startswith(noise)]
    reason = next((ln for ln in reasons if "No conversion rule" in ln), reasons[0] if reasons else "")
    parts = [f"{node.group(1)} node {node.group(2)!r}" if node else "", reason[:200],
             f"failed ops: {failed.group(1).strip()}" if failed else ""]
    return "; ".join(p for p in parts if p) or "no message"
