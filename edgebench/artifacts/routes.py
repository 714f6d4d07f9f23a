"""Which route a conversion of a source model takes: through its hub ONNX (every format can), or straight from the
source where the format has a converter for that framework — ``ROUTES``, one line per (source kind, format).

A direct route serves only what it can honour: a plain precision (fp32, fp16, int8 calibrated on the calibration
set, int8-dynamic) and, where ``qat``, a quantization-aware-trained model's own int8. A recipe with a compression
step (prune, cluster, lowrank, finetune …) edits the hub ONNX, so it goes through the hub as before, and so does a
source with no copy kept beside its hub ONNX (``sources.hub.kept_copy``). ``choose`` decides, once, in the artifact
cache's ``_conversion``; the route's name and the source's content hash are then part of the artifact's key
(``Direct.key_material``), its tools' versions replace the hub converter's, and the artifact's meta.json records
the route taken (``route``: a direct one, or ``hub ONNX → <converter>``). ``route="hub"`` (``--route hub``) forces
the hub route, so the two can be compared as two artifacts.

The direct artifact's tensors carry the hub ONNX's names as their source names (``formats.tensors.matched``), and
its layout is the framework's, as the hub ONNX's is (Keras NHWC, PyTorch NCHW): datasets, calibration sets, --shape
and the agreement check keyed by the source's names work as for a hub-route artifact.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Mapping

from edgebench.compress.recipe import PRECISIONS, Recipe
from edgebench.data.source import TensorSpec, load_onnx_info
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.formats.calibration import calibration_feeds
from edgebench.formats.prequantized import prequantized
from edgebench.formats.tensors import Artifact, TensorIO, matched
from edgebench.sources.base import Source, native_output_silenced
from edgebench.sources.hub import MODULE, kept_copy, origin
from edgebench.sources.keras import KerasSource, output_names
from edgebench.sources.registry import get as get_source
from edgebench.sources.savedmodel import SavedModelSource
from edgebench.sources.torch_export import TorchExportSource

HUB = "hub"
CHOICES = ("auto", HUB)  # --route: a direct route where there is one, or the hub ONNX always
# The converter each format's hub route goes through, and the module whose version names it.
HUB_CONVERTERS = {"onnx": ("onnxruntime", "onnxruntime"), "openvino": ("openvino.convert_model", "openvino"),
                  "tflite": ("onnx2tf", "onnx2tf"), "tensorrt": ("TensorRT (engine built on the target)", None)}
# module → (the distributions that may install it, the edgebench extra that does)
TOOLS = {"tensorflow": (("tensorflow", "tensorflow-cpu", "tensorflow-macos", "tensorflow-intel"), "keras"),
         "keras": (("keras",), "keras"), "tf_keras": (("tf-keras", "tf_keras"), "keras"),
         "openvino": (("openvino",), "openvino"), "torch": (("torch",), "pytorch")}
LOADERS = ("keras", "tf_keras")  # the Keras that loads a Keras file (which one: its keras_version) keys its routes too

Convert = Callable[["Direct", str, Path, "Path | None", bool, bool, "dict[str, Any] | None"], Artifact]


@dataclass(frozen=True)
class Route:
    """One direct route: its name as meta.json records it, the module its ``tool`` names, the modules whose
    versions key its artifacts (with the Keras that loads the file, ``LOADERS``), what it can honour, and its
    converter."""

    name: str
    tool: str
    modules: tuple[str, ...]
    precisions: tuple[str, ...]
    qat: bool  # converts a quantization-aware-trained model to int8 with its own ranges, no calibration
    convert: Convert


@dataclass(frozen=True)
class Direct:
    """A direct route chosen for one conversion: the route, the source kind, the copy of the source it converts
    (kept in the hub entry), the source's content hash and the hub ONNX (names, shapes, calibration checks)."""

    route: Route
    kind: str
    copy: Path
    sha256: str
    hub: Path

    @property
    def source(self) -> Source:
        return get_source("torch_export" if self.kind == MODULE else self.kind)

    def versions(self) -> dict[str, str]:
        """The versions of the route's tools (part of the artifact's key), read from the packages' metadata
        without importing them; a missing one is exit 7 naming the extra."""
        found = {}
        for module in (*self.route.modules, *(m for m in self.source.packages(self.copy) if m in LOADERS)):
            dists, extra = TOOLS[module]
            version = next((v for d in dists if (v := _installed(d)) is not None), None)
            if version is None:
                raise EdgebenchError(f"the direct route {self.route.name} needs {module}, which is not installed: "
                                     f"pip install 'edgebench[{extra}]', or convert through the ONNX (--route hub)",
                                     ExitStatus.RUNTIME_MISSING)
            found[module] = version
        return found

    def key_material(self) -> dict[str, Any]:
        return {"route": self.route.name, "route_source_sha256": self.sha256}

    def convert(self, precision: str, out_dir: Path, calibration: Path | None, quantization: Mapping[str, Any],
                options: Mapping[str, Any]) -> Artifact:
        """The artifact, converted by the route from the source's copy (``quantization``: ``per_channel``, and
        ``qdq`` for a quantization-aware-trained source), its meta recording the route."""
        out_dir.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        with native_output_silenced():  # the framework's start-up and converter chatter
            artifact = self.route.convert(self, precision, out_dir, calibration,
                                          bool(quantization.get("per_channel", True)), bool(quantization.get("qdq")),
                                          options.get("shapes"))
        versions = self.versions()
        artifact.meta.update(convert_s=round(time.perf_counter() - t0, 3), tool_versions=versions,
                             route={"route": self.route.name, "tool": f"{self.route.tool} {versions[self.route.tool]}"})
        return artifact


def choose(hub: Path, fmt: str, recipe: Recipe, route: str | None = None) -> Direct | None:
    """The direct route for converting the source of the hub ONNX ``hub`` into ``fmt`` by ``recipe``; None for
    the hub route: ``route="hub"``, an ONNX that is no source's, no route for (kind, format), a recipe or a
    quantization-aware-trained model the route cannot honour, no copy of the source kept."""
    if route not in (None, *CHOICES):
        raise EdgebenchError(f"unknown route {route!r}: choose one of {', '.join(CHOICES)}", ExitStatus.USAGE)
    source = origin(hub) if route != HUB else None
    if source is None:
        return None
    found = ROUTES.get((source["kind"], fmt))
    if found is None or not plain(recipe) or recipe.precision not in found.precisions:
        return None
    if prequantized(hub) and not (recipe.precision == "int8" and found.qat):  # its own Q/DQ: the hub takes them
        return None
    copy = kept_copy(hub)
    return None if copy is None else Direct(found, str(source["kind"]), copy, str(source["sha256"]), hub)


def plain(recipe: Recipe) -> bool:
    """A recipe of one precision at most (int8 calibrated by min/max, as every route's converter does): no step
    that edits the hub ONNX's weights or trains it."""
    return all(s.kind in PRECISIONS for s in recipe.steps) and all(s.option in (None, "minmax") for s in recipe.steps)


def record(fmt: str, artifact: Artifact) -> dict[str, str]:
    """meta.json's ``route`` for an artifact of a source made through its hub ONNX."""
    converter, module = HUB_CONVERTERS.get(fmt, (f"the {fmt} converter", None))
    version = artifact.meta.get("tool_versions", {}).get(module) if module else None
    return {"route": f"hub ONNX → {converter}", **({"tool": f"{module} {version}"} if version else {})}


def _installed(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _feeds(d: Direct, calibration: Path | None, shapes: Mapping[str, Any] | None) -> Callable[[], Any] | None:
    """The calibration set cut into feeds keyed by the hub ONNX's input names (the source's), for TFLite's
    representative dataset."""
    if calibration is None:
        return None
    specs = load_onnx_info(d.hub).inputs
    sizes = {k: tuple(v) for k, v in (shapes or {}).items()}
    return lambda: calibration_feeds(specs, calibration, sizes, pooled=False)


def _mapped(artifact: Artifact, hub: Path, what: str, aliases: Mapping[str, str] | None = None) -> Artifact:
    """``artifact``'s tensors with the hub ONNX's names and shapes as their source side (same layout)."""
    info = load_onnx_info(hub)

    def pair(tensors: list[TensorIO], specs: tuple[TensorSpec, ...]) -> list[TensorIO]:
        found = matched([t.name for t in tensors], specs, what, aliases)
        return [TensorIO(t.name, t.dtype, t.shape, s.name, s.shape) for t, s in zip(tensors, found)]

    artifact.inputs, artifact.outputs = pair(artifact.inputs, info.inputs), pair(artifact.outputs, info.outputs)
    return artifact


def _keras_tflite(d: Direct, precision: str, out_dir: Path, calibration: Path | None, per_channel: bool, qat: bool,
                  shapes: dict[str, Any] | None) -> Artifact:
    from edgebench.formats.tflite.tf_converter import convert_tf

    model = KerasSource().load(d.copy)
    artifact = convert_tf(lambda tf: tf.lite.TFLiteConverter.from_keras_model(model), precision, out_dir,
                          d.copy.name, _feeds(d, calibration, shapes), per_channel, qat)
    # Keras 3's signature names outputs output_0, output_1 … in the model's order; tf_keras by the output layers
    aliases = {f"output_{i}": name for i, name in enumerate(output_names(model))}
    return _mapped(artifact, d.hub, f"the TFLite conversion of {d.copy.name}", aliases)


def _savedmodel_tflite(d: Direct, precision: str, out_dir: Path, calibration: Path | None, per_channel: bool,
                       qat: bool, shapes: dict[str, Any] | None) -> Artifact:
    from edgebench.formats.tflite.tf_converter import convert_tf

    _, signature = SavedModelSource().signature(d.copy)
    artifact = convert_tf(lambda tf: tf.lite.TFLiteConverter.from_saved_model(str(d.copy), signature_keys=[signature]),
                          precision, out_dir, d.copy.name, _feeds(d, calibration, shapes), per_channel, qat)
    return _mapped(artifact, d.hub, f"the TFLite conversion of {d.copy.name}")


def _openvino(d: Direct, precision: str, out_dir: Path, calibration: Path | None, per_channel: bool, qat: bool,
              shapes: dict[str, Any] | None) -> Artifact:
    """A SavedModel folder (by path) or a torch.export program (loaded) through ``ov.convert_model``."""
    from edgebench.formats.openvino.from_framework import convert_framework

    model = str(d.copy) if d.kind == "savedmodel" else TorchExportSource().load(d.copy)
    info = load_onnx_info(d.hub)
    return convert_framework(model, precision, out_dir, d.copy.name, info.inputs, info.outputs, calibration,
                             per_channel, shapes)


ALL = ("fp32", "fp16", "int8", "int8-dynamic")
ROUTES: dict[tuple[str, str], Route] = {
    ("keras", "tflite"): Route("Keras model → TFLiteConverter.from_keras_model", "tensorflow", ("tensorflow",), ALL,
                               True, _keras_tflite),
    ("savedmodel", "tflite"): Route("SavedModel → TFLiteConverter.from_saved_model", "tensorflow", ("tensorflow",),
                                    ALL, True, _savedmodel_tflite),
    ("savedmodel", "openvino"): Route("SavedModel → openvino.convert_model", "openvino", ("openvino",), ALL, False,
                                      _openvino),
    ("torch_export", "openvino"): Route("torch.export program → openvino.convert_model", "openvino",
                                        ("openvino", "torch"), ALL, False, _openvino),
    (MODULE, "openvino"): Route("nn.Module's torch.export program → openvino.convert_model", "openvino",
                                ("openvino", "torch"), ALL, False, _openvino),
}
