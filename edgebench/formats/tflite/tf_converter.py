"""TFLite straight from TensorFlow, for the direct routes (``artifacts.routes``): a Keras model or a SavedModel
through ``tf.lite.TFLiteConverter`` in this process, with no ONNX in between.

Each precision is set as the ONNX route's onnx2tf sets it on the same converter (``_onnx2tf_worker``), so the two
routes' artifacts differ only in the graph they start from: fp16 is float16 weights with float32 compute and I/O
(``supported_types=[float16]``); int8 is onnx2tf's ``integer_quant``, full integer (``TFLITE_BUILTINS_INT8``: int8
weights and activations, ranges from a representative dataset of the calibration set, float32 input and output,
one scale per output channel unless ``per_channel`` is off); int8-dynamic is dynamic-range quantization (int8
weights, float activations). A quantization-aware-trained model (tfmot's fake-quant ops) converts to int8 with
``Optimize.DEFAULT`` alone: the ranges are its own, trained, and no calibration set is read.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.formats.tensors import Artifact
from edgebench.formats.tflite.interpreter import describe
from edgebench.formats.tooling import quiet, tool_message

CONVERTER = "tf.lite.TFLiteConverter"
Feeds = Callable[[], Iterable[dict[str, np.ndarray]]]


def convert_tf(make: Callable[[Any], Any], precision: str, out_dir: Path, what: str, feeds: Feeds | None = None,
               per_channel: bool = True, qat: bool = False) -> Artifact:
    """The .tflite of the converter ``make(tf)`` returns (``from_keras_model``, ``from_saved_model``) at
    ``precision`` into ``out_dir``; ``feeds`` (int8): the calibration set, one dict per sample batch keyed by the
    model's input names; ``qat``: int8 from the model's own fake-quant ranges. ``what`` names the model in a
    failure, which is one line."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    converter = make(tf)
    meta: dict[str, Any] = {"converter": CONVERTER}
    if qat:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        meta["quantizer"] = f"{CONVERTER} from the model's quantization-aware-training ranges (no calibration)"
    elif precision == "fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif precision == "int8":
        if feeds is None:
            raise EdgebenchError("TFLite int8 needs a calibration set to fix activation ranges: pass --calibration NPZ",
                                 ExitStatus.USAGE)
        samples = feeds

        def representative() -> Iterator[dict[str, np.ndarray]]:
            for feed in samples():
                yield {name: np.asarray(arr, np.float32) for name, arr in feed.items()}

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.representative_dataset = representative
        converter._experimental_disable_per_channel = not per_channel
        meta.update(quantizer=f"{CONVERTER} full integer (int8 weights and activations, float32 I/O)",
                    per_channel=per_channel)
    elif precision == "int8-dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        meta.update(quantizer=f"{CONVERTER} dynamic range (int8 weights)", per_channel=True)
    failure = None
    with quiet(), warnings.catch_warnings():  # Keras' export prints its endpoints; the converter warns
        warnings.simplefilter("ignore")
        try:
            flat = converter.convert()
        except Exception as exc:  # TensorFlow's ConverterError, an op the builtins lack, a failed calibration
            failure = exc
    if failure is not None:
        raise EdgebenchError(f"TFLiteConverter cannot convert {what} to {precision} ({failure_reason(failure)}): "
                             "convert it through its ONNX (--route hub), or use another format",
                             ExitStatus.CONVERSION_FAILED)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / "model.tflite"
    target.write_bytes(flat)
    inputs, outputs = describe(target)
    return Artifact("tflite", precision, [target], target, inputs, outputs,
                    meta={**meta, "tool_versions": {"tensorflow": tf.__version__}})


def failure_reason(exc: BaseException) -> str:
    """The converter's page-long MLIR report, as the ops it could not take when it names them."""
    text = str(exc)
    ops = re.search(r"TF Select ops: ([^\n]+)", text) or re.search(r"'tf\.(\w+)' op is neither a custom op", text)
    if ops:
        return (f"TensorFlow op {ops.group(1).strip()} has no builtin TFLite kernel (LiteRT runs it only with the Flex "
                "delegate)")
    return tool_message(exc, 400)
