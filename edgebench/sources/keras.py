"""Keras models (``.keras``, ``.h5``/``.hdf5``) → ONNX through tf2onnx.

Keras 3 writes ``.keras`` (a zip: config.json, model.weights.h5, metadata.json); tf_keras (Keras 2 — what TF Model
Optimization's pruned, clustered and quantization-aware models are) writes ``.h5`` and a ``.keras`` of its own. The
file's ``keras_version`` says which one loads it: 3.x Keras 3, older tf_keras, inside TF Model Optimization's
scopes when it is installed (its wrapper layers load only there). The model is called in a ``tf.function`` whose
signature names each input as the model does, with an open batch axis (``tf2onnx_export``).
"""

from __future__ import annotations

import json
import re
import warnings
import zipfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Mapping

from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.sources.base import HDF5_MAGIC, Source, what_it_is, zip_names
from edgebench.sources.tf2onnx_export import OPSET, PACKAGES, TF2ONNX, convert, import_tensorflow
from edgebench.text import one_line


# How Keras 3 and tf_keras name a class they cannot find (an unregistered custom layer, tfmot's wrappers without it)
_CUSTOM = re.compile(r"(?:[Cc]ould not locate class|Unknown (?:layer|object|class)\w*:?) '([^']+)'")

_TFMOT = ("Quantize", "PruneLowMagnitude", "ClusterWeights")  # TF Model Optimization's wrapper layers


class KerasSource(Source):
    name = "keras"
    label = "Keras model"
    extra = "keras"
    exporter = TF2ONNX
    suffixes = (".keras", ".h5", ".hdf5")
    copied = True
    save_hint = "save it with model.save('model.keras') (Keras 3) or model.save('model.h5') (tf_keras)"

    def sniff(self, path: Path) -> str | None:
        if path.suffix.lower() == ".keras":
            names = zip_names(path)
            if names is None:
                return what_it_is(path)
            return None if "config.json" in names else "a zip without config.json"
        with open(path, "rb") as f:
            return None if f.read(len(HDF5_MAGIC)) == HDF5_MAGIC else what_it_is(path)

    def packages(self, path: Path) -> dict[str, tuple[str, ...]]:
        keras = {"keras": ("keras",)} if self.keras3(path) else {"tf_keras": ("tf-keras", "tf_keras")}
        return {**PACKAGES, **keras}

    def keras3(self, path: Path) -> bool:
        """Whether Keras 3 wrote the file (its ``keras_version``); without one, an older Keras did."""
        return _keras_version(path, self).startswith("3")

    def load(self, path: Path) -> Any:
        """The Keras model in ``path``, loaded in this process by the Keras that wrote it (for the export, and for
        the direct TFLite route, ``artifacts.routes``); one with no defined inputs is refused."""
        keras3 = self.keras3(path)
        self.require("tensorflow", "keras" if keras3 else "tf_keras")
        import_tensorflow()
        model = self._load(path, keras3)
        if not getattr(model, "inputs", None):
            raise EdgebenchError(f"{path.name} holds a Keras model without defined inputs (a subclassed model): build "
                                 "it on keras.Input, or export a SavedModel (model.export('dir')) and pass that folder",
                                 ExitStatus.INVALID_MODEL)
        return model

    def export_onnx(self, path: Path, out: Path, shapes: Mapping[str, tuple[int, ...]]) -> str:
        keras3 = self.keras3(path)
        self.require("tf2onnx")
        model = self.load(path)
        tf = import_tensorflow()
        names = [str(getattr(t, "name", f"input_{i}")).split(":")[0] for i, t in enumerate(model.inputs)]
        specs = [tf.TensorSpec((None, *tuple(t.shape)[1:]), t.dtype, name=n) for n, t in zip(names, model.inputs)]
        outputs = output_names(model)

        @tf.function(input_signature=specs)
        def call(*inputs: Any) -> dict[str, Any]:
            result = model(list(inputs) if len(inputs) > 1 else inputs[0], training=False)
            if isinstance(result, dict):
                return dict(result)
            return dict(zip(outputs, result if isinstance(result, (list, tuple)) else [result]))

        convert(call, specs, out, path)
        return f"{'Keras 3' if keras3 else 'tf_keras'} model → tf.function → {TF2ONNX}, opset {OPSET}"

    def _load(self, path: Path, keras3: bool) -> Any:
        loader = "Keras 3" if keras3 else "tf_keras"
        try:
            with ExitStack() as scopes:
                if keras3:
                    import keras

                    return keras.saving.load_model(str(path), compile=False)
                import tf_keras

                _tfmot_scopes(scopes)
                return tf_keras.models.load_model(str(path), compile=False)
        except Exception as exc:  # an unregistered custom layer, a damaged file, a Lambda that safe mode refuses …
            custom = _CUSTOM.search(str(exc))
            why = (f"its custom class {custom.group(1)!r} is not registered here" if custom
                   else f"{type(exc).__name__}: {one_line(str(exc), 240)}")
            tfmot = custom is not None and custom.group(1).startswith(_TFMOT)
            fix = "install TF Model Optimization (pip install 'edgebench[keras]'), or " if tfmot else ""
            raise EdgebenchError(f"{loader} cannot load {path.name} ({why}): {fix}export a SavedModel instead "
                                 "(model.export('dir') or tf.saved_model.save: its graph needs no custom classes) and "
                                 "pass that folder", ExitStatus.INVALID_MODEL) from None


def _tfmot_scopes(scopes: ExitStack) -> None:
    """TF Model Optimization's custom objects (quantize, prune and cluster wrappers), where it is installed."""
    try:
        with warnings.catch_warnings():  # its import's distutils deprecation notice
            warnings.simplefilter("ignore")
            import tensorflow_model_optimization as tfmot
    except Exception:  # not installed, or not for this TensorFlow: its wrappers then fail to load, named there
        return
    scopes.enter_context(tfmot.quantization.keras.quantize_scope())
    scopes.enter_context(tfmot.sparsity.keras.prune_scope())
    scopes.enter_context(tfmot.clustering.keras.cluster_scope())


def _keras_version(path: Path, source: Source) -> str:
    """The ``keras_version`` a Keras file records ("" when it records none)."""
    if path.suffix.lower() == ".keras":
        try:
            with zipfile.ZipFile(path) as archive:
                meta = json.loads(archive.read("metadata.json")) if "metadata.json" in archive.namelist() else {}
        except (zipfile.BadZipFile, OSError, ValueError):
            return ""
        return str(meta.get("keras_version", "")) if isinstance(meta, dict) else ""
    try:
        import h5py
    except ImportError as exc:
        raise source.missing("h5py", str(exc)) from None
    try:
        with h5py.File(path, "r") as f:
            value = f.attrs.get("keras_version", b"")
    except OSError:
        return ""
    return value.decode() if isinstance(value, bytes) else str(value)


def output_names(model: Any) -> list[str]:
    """The model's output names: Keras' own where it keeps them (a functional model), else — a Sequential model
    in Keras 3 has none — its last layer's name for its one output, ``output_K`` for several."""
    named = getattr(model, "output_names", None)
    if named:
        return [str(n) for n in named]
    count = len(getattr(model, "outputs", None) or [None])
    if count == 1 and getattr(model, "layers", None):
        return [str(model.layers[-1].name)]
    return [f"output_{k}" for k in range(count)]
