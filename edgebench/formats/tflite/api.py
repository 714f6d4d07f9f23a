"""TFLite from Python models: a Keras model (``tf.lite.TFLiteConverter``) or a torch.nn.Module (litert-torch).

These paths have no ONNX source; the artifact's tensors are the .tflite's own (source = artifact,
no permutation), and fp16 uses TFLite's float16 weight quantization (``target_spec.supported_types``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.formats.tensors import Artifact
from edgebench.formats.tflite import TfliteFormat
from edgebench.formats.tflite.interpreter import describe


def _artifact(target: Path, precision: str, converter: str, versions: dict[str, str]) -> Artifact:
    inputs, outputs = describe(target)
    return Artifact("tflite", precision, [target], target, inputs, outputs,
                    meta={"converter": converter, "tool_versions": versions})


def from_keras(model: Any, precision: str, out_dir: Path) -> Artifact:
    """Convert a Keras model in this process (the caller already holds TensorFlow)."""
    if precision not in TfliteFormat.precisions:
        raise EdgebenchError(f"TFLite from Keras supports {', '.join(TfliteFormat.precisions)}, not {precision!r}",
                             ExitStatus.USAGE)
    try:
        import tensorflow as tf
    except ImportError:
        raise EdgebenchError("converting a Keras model needs TensorFlow in this process: pip install tensorflow "
                             "(no edgebench extra: ONNX → TFLite runs in its own environment)",
                             ExitStatus.RUNTIME_MISSING) from None
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if precision == "fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / "model.tflite"
    target.write_bytes(converter.convert())
    return _artifact(target, precision, "tf.lite.TFLiteConverter", {"tensorflow": tf.__version__})


def from_torch(module: Any, sample_inputs: tuple[Any, ...], precision: str, out_dir: Path) -> Artifact:
    """Convert a torch.nn.Module with litert-torch (``litert_torch.convert(module, args).export(path)``).

    Unverified here: litert-torch pulls an unpinned torch, which this project does not install.
    fp16 is not offered by litert-torch's convert() itself; it needs a quantization config, so only fp32.
    """
    if precision != "fp32":
        raise EdgebenchError(f"TFLite from torch supports fp32 only here, not {precision!r}: export to ONNX "
                             "and convert with --to tflite --precision fp16", ExitStatus.USAGE)
    try:
        import litert_torch
    except ImportError:
        raise EdgebenchError("converting a torch module to TFLite needs litert-torch: pip install litert-torch "
                             "(it brings its own torch), or export to ONNX and use --to tflite",
                             ExitStatus.RUNTIME_MISSING) from None
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / "model.tflite"
    edge_model = litert_torch.convert(module.eval(), tuple(sample_inputs))
    edge_model.export(str(target))
    return _artifact(target, precision, "litert-torch", {"litert-torch": getattr(litert_torch, "__version__", "?")})
