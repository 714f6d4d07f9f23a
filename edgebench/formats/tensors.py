"""What the host knows about an artifact's tensors, and how its data maps to the source model's.

Converters may rename tensors or change their layout (onnx2tf makes NCHW inputs NHWC). Each tensor
records the source name and shape the user's data follows and the ``permutation`` that turns source
data into artifact data (``artifact = source.transpose(permutation)``). The host plans and scores in
the source layout, transposes inputs on the way to the device and outputs on the way back, so every
format is fed the same samples and judged in the same layout.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.data.source import Dim, TensorSpec, as_dim


@dataclass(frozen=True)
class TensorIO:
    name: str  # the artifact's own tensor name
    dtype: str
    shape: tuple[Dim, ...]  # in the artifact's layout
    source_name: str = ""
    source_shape: tuple[Dim, ...] | None = None
    layout: str | None = None  # e.g. NCHW, NHWC; None when unknown or not an image tensor
    permutation: tuple[int, ...] | None = None  # source → artifact; None: identical

    def source_spec(self) -> TensorSpec:
        shape = self.source_shape if self.source_shape is not None else self.shape
        return TensorSpec(self.source_name or self.name, self.dtype, tuple(shape))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["shape"] = list(self.shape)
        d["source_shape"] = list(self.source_shape) if self.source_shape is not None else None
        d["permutation"] = list(self.permutation) if self.permutation is not None else None
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TensorIO":
        perm = d.get("permutation")
        src = d.get("source_shape")
        # dims as edgebench holds them: a meta.json written before -1 counted as dynamic may still hold it
        return cls(d["name"], d["dtype"], tuple(map(as_dim, d["shape"])), d.get("source_name") or d["name"],
                   tuple(map(as_dim, src)) if src is not None else None, d.get("layout"),
                   tuple(perm) if perm else None)

    @classmethod
    def same_as(cls, spec: TensorSpec, layout: str | None = None) -> "TensorIO":
        return cls(spec.name, spec.dtype, spec.shape, spec.name, spec.shape, layout, None)


@dataclass
class Artifact:
    """What a converter returns: its files and tensors, and in ``meta`` what it records about how it made them
    (the artifact cache adds the rest of meta.json and reads it back as ``artifacts.meta.ArtifactMeta``)."""

    format: str
    precision: str
    files: list[Path]
    main: Path  # the file a runtime opens (.onnx, .xml, .tflite, .engine)
    inputs: list[TensorIO] = field(default_factory=list)
    outputs: list[TensorIO] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)


def to_artifact_inputs(arrays: dict[str, np.ndarray], inputs: list[TensorIO]) -> dict[str, np.ndarray]:
    """Source-keyed, source-layout sample arrays → what the artifact takes (sample axis 0 kept)."""
    fed = {}
    for t in inputs:
        arr = arrays[t.source_name or t.name]
        fed[t.name] = np.ascontiguousarray(np.transpose(arr, t.permutation)) if t.permutation else arr
    return fed


def from_artifact_outputs(outputs: dict[str, np.ndarray], specs: list[TensorIO]) -> dict[str, np.ndarray]:
    """Artifact outputs → source names and layout, so they compare with the ONNX reference."""
    back = {}
    for t in specs:
        if t.name not in outputs:
            raise EdgebenchError(f"the runner returned no output {t.name!r} (it returned {', '.join(outputs)}): "
                                 "the artifact's meta.json does not match it; convert again", ExitStatus.RUNNER_FAILED)
        arr = outputs[t.name]
        back[t.source_name or t.name] = np.transpose(arr, np.argsort(t.permutation)) if t.permutation else arr
    return back


def channel_last(rank: int) -> tuple[int, ...]:
    """NC… → N…C, the permutation TensorFlow-family converters apply to image-like tensors."""
    return (0, *range(2, rank), 1)


def source_tensor_specs(tensors: list[TensorIO]) -> tuple[TensorSpec, ...]:
    return tuple(t.source_spec() for t in tensors)


def matched(names: Sequence[str], specs: Sequence[TensorSpec], what: str,
            aliases: Mapping[str, str] | None = None) -> list[TensorSpec]:
    """The source tensor each of a converter's tensors ``names`` stands for, when the converter read the framework's
    model rather than its ONNX (``artifacts.routes``): the one of the same name, else the one ``aliases`` names
    (Keras 3's TFLite signature calls outputs ``output_0`` …), else the next one left, in order (the framework's
    order is the ONNX's). Counts that differ are refused: the artifact would not fit the source's data."""
    by_name = {s.name: s for s in specs}
    chosen = [by_name.get(n) or by_name.get((aliases or {}).get(n, "")) for n in names]
    left = [s for s in specs if s not in chosen]
    found = [spec if spec is not None else left.pop(0) for spec in chosen] if len(names) == len(specs) else []
    if len({s.name for s in found}) != len(specs):
        raise EdgebenchError(f"{what}'s tensors ({', '.join(names)}) do not pair with its ONNX's "
                             f"({', '.join(s.name for s in specs)}): convert it through its ONNX (--route hub)",
                             ExitStatus.CONVERSION_FAILED)
    return found
