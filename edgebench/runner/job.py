"""The runner job: what the host asks of the on-device runner, defined once for both ends.

The host builds a ``RunnerJob`` and the transport writes ``to_dict()`` as ``job.json`` beside the files it
placed on the device; the runner reads it back with ``from_dict``, which refuses a job it cannot run with
one line (a usage error). Standard library only: this file runs on the device too.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Mapping, TypeVar

from .power import SOURCES
from .timing import TimingRules

# Both ends must agree on it: a job of another version is refused ("push the runner that matches").
SCHEMA_VERSION = 1
# Distinct input batches the runner prepares and feeds in turn. Enough that no iteration reuses the
# buffer the previous one just warmed in the caches; few enough that the prepared feeds stay a small part
# of the baseline memory however large the dataset (200 000 samples are 64 feeds, not 200 000).
INPUT_ROTATION = 64

PARTNER = "partner_"  # the prefix of a paired job's partner files among the transport's files

T = TypeVar("T")


class JobError(ValueError):
    """A job this runner cannot run: reported as a usage error, in one line."""


@dataclass(frozen=True)
class RunnerJob:
    backend: str  # the runner backend: backends/<backend>_backend.py
    artifact: str = ""  # the model on the device; placed by the transport
    inputs_npz: str = ""  # the sample-major inputs, in the artifact's names and layout; placed by the transport
    artifact_weights: str | None = None  # a second model file (OpenVINO's .bin), wherever the transport placed it
    outputs_npz: str | None = None  # where the captured outputs go (with capture_outputs)
    device: str = "CPU"  # the runtime's device: CPU, GPU, GPU:1, NPU, AUTO
    device_name: str = "this device"  # the profile's name, for messages
    threads: int = 0  # 0: the runtime's default
    backend_options: dict[str, Any] = field(default_factory=dict)
    timing: TimingRules = field(default_factory=TimingRules)
    batch: int = 1
    per_sample_inputs: tuple[str, ...] = ()  # inputs without a batch axis: one sample is the whole input
    rotation: int | None = None  # distinct feeds at most (INPUT_ROTATION from the host); None: one per batch
    capture_outputs: bool = False
    thermal: dict[str, Any] = field(default_factory=dict)  # thermal.cool_down's rules
    # A paired job (``edgebench ab``): a second model measured in the same process, in blocks alternating
    # with this one's (each block at least ``block_s``), so that what else runs on the device hits both alike.
    # Its own timing, capture and thermal fields are ignored: this job's apply to the pair.
    partner: "RunnerJob | None" = None
    block_s: float = 0.01
    # Throughput mode (runner/throughput.py): after the single-stream loop, ``requests`` in flight on ``streams``
    # instances (None: the runtime's choice). "latency" (the default) leaves them out of job.json.
    mode: str = "latency"
    streams: int | None = None
    requests: int | None = None
    cpus: tuple[int, ...] | None = None  # the CPUs the runner pins itself to first (None: as it is started)
    profile: bool = False  # a per-layer profiling pass after the timed loop (runner/profiling.py)
    power: dict[str, Any] | None = None  # the profile's power source (runner/power.py); None: no energy, as before
    schema_version: int = SCHEMA_VERSION

    def placed(self, files: Mapping[str, str], outputs_npz: str) -> "RunnerJob":
        """The job as its transport placed it: ``files`` the paths on the device by field (artifact,
        inputs_npz, artifact_weights), ``outputs_npz`` where the outputs go when it captures them."""
        partner = None
        if self.partner is not None:  # its files are keyed "partner_artifact" …
            partner = self.partner.placed({k.removeprefix(PARTNER): v for k, v in files.items()
                                           if k.startswith(PARTNER)}, outputs_npz)
        return replace(self, artifact=files["artifact"], inputs_npz=files["inputs_npz"],
                       artifact_weights=files.get("artifact_weights"),
                       outputs_npz=outputs_npz if self.capture_outputs else None, partner=partner)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of ``job.json``; fields left unset (None) are left out."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data.update(timing=asdict(self.timing), per_sample_inputs=list(self.per_sample_inputs),
                    partner=self.partner.to_dict() if self.partner is not None else None,
                    block_s=self.block_s if self.partner is not None else None,  # a single job: as before
                    mode=self.mode if self.mode != "latency" else None,
                    cpus=list(self.cpus) if self.cpus is not None else None,
                    profile=self.profile or None)  # unprofiled: as before
        return {key: value for key, value in data.items() if value is not None}

    @classmethod
    def from_dict(cls, data: Any) -> "RunnerJob":
        """A job read from ``job.json``; JobError, one line, for a job this runner cannot run."""
        if not isinstance(data, dict):
            raise JobError("the job is not a JSON object")
        if data.get("schema_version") != SCHEMA_VERSION:
            raise JobError(f"job schema_version {data.get('schema_version')!r} is not {SCHEMA_VERSION}: "
                           "push the runner that matches this edgebench")
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise JobError(f"unknown job field {', '.join(map(repr, unknown))} for this runner: "
                           "push the runner that matches this edgebench")
        rotation = _get(data, "rotation", int)
        if rotation is not None and rotation < 1:
            raise JobError(f"job field 'rotation' is {rotation}: at least 1 distinct feed")
        batch = _get(data, "batch", int)
        if batch is not None and batch < 1:
            raise JobError(f"job field 'batch' is {batch}: at least 1 sample per feed")
        if data.get("capture_outputs") and not data.get("outputs_npz"):
            raise JobError("the job captures outputs but names no outputs_npz")
        partner = _get(data, "partner", dict)
        block_s = data.get("block_s", 0.01)
        if not isinstance(block_s, (int, float)) or isinstance(block_s, bool) or not 0 < block_s <= 10:
            raise JobError(f"job field 'block_s' is {block_s!r}, not a number of seconds in (0, 10]")
        mode, streams, requests, cpus = _load(data)
        return cls(
            backend=_required(data, "backend"), artifact=_required(data, "artifact"),
            inputs_npz=_required(data, "inputs_npz"), artifact_weights=_get(data, "artifact_weights", str),
            outputs_npz=_get(data, "outputs_npz", str), device=_get(data, "device", str) or "CPU",
            device_name=_get(data, "device_name", str) or "this device", threads=_get(data, "threads", int) or 0,
            backend_options=_get(data, "backend_options", dict) or {},
            timing=TimingRules.from_dict(_get(data, "timing", dict) or {}),
            batch=batch or 1, per_sample_inputs=tuple(_get(data, "per_sample_inputs", list) or ()),
            rotation=rotation, capture_outputs=bool(_get(data, "capture_outputs", bool)),
            thermal=_get(data, "thermal", dict) or {},
            partner=cls.from_dict(partner) if partner is not None else None, block_s=float(block_s),
            mode=mode, streams=streams, requests=requests, cpus=cpus,
            profile=bool(_get(data, "profile", bool)),
            power=_power(data),
        )


def _power(data: dict[str, Any]) -> dict[str, Any] | None:
    """The job's power rules, their source one the runner knows."""
    power = _get(data, "power", dict)
    if power is not None and power.get("source") not in SOURCES:
        raise JobError(f"job field 'power' names source {power.get('source')!r}, not one of {', '.join(SOURCES)}")
    return power


def _load(data: dict[str, Any]) -> tuple[str, int | None, int | None, tuple[int, ...] | None]:
    """The job's mode, streams, requests and cpus, checked."""
    mode = _get(data, "mode", str) or "latency"
    if mode not in ("latency", "throughput"):
        raise JobError(f"job field 'mode' is {mode!r}, not 'latency' or 'throughput'")
    counts = {name: _get(data, name, int) for name in ("streams", "requests")}
    for name, value in counts.items():
        if value is not None and (value < 1 or mode != "throughput"):
            raise JobError(f"job field {name!r} is {value}: 1 or more, in throughput mode only")
    if mode == "throughput" and data.get("partner") is not None:
        raise JobError("a paired job has no throughput mode")
    cpus = _get(data, "cpus", list)
    if cpus is not None and (not cpus or len(set(cpus)) < len(cpus)
                             or not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in cpus)):
        raise JobError(f"job field 'cpus' is {cpus!r}, not a list of distinct CPU numbers (0 or more)")
    return mode, counts["streams"], counts["requests"], tuple(cpus) if cpus is not None else None


_KINDS = {str: "a string", int: "an integer", bool: "true or false", list: "a list", dict: "an object"}


def _get(data: dict[str, Any], name: str, kind: type[T]) -> T | None:
    """``data[name]`` when it is a ``kind`` (a bool is no integer here), None when absent or null."""
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise JobError(f"job field {name!r} is {value!r}, not {_KINDS[kind]}")
    return value


def _required(data: dict[str, Any], name: str) -> str:
    value = _get(data, name, str)
    if not value:
        raise JobError(f"the job names no {name}")
    return value
