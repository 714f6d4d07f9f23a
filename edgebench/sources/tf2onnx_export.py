"""TensorFlow to ONNX with tf2onnx, shared by the Keras and SavedModel sources.

The model is wrapped in a ``tf.function`` whose input signature names each input as the model does and leaves
the batch axis open, and ``tf2onnx.convert.from_function`` converts it (``from_keras`` fails on Keras 3): input
names are kept, open axes become symbolic, and outputs returned as a dict are named by its keys. tf2onnx logs an
op it has no conversion for and writes the model anyway; those log lines are collected and the export refused,
naming the op. TensorFlow is imported by these functions only, with its C++ log level raised to warnings.
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

from edgebench.errors import EdgebenchError
from edgebench.sources.base import export_failed

OPSET = 17
TF2ONNX = "tf2onnx"
# module → the distributions that install it
PACKAGES = {"tensorflow": ("tensorflow", "tensorflow-cpu", "tensorflow-macos", "tensorflow-intel"),
            "tf2onnx": ("tf2onnx",)}
_UNSUPPORTED = re.compile(r"Tensorflow op \[([^\]]+): ([^\]]+)\] is not supported")
_FAILED = re.compile(r"Failed to convert node '([^']+)'.*?OP=(\w+)", re.DOTALL)  # a handler that raised


def import_tensorflow() -> Any:
    """TensorFlow, imported with its C++ start-up notices (oneDNN, CPU features) left out unless asked for."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    return tf


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@contextmanager
def _collected(name: str) -> Iterator[_Lines]:
    """The logger ``name``'s warnings and errors, collected instead of printed."""
    logger, lines = logging.getLogger(name), _Lines()
    before = logger.handlers[:], logger.propagate
    logger.handlers, logger.propagate = [lines], False
    try:
        yield lines
    finally:
        logger.handlers, logger.propagate = before


def failed_op(lines: Sequence[str]) -> str | None:
    """The first op tf2onnx said it cannot convert (``BesselI0 (node bessel_i0/BesselI0)``), or None."""
    for line in lines:
        found = _UNSUPPORTED.search(line)
        if found:
            return f"{found.group(2)} (node {found.group(1)})"
        found = _FAILED.search(line)
        if found:
            return f"{found.group(2)} (node {found.group(1)})"
    return None


def convert(function: Any, signature: Sequence[Any], out: Path, source: Path) -> None:
    """``function`` (a ``tf.function`` with ``signature``) as ONNX at ``out``; an op tf2onnx cannot convert is
    exit 10, naming it."""
    import tf2onnx

    with _collected("tf2onnx") as lines, _collected("tensorflow"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            tf2onnx.convert.from_function(function, input_signature=list(signature), opset=OPSET,
                                          output_path=str(out))
        except EdgebenchError:
            raise
        except Exception as exc:  # tf2onnx raises what its op handlers raise
            raise export_failed(TF2ONNX, source, failed_op(lines.lines), exc) from None
    op = failed_op(lines.lines)
    if op is not None:
        raise export_failed(TF2ONNX, source, op, None)
