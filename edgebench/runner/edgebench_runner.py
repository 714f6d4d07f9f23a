#!/usr/bin/env python3
"""edgebench's on-device runner: ``python3 edgebench_runner.py job.json`` prints one JSON object.

Runs on the device, so it needs only the standard library, numpy and the one runtime the job names;
it never imports edgebench. The host writes ``job.json`` (a ``job.RunnerJob``) and an inputs ``.npz``;
the runner loads the model, times it by the job's rules and reports raw per-iteration samples,
load and first-inference times, peak memory and the environment. Statistics and accuracy are the
host's job, so every runtime is judged by the same code.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import sys
import time
import traceback
import types
from pathlib import Path
from typing import Any, Callable, Iterator

if not __package__:  # run as a plain file (on a device, without edgebench): this folder is the package
    __package__ = "edgebench_runner_files"
    sys.modules[__package__] = types.ModuleType(__package__)
    sys.modules[__package__].__path__ = [str(Path(__file__).resolve().parent)]

from . import power, profiling, thermal  # noqa: E402
from .backends.base import BaseBackend, BadOption, RuntimeMissing  # noqa: E402
from .job import SCHEMA_VERSION, JobError, RunnerJob  # noqa: E402
from .lifeline import die_with_parent  # noqa: E402
from .runner_env import environment, peak_rss_mb, reset_peak_rss, thread_limit  # noqa: E402
from .throughput import AffinityError, pin  # noqa: E402
from .timing import measure, measure_pair  # noqa: E402


class RunnerError(Exception):
    """A failure with a kind the host maps to an exit status (runtime_missing, invalid_model, …)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def load_backend(name: str) -> type[BaseBackend]:
    try:
        module = importlib.import_module(f".backends.{name}_backend", __package__)
    except ModuleNotFoundError as exc:
        if exc.name == f"{__package__}.backends.{name}_backend":
            raise RunnerError("usage", f"unknown backend {name!r}") from exc
        raise
    try:
        backend: type[BaseBackend] = module.Backend
    except AttributeError as exc:  # pragma: no cover - a broken backend module
        raise RunnerError("runner_failed", f"backend module {name!r} has no Backend class") from exc
    return backend


def read_job(path: Path) -> RunnerJob:
    try:
        return RunnerJob.from_dict(json.loads(path.read_text()))
    except JobError as exc:
        raise RunnerError("usage", str(exc)) from exc


def load_inputs(path: str) -> dict[str, Any]:
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except (OSError, ValueError) as exc:
        raise RunnerError("data_mismatch", f"cannot read inputs {path}: {exc}") from exc


def make_batches(arrays: dict[str, Any], batch: int, limit: int | None,
                 per_sample: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Group sample-major arrays into feeds of ``batch`` samples, padding the last by wrapping around.

    Inputs in ``per_sample`` have no batch axis (a scalar rate, a state): one sample is one whole input.
    """
    import numpy as np

    n = sample_count(arrays)
    count = max(1, -(-n // batch))
    if limit is not None:
        count = min(count, limit)
    feeds = []
    for b in range(count):
        index = np.arange(b * batch, (b + 1) * batch) % n
        # .copy(), not ascontiguousarray: that makes a 0-d sample (a scalar rate) 1-d
        feeds.append({name: (a[b % len(a)] if name in per_sample else a[index]).copy(order="C")
                      for name, a in arrays.items()})
    return feeds


def sample_count(arrays: dict[str, Any]) -> int:
    n = min((len(a) for a in arrays.values()), default=0)
    if n == 0:
        raise RunnerError("data_mismatch", "the inputs hold no samples")
    return n


def capture_outputs(backend: BaseBackend, feeds: list[Any], n_samples: int, batch: int, path: str) -> dict[str, Any]:
    """Run every sample once and save the outputs, sample-major, trimmed of the padding."""
    import numpy as np

    collected: dict[str, list[Any]] = {}
    for prepared in feeds:
        for name, value in backend.outputs(prepared).items():
            collected.setdefault(name, []).append(np.asarray(value))
    saved: dict[str, Any] = {}
    layout: dict[str, str] = {}
    for name, parts in collected.items():
        if all(p.ndim > 0 and p.shape[0] == batch for p in parts):
            saved[name] = np.concatenate(parts, axis=0)[:n_samples]
            layout[name] = "sample-major"
        else:  # outputs without a batch axis (e.g. a recurrent state): one entry per batch
            saved[name] = np.stack(parts, axis=0)
            layout[name] = "per-batch"
    np.savez(path, **saved)
    return {"path": path, "layout": layout}


@contextlib.contextmanager
def stage(kind: str, prefix: str = "") -> Iterator[None]:
    """Report any failure inside as a RunnerError of ``kind`` (RuntimeMissing and BadOption keep their own)."""
    try:
        yield
    except RunnerError:
        raise
    except RuntimeMissing as exc:
        raise RunnerError("runtime_missing", str(exc)) from exc
    except BadOption as exc:
        raise RunnerError("usage", f"bad runtime option: {exc}") from exc
    except Exception as exc:
        raise RunnerError(kind, f"{prefix}{one_line(str(exc)) or type(exc).__name__}") from exc


def one_line(text: str, limit: int = 1500) -> str:
    """A runtime's whole message on one line (its cause is often on the last line): lines joined with "; ",
    blanks squeezed; past ``limit`` characters its start and its end."""
    flat = "; ".join(line for line in (" ".join(part.split()) for part in text.splitlines()) if line)
    return flat if len(flat) <= limit else f"{flat[:limit // 2]} … {flat[-limit // 2:]}"


def run_job(job: RunnerJob, clock: Callable[[], int] = time.perf_counter_ns) -> dict[str, Any]:
    try:  # first thing: the runtime's thread pools then start on these CPUs
        cpus = pin(job.cpus) if job.cpus is not None else None
    except AffinityError as exc:
        raise RunnerError("config", str(exc)) from exc
    try:
        import numpy as np  # noqa: F401  (part of the baseline, like the runtime)
    except ImportError as exc:
        raise RunnerError("runtime_missing", f"numpy is not installed on this device ({exc}): "
                                             "pip install numpy") from exc
    try:
        heat = thermal.cool_down(job.thermal)
    except thermal.SensorUnreadable as exc:
        raise RunnerError("config", str(exc)) from exc
    if not 0 <= job.threads <= thread_limit():
        raise RunnerError("usage", f"threads {job.threads} is outside 0 (the runtime's default) to {thread_limit()}, "
                                   f"4 per CPU of {job.device_name}: lower --threads (or the spec's threads)")
    env_before = environment()
    backend = load_backend(job.backend)(job)
    with stage("runtime_missing"):
        backend.open()  # imports the runtime: part of the baseline, not the model's footprint
    partner = load_backend(job.partner.backend)(job.partner) if job.partner is not None else None
    if partner is not None:
        with stage("runtime_missing"):
            partner.open()
    arrays = load_inputs(job.inputs_npz)
    partner_arrays = load_inputs(job.partner.inputs_npz) if job.partner is not None else {}
    # The baseline holds the interpreter, numpy, the runtime AND the inputs: peak − baseline is then the
    # model's own footprint (load, arena, run), the same with 450 samples as with 200 000.
    peak_reset = reset_peak_rss()
    memory = {"baseline": peak_rss_mb()}

    load_ms, feeds, first_ms = _load(backend, job, arrays, clock)
    memory["after_load"] = peak_rss_mb()
    energy: dict[str, Any] = {}
    if partner is None or job.partner is None:
        meter, energy_note = power.open_meter(job.power)
        if meter is not None:  # the idle baseline: loaded, warm, at rest
            meter.baseline(float((job.power or {}).get("idle_s") or 0.5))
        timing = measure(backend.infer, feeds, job.timing, clock, window=meter, feed=backend.feed)
        energy = meter.report(timing["iterations"]) if meter is not None else \
            {"energy_note": energy_note} if energy_note else {}
        partner_part = None
    else:  # a paired job: both loaded, then timed in alternating blocks; memory is the pair's
        p_load_ms, p_feeds, p_first_ms = _load(partner, job.partner, partner_arrays, clock)
        timing, p_timing = measure_pair((backend.infer, partner.infer), (feeds, p_feeds), job.timing, job.block_s,
                                        clock, (backend.feed, partner.feed))
        if job.power:
            energy = {"energy_note": "not measured in a paired job (ab): it alternates two models in one window"}
        partner_part = {"runtime": _runtime(partner), "load_ms": p_load_ms, "first_inference_ms": p_first_ms,
                        **p_timing, "batch": job.partner.batch, "distinct_inputs": len(p_feeds), "io": partner.io(),
                        "extra": {**partner.extra_timings(), "threads_used": partner.threads_used()}}
    memory["peak"] = peak_rss_mb()
    load = None
    if job.mode == "throughput":  # after the single-stream figures, which it leaves as they were
        with stage("runner_failed", "throughput mode: "):
            load = backend.throughput(feeds, job.streams, job.requests, job.timing, clock)

    result: dict[str, Any] = {
        "status": "ok",
        "runtime": _runtime(backend),
        "load_ms": load_ms,
        "first_inference_ms": first_ms,
        **timing,
        "batch": job.batch,
        "distinct_inputs": len(feeds),
        "memory_mb": memory,
        "io": backend.io(),
        "extra": {**backend.extra_timings(), "peak_rss_reset": peak_reset, "threads_used": backend.threads_used()},
    }
    result.update(energy)
    if load is not None:
        result["throughput"] = load
    if cpus is not None:
        result["cpus"] = cpus
    if job.capture_outputs and job.outputs_npz:  # from_dict refuses a capture without outputs_npz
        all_feeds = [backend.prepare(f) for f in make_batches(arrays, job.batch, None, job.per_sample_inputs)]
        result["outputs"] = capture_outputs(backend, all_feeds, sample_count(arrays), job.batch, job.outputs_npz)
    env_after = environment()
    result["thermal"] = thermal.finish(heat)
    result["environment"] = {**env_before, "temperatures_c_after": env_after.get("temperatures_c"),
                             "frequency_mhz_after": env_after.get("frequency_mhz")}
    if job.profile and partner_part is None:  # last, on a second instance: every figure above stays unprofiled
        result["profile"] = _profile(backend, feeds, timing["samples_ns"])
    if partner_part is not None:
        result["partner"] = {"status": "ok", **partner_part, "memory_mb": memory, "thermal": result["thermal"],
                             "environment": result["environment"]}
    return result


def _profile(backend: BaseBackend, feeds: list[Any], samples_ns: list[int]) -> dict[str, Any]:
    """The per-layer profiling pass (runner/profiling.py); a runtime failing at it costs the result its profile
    (the note says why), not its measurement."""
    try:
        return backend.profile(feeds, profiling.iterations_for(samples_ns))
    except Exception as exc:
        return profiling.unsupported(backend.runtime_name, "profiling failed: "
                                     f"{one_line(f'{type(exc).__name__}: {exc}', 300)}")


def _runtime(backend: BaseBackend) -> dict[str, Any]:
    return {"name": backend.runtime_name, "version": backend.runtime_version(), "options": backend.options()}


def _load(backend: BaseBackend, job: RunnerJob, arrays: dict[str, Any], clock: Callable[[], int]
          ) -> tuple[float, list[Any], float]:
    """Load the model, prepare its feeds and run it once: (load ms, feeds, first inference ms)."""
    t0 = clock()
    with stage("invalid_model", f"cannot load {job.artifact}: "):
        backend.load(job.artifact)
    load_ms = (clock() - t0) / 1e6
    with stage("data_mismatch", "the inputs do not fit the model: "):
        feeds = [backend.prepare(f) for f in make_batches(arrays, job.batch, job.rotation, job.per_sample_inputs)]
        t0 = clock()
        backend.infer(feeds[0])
    return load_ms, feeds, (clock() - t0) / 1e6


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def main(argv: list[str]) -> int:
    die_with_parent()
    # Runtimes print to stdout; keep fd 1 for our one JSON object and send everything else to stderr.
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    if len(argv) != 1:
        payload: dict[str, Any] = {"status": "error", "error": {"kind": "usage",
                                   "message": "usage: edgebench_runner.py job.json"}}
    else:
        try:
            payload = run_job(read_job(Path(argv[0])))
        except RunnerError as exc:
            payload = {"status": "error", "error": {"kind": exc.kind, "message": str(exc)}}
        except Exception as exc:  # reported to the host, which decides what the user sees
            payload = {"status": "error", "error": {"kind": "runner_failed",
                       "message": one_line(f"{type(exc).__name__}: {exc}"),
                       "traceback": traceback.format_exc()}}
    payload["schema_version"] = SCHEMA_VERSION
    out.write(json.dumps(_jsonable(payload)) + "\n")
    out.flush()
    return 0 if payload["status"] == "ok" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
