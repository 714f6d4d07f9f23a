"""One benchmark job: resolve the artifact, prepare inputs, run the runner on the device, make a Result.

Inputs are planned and outputs scored in the source model's names and layout; the artifact's tensor
mapping (targets.Target) transposes and renames on the way to and from the device, so every format
sees the same samples and is judged by the same code.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgebench import accuracy
from edgebench.config import DeviceProfile, TimingSpec, load_profile
from edgebench.data import InputPlan, load_dataset, load_npz, plan_inputs, random_inputs
from edgebench.devices import make_transport
from edgebench.devices.thermal import throttle_reasons
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.result import Result, git_commit
from edgebench.runner_job import RUNNER_SCHEMA_VERSION
from edgebench.convert.tensors import from_artifact_outputs, source_tensor_specs, to_artifact_inputs
from edgebench.stats import summarize_ns, throughput_per_s
from edgebench.targets import Target, resolve


@dataclass
class BenchRequest:
    model: Path
    device: str = "local-cpu"
    dataset: Path | None = None
    batch: int | None = None
    threads: int | None = None
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    values: dict[str, float] = field(default_factory=dict)
    timing: TimingSpec = field(default_factory=TimingSpec)
    backend_options: dict[str, Any] = field(default_factory=dict)
    reference: Path | None = None  # outputs .npz of the fp32 reference on the same dataset
    output: str | None = None  # the output scored for top-1; default: the first
    seed: int = 0
    name: str | None = None
    recipe: str | None = None
    timeout_s: float | None = None
    format: str | None = None  # None: the artifact's own format (.onnx, .xml, .tflite, .engine)
    precision: str | None = None  # with format: what to convert to; default fp32
    calibration: Path | None = None
    cache_dir: Path | None = None


@dataclass
class Outcome:
    """A finished job: the Result plus the outputs (source names and layout), for comparisons."""
    result: Result
    outputs: dict[str, np.ndarray] | None
    target: Target


def run_bench(req: BenchRequest, profile: DeviceProfile | None = None) -> Result:
    return execute(req, profile).result


def execute(req: BenchRequest, profile: DeviceProfile | None = None) -> Outcome:
    profile = profile or load_profile(req.device)
    target = resolve(req.model, req.format, req.precision, req.recipe, req.calibration, req.cache_dir)
    specs = source_tensor_specs(target.inputs)
    plan = plan_inputs(specs, req.batch, req.shapes, req.ranges, req.values)
    labels = None
    if req.dataset is not None:
        data = load_dataset(req.dataset, plan)
        arrays, labels = data.arrays, data.labels
    else:
        arrays = random_inputs(plan, seed=req.seed)
    threads = req.threads if req.threads is not None else profile.threads
    names = {t.source_name: t.name for t in target.inputs}
    job = {
        "schema_version": RUNNER_SCHEMA_VERSION,
        "backend": target.backend,
        "device": profile.accelerator.upper(),
        "device_name": profile.name,
        "threads": threads,
        "backend_options": {**target.backend_options(), **req.backend_options},
        "timing": req.timing.model_dump(exclude={"cv_threshold"}),
        "batch": plan.batch,
        "per_sample_inputs": [names.get(n, n) for n in plan.per_sample],
        "rotation": 64,
        "capture_outputs": req.dataset is not None,
        "thermal": profile.thermal.model_dump(),
    }
    work = Path(tempfile.mkdtemp(prefix="edgebench-job-"))
    try:
        inputs_path = work / "inputs.npz"
        np.savez(inputs_path, **to_artifact_inputs(arrays, target.inputs))
        timeout = req.timeout_s or (req.timing.max_duration_s * 2 + 300)
        with make_transport(profile) as transport:
            reply = transport.run_job(job, {**target.job_files(), "inputs_npz": inputs_path}, work / "out", timeout)
        outputs = _read_outputs(reply, work / "out")
        if outputs is not None:
            outputs = from_artifact_outputs(outputs, target.outputs)
        result = build_result(req, profile, target, plan, reply, threads, outputs, labels)
        return Outcome(result, outputs, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _read_outputs(reply: dict[str, Any], out_dir: Path) -> dict[str, np.ndarray] | None:
    if "outputs" not in reply:
        return None
    return load_npz(out_dir / "outputs.npz", "runner outputs")


def score(outputs: dict[str, np.ndarray] | None, output_names: list[str], labels: np.ndarray | None,
          reference: dict[str, np.ndarray] | None, output: str | None) -> dict[str, Any]:
    """Top-1 against labels and agreement with the reference, on the scored output."""
    if outputs is None:
        return {}
    name = output or output_names[0]
    if name not in outputs:
        raise EdgebenchError(f"the model has no output {name!r} (outputs: {', '.join(outputs)}): fix --output",
                             ExitStatus.USAGE)
    scores: dict[str, Any] = {"output": name, "samples": int(len(outputs[name]))}
    if labels is not None:
        scores["top1"] = accuracy.top1(outputs[name], labels)
    if reference is not None and name in reference:
        scores.update(accuracy.agreement(outputs[name], reference[name]))
    return scores


COST_KEYS = ("params", "nonzero_params", "sparsity", "max_unique_values", "size_ratio", "gzip_ratio")


def cost_metrics(target: Target) -> dict[str, Any]:
    """What compression bought: parameter counts, sparsity, shared values, ratios against fp32 of the
    same format — from the artifact's meta.json, or read from an ONNX given as it is."""
    costs = {k: target.meta[k] for k in COST_KEYS if k in target.meta}
    if not costs and target.format == "onnx":
        from edgebench.compress.metrics import onnx_metrics

        costs = {k: v for k, v in onnx_metrics(target.main).items() if k in COST_KEYS}
    return costs


def build_result(req: BenchRequest, profile: DeviceProfile, target: Target, plan: InputPlan,
                 reply: dict[str, Any], threads: int, outputs: dict[str, np.ndarray] | None,
                 labels: np.ndarray | None) -> Result:
    samples = [int(s) for s in reply["samples_ns"]]
    summary = summarize_ns(samples)
    reference = load_npz(req.reference, "reference outputs") if req.reference else None
    env = reply.get("environment", {})
    temps_before = env.get("temperatures_c") or {}
    temps_after = env.get("temperatures_c_after") or {}
    throttled = throttle_reasons(reply, profile.thermal)
    validity = {
        **{k: v for k, v in reply["validity"].items()},
        "cv_ok": summary.robust_cv <= req.timing.cv_threshold,
        "throttled": bool(throttled),
    }
    return Result(
        model={"name": req.name or Path(req.model).stem, "source_sha256": target.source_sha256,
               "recipe": target.meta.get("recipe") or req.recipe or target.precision,
               "format": target.format, "precision": target.precision, "path": str(target.main),
               "size_bytes": target.size_bytes, "gzip_bytes": target.gzip_bytes,
               "files": [str(f) for f in target.files], "cache_hit": target.cache_hit,
               **cost_metrics(target),
               "inputs": [t.to_dict() for t in target.inputs], "outputs": [t.to_dict() for t in target.outputs]},
        device={"profile": profile.name, "host": reply.get("environment", {}).get("hostname"),
                "accelerator": profile.accelerator},
        runtime=reply["runtime"],
        options={"threads": threads, "batch": plan.batch},
        latency_ms=summary.to_dict(),
        samples_ns=samples,
        iterations=len(samples),
        duration_s=float(reply["duration_s"]),
        batch=plan.batch,
        load_ms=reply["load_ms"],
        first_inference_ms=reply["first_inference_ms"],
        throughput_per_s=throughput_per_s(samples, plan.batch),
        memory_mb=reply["memory_mb"],
        accuracy=score(outputs, [t.source_name or t.name for t in target.outputs], labels, reference, req.output),
        validity=validity,
        environment={
            "cpu": env.get("cpu"), "cores": env.get("cores"), "machine": env.get("machine"),
            "governor": env.get("governor"), "frequency_mhz": env.get("frequency_mhz"),
            "frequency_mhz_after": env.get("frequency_mhz_after"),
            "temperature_c_before": max(temps_before.values(), default=None),
            "temperature_c_after": max(temps_after.values(), default=None),
            "temperatures_c": temps_before, "python": env.get("python"), "os": env.get("os"),
            "thermal": {**(reply.get("thermal") or {}), "throttle_reasons": throttled},
        },
        timing={**req.timing.model_dump(), "warmup_done": reply.get("warmup")},
        extra={"distinct_inputs": reply.get("distinct_inputs"),
               "input_shapes": {k: list(v) for k, v in sorted(plan.shapes.items())}, **(reply.get("extra") or {})},
        commit=git_commit(),
    )
