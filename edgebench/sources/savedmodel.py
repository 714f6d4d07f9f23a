"""TensorFlow SavedModel folders (``tf.saved_model.save``, Keras 3's ``model.export``, tf_keras' ``save_format="tf"``)
→ ONNX through tf2onnx, from the serving signature: its input names are the ONNX inputs', its output keys the
ONNX outputs'. The graph in the folder is traced already, so custom layers need no registering here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.sources.base import Source
from edgebench.sources.tf2onnx_export import OPSET, PACKAGES, TF2ONNX, convert, import_tensorflow
from edgebench.text import one_line

SERVING = "serving_default"


class SavedModelSource(Source):
    name = "savedmodel"
    label = "TensorFlow SavedModel"
    extra = "keras"
    exporter = TF2ONNX
    folder = True
    copied = True
    save_hint = "pass the folder tf.saved_model.save or Keras' model.export wrote (it holds saved_model.pb)"

    def sniff(self, path: Path) -> str | None:
        if (path / "saved_model.pb").is_file() or (path / "saved_model.pbtxt").is_file():
            return None
        return "a folder without saved_model.pb"

    def packages(self, path: Path) -> dict[str, tuple[str, ...]]:
        return dict(PACKAGES)

    def signature(self, path: Path) -> tuple[Any, str]:
        """The SavedModel, loaded, and the name of the signature it is served by: ``serving_default``, or its only
        one (the export's, and the direct TFLite route's, ``artifacts.routes``). The loaded object owns the
        signature's variables: keep it while the signature is used."""
        self.require("tensorflow")
        tf = import_tensorflow()
        try:
            loaded = tf.saved_model.load(str(path))
        except Exception as exc:
            raise EdgebenchError(f"TensorFlow cannot load the SavedModel {path} ({type(exc).__name__}: "
                                 f"{one_line(str(exc), 240)}): {self.save_hint}", ExitStatus.INVALID_MODEL) from None
        signatures = dict(loaded.signatures)
        name = SERVING if SERVING in signatures else next(iter(signatures)) if len(signatures) == 1 else None
        if name is None:
            have = ", ".join(signatures) or "none"
            raise EdgebenchError(f"the SavedModel {path} has no {SERVING} signature (its signatures: {have}): save it "
                                 "with signatures={'serving_default': f} (Keras: model.export)",
                                 ExitStatus.INVALID_MODEL)
        return loaded, name

    def export_onnx(self, path: Path, out: Path, shapes: Mapping[str, tuple[int, ...]]) -> str:
        self.require(*PACKAGES)
        loaded, name = self.signature(path)
        function = loaded.signatures[name]
        tf = import_tensorflow()
        _, given = function.structured_input_signature
        names = sorted(given)
        specs = [tf.TensorSpec(given[n].shape, given[n].dtype, name=n) for n in names]

        @tf.function(input_signature=specs)
        def call(*inputs: Any) -> Any:
            return function(**dict(zip(names, inputs)))

        convert(call, specs, out, path)
        return f"SavedModel signature {name} → {TF2ONNX}, opset {OPSET}"
