"""The measured figures a result holds beside its identity: latency percentiles, and the optional parts of
``bench --profile`` (per-layer times), ``--mode throughput`` and energy per inference.

Each is plain data with ``to_dict``/``from_dict``, named as docs/design.md's contract; results without an
optional part have none in their JSON.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Mapping

from edgebench.records import RecordError, known


@dataclass(frozen=True)
class Latency:
    """Milliseconds, recomputed from ``samples_ns`` (pipeline.stats.summarize_ns). ``cv`` is the sample
    standard deviation over the mean; ``robust_cv`` is 1.4826·MAD over the median, which one stray 4 ms
    hiccup in 90 000 samples does not move."""

    p50: float
    p90: float
    p95: float
    p99: float
    mean: float
    std: float
    min: float
    max: float
    cv: float
    robust_cv: float

    def percentile(self, p: int) -> float | None:
        """``p50``, ``p90``, ``p95`` or ``p99`` by number; None for another."""
        value = getattr(self, f"p{p}", None)
        return float(value) if value is not None else None

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Latency":
        return cls(**known(cls, data, "latency_ms"))


@dataclass(frozen=True)
class Energy:
    """Energy per inference from the device's own sensor (runner/power.py, the profile's ``power``): the average
    power over the timed window, the idle baseline sampled right before it, and (avg − idle) × window /
    iterations in mJ (one iteration is one inference call, ``batch`` samples). ``samples``: sensor reads in the
    window. Results without it have no ``energy`` in their JSON."""

    source: str
    avg_power_w: float
    idle_power_w: float
    energy_mj_per_inference: float
    window_s: float
    samples: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Energy":
        return cls(**known(cls, data, "energy"))


@dataclass(frozen=True)
class OpTime:
    """One node of a per-layer profile: its op type, mean ms per inference over the profiling pass, its share of
    the profiled total and the precision (or kernel) it ran in, as the runtime's profiler names it."""

    node: str
    op: str
    ms: float
    share: float
    precision: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "OpTime":
        return cls(**known(cls, data, "profile op"))


@dataclass(frozen=True)
class LayerProfile:
    """Per-layer times from the runtime's own profiler (``bench --profile``; runner/profiling.py), taken in a pass
    of ``iterations`` inferences after the timed loop, longest op first. A runtime that cannot profile gives no
    ops, 0 iterations and a ``note`` saying why and what would provide them. Results without it have no
    ``profile`` in their JSON."""

    source: str
    iterations: int
    ops: tuple[OpTime, ...] = ()
    note: str | None = None

    _PARTS: ClassVar[dict[str, Any]] = {"ops": OpTime}  # checked by OpTime, not by _typed

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "iterations": self.iterations, "ops": [op.to_dict() for op in self.ops],
                "note": self.note}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "LayerProfile":
        given = known(cls, data, "profile")
        ops = given.pop("ops", [])
        if not isinstance(ops, list):
            raise RecordError(f"result profile: field 'ops' is {type(ops).__name__}, not a list")
        return cls(**given, ops=tuple(OpTime.from_dict(op) for op in ops))


@dataclass(frozen=True)
class Throughput:
    """Throughput mode (``bench --mode throughput``): ``requests`` in flight on ``streams`` instances of the model,
    timed together after the single-stream loop; inferences (samples) per second over the window and the
    latency of the requests completed in it, under that load; ``settings`` as the runtime ran them."""

    streams: int
    requests: int
    inferences_per_s: float
    latency_ms: Latency
    duration_s: float
    settings: dict[str, Any] = field(default_factory=dict)

    _PARTS: ClassVar[dict[str, Any]] = {"latency_ms": Latency}  # checks itself

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "settings": copy.deepcopy(self.settings)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Throughput":
        rest = known(cls, {k: v for k, v in data.items() if k != "latency_ms"}, "throughput")
        return cls(**rest, latency_ms=Latency.from_dict(data.get("latency_ms") or {}))
