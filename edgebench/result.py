"""The result record: plain data with ``to_dict``/``from_dict``, named as docs/design.md's contract.

Reports, gates and users' scripts read these names, so they change only with ``SCHEMA_VERSION``.
Raw samples travel with every result: aggregates are recomputed from samples, never averaged.
"""

from __future__ import annotations

import copy
import datetime as _dt
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, Mapping

from edgebench import __version__
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.files import atomic_write_text
from edgebench.records import RecordError, known as _known, typed as _typed
from edgebench.result_parts import Energy, LayerProfile, Latency, OpTime, Throughput

# The parts' names, where users' scripts and edgebench's own modules have always imported them from.
__all__ = ["CellKey", "DeviceInfo", "Energy", "LayerProfile", "Latency", "ModelInfo", "OpTime", "RecordError",
           "Result", "Throughput", "read_results", "write_results"]

SCHEMA_VERSION = 1


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def canonical_options(options: Mapping[str, Any]) -> str:
    """Options as a cell key holds them: JSON with sorted keys, so the same options always compare equal."""
    return json.dumps(dict(options), sort_keys=True)


@dataclass(frozen=True, order=True)
class CellKey:
    """What identifies a cell across runs: model, recipe, format, device (the profile's name) and options
    (``canonical_options``: threads, batch and, under ``backend``, the runtime options the user set, such as an
    execution provider; a result without them keeps the key it always had). The sweep plan, the results store
    and the gate all match cells by it."""

    model: str
    recipe: str
    format: str
    device: str
    options: str  # canonical JSON (canonical_options)

    @classmethod
    def of(cls, model: object, recipe: object, fmt: object, device: object, options: Mapping[str, Any]) -> "CellKey":
        return cls(str(model), str(recipe), str(fmt), str(device), canonical_options(options))

    def astuple(self) -> tuple[str, str, str, str, str]:
        return (self.model, self.recipe, self.format, self.device, self.options)


@dataclass(frozen=True)
class ModelInfo:
    """What was measured: the model's name, recipe and format and, for a cell that got as far as an
    artifact, that artifact (file, sizes, tensors, whether the cache had it).

    ``costs`` is open-ended by design: the cost metrics read from the artifact (``COST_METRICS`` of
    artifacts.meta: params, sparsity, ratios …) and what the recipe asked for (``sparsity_requested``,
    ``clusters_requested``), plus any key this edgebench does not know, kept in order. ``inputs`` and
    ``outputs`` are the artifact's tensors as ``formats.tensors.TensorIO.to_dict`` writes them. ``source``: the
    Keras, SavedModel or PyTorch model it was exported from (docs/sources.md), written only where there is one.

    JSON: a measured cell (one with ``source_sha256``) writes every field, null where unknown (``cache_hit``
    is null when the cache was not used); an error cell leaves out what is None, naming only its model,
    recipe, format and path.
    """

    name: str
    recipe: str | None = None
    format: str | None = None
    path: str | None = None
    source_sha256: str | None = None
    precision: str | None = None
    size_bytes: int | None = None
    gzip_bytes: int | None = None
    files: list[str] | None = None
    cache_hit: bool | None = None
    costs: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    inputs: list[dict[str, Any]] | None = None
    outputs: list[dict[str, Any]] | None = None
    # the framework model the hub ONNX was exported from (sources.hub.HubModel.record: kind, path, sha256,
    # exporter, route, versions); None, and absent from the JSON, for a model given as ONNX or as an artifact
    source: dict[str, Any] | None = None

    _ORDER: ClassVar[tuple[str, ...]] = ("name", "source_sha256", "recipe", "format", "precision", "path", "size_bytes", "gzip_bytes",
              "files", "cache_hit")

    def cost(self, key: str) -> Any:
        return self.costs.get(key)

    def to_dict(self) -> dict[str, Any]:
        measured = self.source_sha256 is not None
        out: dict[str, Any] = {}
        for key in self._ORDER:
            value = getattr(self, key)
            if value is not None or measured:
                out[key] = copy.deepcopy(value)
        out.update(copy.deepcopy(self.costs))
        if self.warnings:
            out["warnings"] = list(self.warnings)
        for key in ("inputs", "outputs"):
            if getattr(self, key) is not None or measured:
                out[key] = copy.deepcopy(getattr(self, key))
        if self.source is not None:
            out["source"] = copy.deepcopy(self.source)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ModelInfo":
        if not isinstance(data, Mapping) or "name" not in data:
            raise RecordError("result model: expected an object with a name")
        typed = {*cls._ORDER, "warnings", "inputs", "outputs", "source"}
        rest = {k: copy.deepcopy(v) for k, v in data.items() if k not in typed}
        given = _typed(cls, {k: copy.deepcopy(v) for k, v in data.items() if k in typed}, "model")
        return cls(**given, costs=rest)


@dataclass(frozen=True)
class DeviceInfo:
    """Where it ran: the device profile's name, the host the runner reported and the profile's accelerator."""

    profile: str
    host: str | None = None
    accelerator: str | None = None
    cpus: tuple[int, ...] | None = None  # the CPUs the runner pinned itself to (cpus:, --cpus); None: not pinned

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        return {**out, "cpus": list(self.cpus)} if self.cpus is not None else {k: out[k] for k in out if k != "cpus"}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "DeviceInfo":
        cpus = data.get("cpus") if isinstance(data, Mapping) else None
        return cls(**_known(cls, {**data, "cpus": tuple(cpus)} if isinstance(cpus, list) else data, "device"))


@dataclass(frozen=True)
class ResultError:
    """Why a cell failed: ``kind`` is an ExitStatus name in lower case (or ``internal``), ``message`` says what
    to do about it."""

    kind: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ResultError":
        return cls(**_known(cls, data, "error"))


@dataclass(frozen=True)
class Memory:
    """Megabytes of the runner's peak resident set: at start, after loading the model, at the end.
    JSON: ``{}`` for a cell that never ran (every field None), else all three."""

    baseline: float | None = None
    after_load: float | None = None
    peak: float | None = None

    def __bool__(self) -> bool:
        return any(v is not None for v in (self.baseline, self.after_load, self.peak))

    def to_dict(self) -> dict[str, float | None]:
        return asdict(self) if self else {}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Memory":
        return cls(**_known(cls, data, "memory_mb"))


@dataclass(frozen=True)
class Validity:
    """Whether the measurement can be trusted. JSON: ``{}`` for a cell that never ran, else all five."""

    min_iterations_met: bool | None = None
    min_duration_met: bool | None = None
    stopped_by_max_duration: bool | None = None
    cv_ok: bool | None = None
    throttled: bool | None = None

    def __bool__(self) -> bool:
        return any(getattr(self, f.name) is not None for f in fields(self))

    def flag(self, name: str) -> bool | None:
        """A flag by name (reports list them), None when unknown or not recorded."""
        return getattr(self, name, None) if name in {f.name for f in fields(self)} else None

    def to_dict(self) -> dict[str, bool | None]:
        return asdict(self) if self else {}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Validity":
        return cls(**_known(cls, data, "validity"))


@dataclass(frozen=True)
class Accuracy:
    """How the outputs scored (pipeline.bench.score): the scored ``output`` and the number of ``samples``,
    then that output's metrics, open-ended by design (``top1`` against labels; with a reference
    ``agreement_top1``, ``snr_db``, ``rel_l2`` … depending on the output's kind), kept in ``metrics`` in
    the order they were measured, and with a reference every output's metrics in ``outputs``.
    JSON: ``{}`` when nothing was scored."""

    output: str | None = None
    samples: int | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] | None = None

    def __bool__(self) -> bool:
        return self.output is not None or bool(self.metrics) or self.outputs is not None

    def metric(self, name: str) -> Any:
        """The scored output's metric ``name`` (``top1``, ``agreement_top1`` …), None when not measured."""
        return self.metrics.get(name)

    @property
    def top1(self) -> float | None:
        return self.metrics.get("top1")

    @property
    def agreement_top1(self) -> float | None:
        return self.metrics.get("agreement_top1")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.output is not None:
            out["output"] = self.output
        if self.samples is not None:
            out["samples"] = self.samples
        out.update(copy.deepcopy(self.metrics))
        if self.outputs is not None:
            out["outputs"] = copy.deepcopy(self.outputs)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Accuracy":
        if not isinstance(data, Mapping):
            raise RecordError(f"result accuracy: expected an object, got {type(data).__name__}")
        metrics = {k: copy.deepcopy(v) for k, v in data.items() if k not in ("output", "samples", "outputs")}
        _typed(cls, {k: v for k, v in data.items() if k in ("output", "samples", "outputs")}, "accuracy")
        _typed(_Figures, {k: v for k, v in metrics.items() if k in _FIGURES}, "accuracy")
        return cls(data.get("output"), data.get("samples"), metrics, copy.deepcopy(data.get("outputs")))


@dataclass(frozen=True)
class _Figures:
    """The scored output's figures that gates and reports compute with (data.accuracy.score_outputs): numbers
    where present; any other metric is open-ended."""

    top1: float | None = None
    agreement_top1: float | None = None
    cosine: float | None = None
    cosine_mean: float | None = None
    cosine_min: float | None = None
    snr_db: float | None = None
    rel_l2: float | None = None
    max_abs_err: float | None = None
    mean_abs_err: float | None = None
    max_rel_err: float | None = None
    nonfinite: int | None = None


_FIGURES = frozenset(f.name for f in fields(_Figures))


@dataclass(frozen=True)
class Provenance:
    """What made the result, for a history that outlives the machine: the user's ``commit`` (where it was read:
    ``commit_source`` ``GITHUB_SHA`` or ``git``, see ``user_commit``), the ``converter`` versions that made the
    artifact (its meta.json's ``tool_versions``; empty for a model measured as it was given) and the ``runtime``
    that ran it (its name and version, as the runner reported them). JSON: only the fields that are known;
    results written before it have no ``provenance`` at all."""

    commit: str | None = None
    commit_source: str | None = None
    converter: dict[str, str] = field(default_factory=dict)
    runtime: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {k: copy.deepcopy(v) for k, v in asdict(self).items() if v not in (None, {})}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Provenance":
        return cls(**_known(cls, data, "provenance"))


@dataclass
class Result:
    """One cell's measurement (or failure). The parts named in docs/design.md's contract are typed; ``runtime``,
    ``options``, ``environment``, ``timing`` and ``extra`` stay mappings: they are open-ended by design
    (what a runtime or a device reports, what later versions add)."""

    model: ModelInfo
    device: DeviceInfo
    status: str = "ok"
    error: ResultError | None = None
    runtime: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    latency_ms: Latency | None = None
    samples_ns: list[int] = field(default_factory=list)
    iterations: int = 0
    duration_s: float = 0.0
    batch: int = 1
    load_ms: float | None = None
    first_inference_ms: float | None = None
    throughput_per_s: float | None = None
    memory_mb: Memory = field(default_factory=Memory)
    accuracy: Accuracy = field(default_factory=Accuracy)
    validity: Validity = field(default_factory=Validity)
    environment: dict[str, Any] = field(default_factory=dict)
    timing: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION
    edgebench_version: str = __version__
    created_utc: str = field(default_factory=utc_now)
    commit: dict[str, Any] | None = None  # edgebench's own checkout (git_commit), None when installed
    provenance: Provenance | None = None  # None: a result written before it; left out of the JSON then
    energy: Energy | None = None  # None: no power source declared, or none readable (energy_note says why)
    energy_note: str | None = None  # why energy is absent (or 0); both left out of the JSON when None
    profile: LayerProfile | None = None  # bench --profile's per-layer times; left out of the JSON when None
    throughput: Throughput | None = None  # throughput mode's figures; left out of the JSON when None

    _PARTS: ClassVar[dict[str, Any]] = {}  # field → its part's class (filled below)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def p50(self) -> float | None:
        """The median latency (ms), None when nothing was measured."""
        return self.latency_ms.p50 if self.latency_ms is not None else None

    @property
    def cell_key(self) -> CellKey:
        """What identifies a cell across runs: model, recipe, format, device and options."""
        m = self.model
        return CellKey.of(m.name, m.recipe, m.format, self.device.profile, self.options)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("provenance", "energy", "energy_note", "profile", "throughput") and value is None:
                continue
            if f.name in self._PARTS:
                out[f.name] = value.to_dict() if value is not None else None
            else:
                out[f.name] = copy.deepcopy(value)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "result") -> "Result":
        if not isinstance(data, dict):
            raise EdgebenchError(f"{source}: expected a result object, got {type(data).__name__}",
                                 ExitStatus.INVALID_MODEL)
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise EdgebenchError(f"{source}: result schema_version {version!r}, this edgebench reads "
                                 f"{SCHEMA_VERSION}: re-run the benchmark with this version",
                                 ExitStatus.USAGE)
        missing = [k for k in ("model", "device", "status") if data.get(k) is None]
        if missing:
            raise EdgebenchError(f"{source}: not an edgebench result (missing {', '.join(missing)})",
                                 ExitStatus.USAGE)
        names = {f.name for f in fields(cls)}
        values: dict[str, Any] = {}
        for k, v in data.items():
            if k not in names:
                continue
            part = cls._PARTS.get(k)
            try:
                values[k] = part.from_dict(v) if part is not None and v is not None else copy.deepcopy(v)
            except (RecordError, TypeError) as exc:
                raise EdgebenchError(f"{source}: {exc}", ExitStatus.USAGE) from None
        try:
            _typed(cls, {k: v for k, v in data.items() if k in names and k not in cls._PARTS}, "")
            _typed(_PooledRounds, {k: v for k, v in (data.get("extra") or {}).items() if k == "round_sizes"}, "extra")
        except RecordError as exc:
            raise EdgebenchError(f"{source}: {exc}", ExitStatus.USAGE) from None
        if data["status"] not in ("ok", "error") or any(s <= 0 for s in data.get("samples_ns") or ()):
            what = "a latency of 0 ns or less in 'samples_ns'" if data["status"] in ("ok", "error") \
                else f"status {data['status']!r} (not 'ok' or 'error')"
            raise EdgebenchError(f"{source}: the result holds {what}: pass a result as edgebench writes it",
                                 ExitStatus.USAGE)
        for k in ("memory_mb", "accuracy", "validity"):  # null where {} was meant: an empty part
            if values.get(k, ...) is None:
                values[k] = cls._PARTS[k]()
        return cls(**values)


@dataclass(frozen=True)
class _PooledRounds:
    """What the gate reads of a pooled A/B result's ``extra`` (pipeline.gate.pool)."""

    round_sizes: list[int] | None = None


Result._PARTS.update(energy=Energy)
Result._PARTS.update(profile=LayerProfile)
Result._PARTS.update(throughput=Throughput)
Result._PARTS.update(model=ModelInfo, device=DeviceInfo, error=ResultError, latency_ms=Latency, memory_mb=Memory,
                     accuracy=Accuracy, validity=Validity, provenance=Provenance)


def write_results(results: list[Result], path: Path, always_list: bool = False) -> None:
    """One result as an object (``bench --json``), several — or any number with ``always_list``, as
    sweeps and exports write them — as a list; ``read_results`` and ``gate`` take both."""
    single = len(results) == 1 and not always_list
    payload: Any = results[0].to_dict() if single else [r.to_dict() for r in results]
    atomic_write_text(path, json.dumps(payload, indent=1) + "\n")


def read_results(path: Path) -> list[Result]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        items = data if isinstance(data, list) else [data]
        return [Result.from_dict(item, f"{path}[{i}]") for i, item in enumerate(items)]
    except FileNotFoundError:
        raise EdgebenchError(f"result file not found: {path}", ExitStatus.NOT_FOUND) from None
    except RecursionError:
        raise EdgebenchError(f"{path} is not a result file (its JSON is nested too deeply): pass a file written by "
                             "'edgebench bench --json' or 'edgebench sweep --json'", ExitStatus.USAGE) from None
    except (OSError, ValueError) as exc:
        raise EdgebenchError(f"{path} is not a JSON result file ({exc}): pass a file written by "
                             "'edgebench bench --json' or 'edgebench sweep --json'", ExitStatus.USAGE) from None
