"""OpenVINO-native int8: post-training quantization of an ``ov.Model`` with NNCF, calibrated on an .npz.

NNCF is OpenVINO's own quantizer: it inserts FakeQuantize nodes that the CPU/GPU/NPU plugins execute as
int8, which is what a deployed OpenVINO model does, rather than importing ONNX QDQ nodes. The converter
layer calls :func:`quantize_openvino` on the model it converted; this module only needs the model's
inputs, so the calibration set is checked against them (naming a misfit input) before NNCF runs.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.formats.calibration import Shapes, calibration_feeds, require_calibration
from edgebench.formats.openvino import OpenVinoFormat
from edgebench.formats.tooling import quiet, tool_message
from edgebench.data.source import TensorSpec

MAX_SUBSET = 300  # NNCF's default number of calibration samples


def _nncf() -> Any:
    nncf = OpenVinoFormat.require("nncf", "OpenVINO int8 needs NNCF")
    nncf.set_log_level(logging.ERROR)  # its progress bars and tables would mix into the CLI's output
    return nncf


def input_specs(model: Any) -> tuple[TensorSpec, ...]:
    """The ov.Model's inputs as TensorSpecs (dynamic dimensions as None), for the data checks."""
    specs = []
    for port in model.inputs:
        shape = tuple(d.get_length() if d.is_static else None for d in port.get_partial_shape())
        specs.append(TensorSpec(port.get_any_name(), np.dtype(port.get_element_type().to_dtype()).name, shape))
    return tuple(specs)


def is_transformer(model: Any) -> bool:
    """Attention present: OpenVINO's fused ScaledDotProductAttention, or a MatMul of two computed tensors
    (queries × keys) beside a Softmax. For such models NNCF's TRANSFORMER model type leaves element-wise
    ops and normalisation (Add, Power, ReduceMean, MVN …) in float, smooths activation outliers into the
    weights (SmoothQuant) and quantizes activations asymmetrically (the ``mixed`` preset), as OpenVINO's
    guide advises for transformers."""
    ops = model.get_ordered_ops()
    types = {op.get_type_name() for op in ops}
    if "ScaledDotProductAttention" in types:
        return True

    def computed(value: Any) -> bool:
        return value.get_node().get_type_name() not in ("Constant", "Convert")

    return "Softmax" in types and any(op.get_type_name() == "MatMul" and computed(op.input_value(0))
                                      and computed(op.input_value(1)) for op in ops)


def nncf_settings(model: Any, per_channel: bool = True) -> dict[str, Any]:
    """How :func:`quantize_openvino` quantizes ``model`` (for the artifact's meta): NNCF's own defaults, the
    ``performance`` preset (symmetric int8, what the CPU plugin runs fastest) for CNNs and the
    TRANSFORMER model type (``mixed`` preset) for transformers, as OpenVINO's guide advises."""
    transformer = is_transformer(model)
    return {"quantizer": "nncf.quantize (post-training, MinMax)", "per_channel": per_channel,
            "model_type": "transformer" if transformer else "default",
            "preset": "mixed" if transformer else "performance"}


def quantize_openvino(model: Any, calibration: str | Path | None, subset_size: int = MAX_SUBSET,
                      ignored_names: list[str] | None = None, per_channel: bool = True,
                      shapes: Shapes | None = None) -> Any:
    """Return the int8 ov.Model (settings: :func:`nncf_settings`); ``ignored_names`` keeps those nodes in
    float (e.g. first/last layers). ``per_channel=False`` gives each weight one scale, so a clustered layer
    keeps ≤ K values."""
    items = list(calibration_feeds(input_specs(model), require_calibration(Path(calibration) if calibration else None),
                                   shapes, pooled=False))
    nncf = _nncf()
    kwargs: dict[str, Any] = {"subset_size": min(subset_size, len(items))}
    if nncf_settings(model)["model_type"] == "transformer":
        kwargs["model_type"] = nncf.ModelType.TRANSFORMER
    if ignored_names:
        kwargs["ignored_scope"] = nncf.IgnoredScope(names=list(ignored_names))
    if not per_channel:
        from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, QuantizationParameters

        kwargs["advanced_parameters"] = AdvancedQuantizationParameters(
            weights_quantization_params=QuantizationParameters(per_channel=False))
    try:
        with quiet():
            return nncf.quantize(model, nncf.Dataset(items), **kwargs)
    except Exception as exc:  # NNCF raises its own and the plugin's exception types
        raise EdgebenchError(f"NNCF could not quantize the OpenVINO model ({tool_message(exc)}): try int8-dynamic, "
                             "or int8 on the onnx format", ExitStatus.CONVERSION_FAILED) from None


def compress_weights_int8(model: Any) -> Any:
    """OpenVINO's counterpart of dynamic-range int8: weights stored as symmetric int8 (zero stays zero)
    and decompressed to float at run time; activations stay float. No calibration set is needed."""
    nncf = _nncf()
    with quiet():
        return nncf.compress_weights(model, mode=nncf.CompressWeightsMode.INT8_SYM)
