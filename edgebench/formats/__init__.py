"""Deployment formats: a ``Format`` per package (``onnx/``, ``openvino/``, ``tflite/``, ``tensorrt/``) owning
its converter, its format-native quantizer, its weight and precision readers, its runner backend and the
options that backend accepts; and the registry that names them (``registry.REGISTRY``).

Adding a format is one new package with a ``Format`` subclass plus one registry line (or a ``register``
call). Format packages are imported when their format is first looked up. See docs/formats.md.
"""

from edgebench.formats.base import Format, RunnerOptions, Weights
from edgebench.formats.registry import (REGISTRY, check_precision, convert, format_of, get, names, parse_formats,
                                        register, runtimes)
from edgebench.formats.tensors import Artifact, TensorIO

__all__ = ["Artifact", "Format", "REGISTRY", "RunnerOptions", "TensorIO", "Weights", "check_precision", "convert",
           "format_of", "get", "names", "parse_formats", "register", "runtimes"]
