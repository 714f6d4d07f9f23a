"""An artifact's ``meta.json`` as a typed record (``ArtifactMeta``): what every artifact has (its key, source,
recipe, files, tensors, sizes, cost metrics, the preservation check's outcome …) and, in ``details``, what its
format's converter adds. ``META_VERSION`` is part of every cache key: entries written before it are rebuilt,
and ``ArtifactMeta.from_dict`` still reads an older meta.json copied out of the cache (``compress --out``)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Mapping

from edgebench.formats.readback import Preservation
from edgebench.formats.tensors import TensorIO

# 2: recipes; costs read back from the produced files. 3: Constant weights lifted, layer rule, int8 scheme.
# 4: preservation as a Preservation value, with preservation_note beside it. 5: Deep Compression's storage
# measure (dc_bytes, dc_ratio); fine-tuned recipes (weights.training). 6: source models (origin, the route taken),
# compression made in the framework kept (one int8 scale per clustered tensor, a QAT source's own Q/DQ)
META_VERSION = 6

# The cost metrics a result carries from its artifact (pipeline.bench.cost_metrics): counted on the produced
# files (formats.readback.costs), ratios against the fp32 artifact of the same format (compress.metrics.ratios).
COST_METRICS = ("params", "nonzero_params", "sparsity", "max_unique_values", "size_ratio", "gzip_ratio", "dc_bytes",
                "dc_ratio")

__all__ = ["COST_METRICS", "META_VERSION", "ArtifactMeta", "ArtifactWeights", "Preservation"]


@dataclass(frozen=True)
class ArtifactWeights:
    """meta.json's ``weights``: the cached float ONNX the recipe's weight steps (prune, cluster) made."""

    float_onnx_sha256: str
    steps: Mapping[str, Any]  # step (``prune:0.5``) → its report (compress.weights: requested, achieved, warning)
    clustered: Mapping[str, int]  # clustered layer → K
    # fine-tuning (edgebench.training): settings, loss and held-out top-1 per epoch, top-1 before/after, QAT
    training: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"float_onnx_sha256": self.float_onnx_sha256, "steps": dict(self.steps),
                "clustered": dict(self.clustered), **({"training": dict(self.training)} if self.training else {})}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ArtifactWeights":
        return cls(d["float_onnx_sha256"], d["steps"], d["clustered"], d.get("training"))


@dataclass(frozen=True, kw_only=True)
class ArtifactMeta:
    """One cache entry's meta.json. ``details`` holds the keys a format's converter adds beside the common ones
    (its quantizer and how it was set: ``quantizer``, ``per_channel``, the int8 ``scheme``, ``int8_ops`` …;
    onnx2tf's ``converted_shapes``, ``kept_input_shapes``, ``sample_rel_err``; ONNX's ``optimize``); they
    differ per format and are kept as the converter wrote them. ``to_dict`` is the meta.json."""

    meta_version: int
    key: str
    edgebench_version: str
    created_utc: str
    format: str
    precision: str
    recipe: str  # canonical
    source: str  # the original model, not the float ONNX the weight steps made
    source_sha256: str
    calibration_sha256: str | None
    options: Mapping[str, Any]  # the converter's, the weight steps' layer selection and seed
    files: tuple[str, ...]  # relative to the entry
    main: str  # the file a runtime opens
    size_bytes: int
    gzip_bytes: int
    # read back from the produced files (formats.readback.costs); absent from a META_VERSION 1 meta.json
    params: int | None = None
    nonzero_params: int | None = None
    sparsity: float | None = None
    max_unique_values: int | None = None
    weights_from: str | None = None
    dc_bytes: int | None = None  # Deep Compression's storage measure (compress.storage); absent before issue 16
    inputs: tuple[TensorIO, ...]
    outputs: tuple[TensorIO, ...]
    details: Mapping[str, Any] = field(default_factory=dict)
    convert_s: float
    tool_versions: Mapping[str, str]
    preservation: Preservation | None = None  # None: a META_VERSION 1 meta.json
    preservation_note: str = ""
    weights: ArtifactWeights | None = None  # None: the recipe has no weight step
    # against the fp32 artifact of the same format (compress.metrics.ratios); None for that artifact itself
    size_ratio: float | None = None
    gzip_ratio: float | None = None
    dc_ratio: float | None = None
    reference_key: str | None = None
    # the source model the hub ONNX was exported from (sources.hub.HubModel.record: kind, path, sha256, exporter,
    # route, versions); None for an ONNX given as it is
    origin: Mapping[str, Any] | None = None
    # how a source's artifact was converted (artifacts.routes): {"route": "Keras model → TFLiteConverter…" or
    # "hub ONNX → onnx2tf", "tool": "tensorflow 2.21.0"}; None for an ONNX given as it is
    route: Mapping[str, Any] | None = None

    @property
    def weight_steps(self) -> Mapping[str, Any]:
        """The weight steps' reports (empty without a weight step)."""
        return self.weights.steps if self.weights is not None else {}

    def cost_metrics(self) -> dict[str, Any]:
        """The ``COST_METRICS`` this meta.json holds."""
        return {k: v for k in COST_METRICS if (v := getattr(self, k)) is not None}

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "details":
                d.update(value)
            elif f.name in ("inputs", "outputs"):
                d[f.name] = [t.to_dict() for t in value]
            elif f.name == "files":
                d[f.name] = list(value)
            elif f.name == "preservation":
                if value is not None:
                    d["preservation"], d["preservation_note"] = value.value, self.preservation_note
            elif f.name == "weights":
                if value is not None:
                    d["weights"] = value.to_dict()
            elif f.name != "preservation_note" and (value is not None or f.default is not None):
                d[f.name] = value
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ArtifactMeta":
        """A meta.json of any META_VERSION: before 4, ``preservation`` held the check's sentence."""
        known = {f.name for f in fields(cls)} - {"details"}
        given = {k: v for k, v in d.items() if k in known}
        status, note = _preservation(d.get("preservation"), d.get("preservation_note"))
        weights = d.get("weights")
        return cls(**{**given, "files": tuple(d["files"]), "inputs": tuple(map(TensorIO.from_dict, d["inputs"])),
                      "outputs": tuple(map(TensorIO.from_dict, d["outputs"])), "preservation": status,
                      "preservation_note": note,
                      "weights": ArtifactWeights.from_dict(weights) if weights is not None else None,
                      "details": {k: v for k, v in d.items() if k not in known}})


def _preservation(value: Any, note: Any) -> tuple[Preservation | None, str]:
    if not isinstance(value, str):
        return None, ""
    try:
        return Preservation(value), note if isinstance(note, str) else ""
    except ValueError:  # before META_VERSION 4: the sentence itself, which is also the note
        if value.startswith("nothing"):
            return Preservation.NOTHING, value
        return (Preservation.CHECKED if value.startswith("checked") else Preservation.NOT_CHECKED), value
