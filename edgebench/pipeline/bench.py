"""One benchmark job: resolve the artifact, prepare inputs, run the runner on the device, make a Result.

Inputs are planned and outputs scored in the source model's names and layout; the artifact's tensor
mapping (targets.Target) transposes and renames on the way to and from the device, so every format
sees the same samples and is judged by the same code.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from edgebench.data import accuracy
from edgebench.compress.graph import LayerSelection
from edgebench.compress.weights import requested
from edgebench.config import DeviceProfile, TimingSpec, load_profile
from edgebench.data.inputs import InputPlan, check_output, check_shapes, plan_dataset, plan_inputs, random_inputs
from edgebench.data.npz import load_npz
from edgebench.devices import make_transport
from edgebench.devices.thermal import throttle_reasons
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.files import temp_prefix
from edgebench.data.domains import integer_input_domains
from edgebench.commits import git_commit, user_commit
from edgebench.result import Accuracy, DeviceInfo, Energy, Memory, ModelInfo, Provenance, Result, Validity
from edgebench.result import LayerProfile, Throughput
from edgebench.data.source import TensorSpec, load_onnx_info
from edgebench.runner.job import INPUT_ROTATION, RunnerJob
from edgebench.runner.timing import TimingRules
from edgebench.formats.tensors import from_artifact_outputs, source_tensor_specs, to_artifact_inputs
from edgebench.pipeline.stats import summarize_ns, throughput_per_s
from edgebench.artifacts.meta import COST_METRICS, ArtifactMeta
from edgebench.artifacts.targets import Target, resolve
from edgebench.artifacts.cache import cache_root
from edgebench.sources.hub import HubModel, to_hub
from edgebench.sources.registry import source_of
from edgebench.training.finetune import Finetune


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
    capture: bool | None = None  # capture outputs for scoring; None: when a dataset is given
    layers: LayerSelection | None = None  # which layers the recipe's prune/cluster steps touch (None: default)
    finetune: Finetune | None = None  # training data (and teacher, settings) for a recipe that fine-tunes
    progress: Callable[[str], None] | None = None  # fine-tuning's epoch lines
    profile: bool = False  # a per-layer profiling pass after the timed loop (Result.profile)
    mode: str = "latency"  # throughput: also requests in flight at once after the timed loop (Result.throughput)
    streams: int | None = None  # throughput mode's model instances and requests in flight (None: the runtime's)
    requests: int | None = None
    cpus: list[int] | None = None  # pin the runner to these CPUs (None: the profile's cpus, if any)
    # the framework model ``model`` was exported from (HubModel.record; set by ``adopt_source``), for the result
    source: dict[str, Any] | None = None
    route: str | None = None  # "hub": convert a source model through its hub ONNX even where a direct route exists


@dataclass
class Outcome:
    """A finished job: the Result plus the outputs (source names and layout) and the dataset's labels (checked;
    a model input named ``labels`` is an input, not labels), for comparisons."""
    result: Result
    outputs: dict[str, np.ndarray] | None
    target: Target
    labels: np.ndarray | None = None


def run_bench(req: BenchRequest, profile: DeviceProfile | None = None) -> Result:
    return execute(req, profile).result


def execute(req: BenchRequest, profile: DeviceProfile | None = None, target: Target | None = None) -> Outcome:
    """Run ``req`` on its device. ``target``: the artifact already resolved for it (a sweep's conversion step
    hands its cells the one it made), else resolved here from the request."""
    profile = profile or load_profile(req.device)
    if target is None:
        target = resolve_target(req)
    job = plan_job(req, profile, target)
    work = Path(tempfile.mkdtemp(prefix=temp_prefix("job")))
    try:
        files = job.files(work / "inputs.npz")
        with make_transport(profile) as transport:
            reply = transport.run_job(job.job, files, work / "out", job.timeout_s)
        outputs = _read_outputs(reply, work / "out")
        if outputs is not None:
            outputs = from_artifact_outputs(outputs, target.outputs)
        result = job.result(reply, outputs)
        return Outcome(result, outputs, target, job.labels)
    finally:
        shutil.rmtree(work, ignore_errors=True)


@dataclass
class PlannedJob:
    """One model's runner job with what its reply needs to become a Result."""

    req: BenchRequest
    profile: DeviceProfile
    target: Target
    plan: InputPlan
    arrays: dict[str, np.ndarray]
    labels: np.ndarray | None
    threads: int
    job: RunnerJob

    @property
    def timeout_s(self) -> float:
        return self.req.timeout_s or (self.req.timing.max_duration_s * 2 + 300)

    def files(self, inputs_path: Path) -> dict[str, Path]:
        """The job's files (the inputs written to ``inputs_path``), keyed as the transport places them."""
        np.savez(inputs_path, **to_artifact_inputs(self.arrays, self.target.inputs))  # type: ignore[arg-type]  # numpy's stub
        return {**self.target.job_files(), "inputs_npz": inputs_path}

    def result(self, reply: dict[str, Any], outputs: dict[str, np.ndarray] | None) -> Result:
        return build_result(self.req, self.profile, self.target, self.plan, reply, self.threads, outputs, self.labels)


def plan_job(req: BenchRequest, profile: DeviceProfile, target: Target) -> PlannedJob:
    """The runner job for ``req`` on ``profile`` with its inputs planned (and the output it scores checked
    before anything runs)."""
    check_output(source_tensor_specs(target.outputs), req.output)  # before the run, not after it
    plan, arrays, labels = prepare_inputs(req, source_tensor_specs(target.inputs), source_tensor_specs(target.outputs))
    capture = req.capture if req.capture is not None else req.dataset is not None
    threads = req.threads if req.threads is not None else profile.threads
    names = {t.source_name: t.name for t in target.inputs}
    job = RunnerJob(
        backend=target.backend,
        device=profile.accelerator.upper(),
        device_name=profile.name,
        threads=threads,
        backend_options=target.backend_options(req.backend_options),
        timing=TimingRules(**req.timing.model_dump(exclude={"cv_threshold"})),
        batch=plan.batch,
        per_sample_inputs=tuple(names.get(n, n) for n in plan.per_sample),
        rotation=INPUT_ROTATION,
        capture_outputs=capture,
        thermal=profile.thermal.model_dump(),
        profile=req.profile,
        mode=req.mode, streams=req.streams, requests=req.requests,
        cpus=tuple(cpus) if (cpus := req.cpus if req.cpus is not None else profile.cpus) is not None else None,
        power=profile.power.model_dump(exclude_none=True) if profile.power is not None else None,
    )
    return PlannedJob(req, profile, target, plan, arrays, labels, threads, job)


def hub_source(model: Path, cache_dir: Path | None, shapes: Mapping[str, tuple[int, ...]] | None = None
               ) -> HubModel | None:
    """A source model (Keras, SavedModel, PyTorch: edgebench.sources) exported into the artifact cache's hub ONNX
    (once: a second call finds it); None for an .onnx or an artifact, which are used as they are."""
    if source_of(model) is None:
        return None
    return to_hub(model, cache_root(cache_dir), shapes)


def adopt_source(req: BenchRequest) -> None:
    """``req`` on its source model's hub ONNX, in place, so that everything after (recipes, formats, inputs keyed
    by name, accuracy) sees an ONNX model: ``model`` becomes the hub ONNX, ``name`` the source file's (by the
    same rule), ``source`` its record. A request on an ONNX or an artifact is left as it is."""
    hub = hub_source(Path(req.model), req.cache_dir, req.shapes)
    if hub is not None:
        req.name = req.name or model_name(req.model)
        req.model, req.source = hub.onnx, hub.record()


def resolve_target(req: BenchRequest) -> Target:
    """The artifact ``req`` measures: the model as it is, or converted through the artifact cache (a source
    model first exported to its hub ONNX: ``adopt_source``)."""
    adopt_source(req)
    if (req.shapes or req.dataset or req.output) and (req.format or req.recipe) and \
            Path(req.model).suffix.lower() == ".onnx":
        info = load_onnx_info(req.model)
        check_shapes(info.inputs, req.shapes)  # a bad --shape or --output: refused before converting
        check_output(info.outputs, req.output)
        if req.dataset is not None:  # so is a dataset that does not fit, holds NaN or has stray labels
            plan_dataset(req.dataset, info.inputs, req.batch, req.shapes, req.ranges, req.values,
                         outputs=info.outputs, output=req.output)
    return resolve(req.model, req.format, req.precision, req.recipe, req.calibration, req.cache_dir,
                   shapes=conversion_shapes(req.model, req.format, req.dataset, req.calibration, req.shapes),
                   selection=req.layers, finetune=req.finetune, progress=req.progress, route=req.route)


def conversion_shapes(model: Path, fmt: str | None, dataset: Path | None, calibration: Path | None,
                      shapes: Mapping[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
    """The shapes a converter fixes: ``shapes`` (``--shape``), and for a format whose file has fixed shapes
    (TFLite) the dataset's sizes at batch 1 for the dynamic dimensions ``shapes`` leaves open when no
    calibration set gives the sample (without them the converter would pick sizes the dataset then does
    not fit). bench and a sweep's conversion step ask the same, so they share one cache entry."""
    if fmt != "tflite" or dataset is None or calibration is not None or Path(model).suffix.lower() != ".onnx":
        return dict(shapes)
    specs = load_onnx_info(model).inputs
    open_inputs = [s.name for s in specs if s.dynamic_axes and s.name not in shapes]
    if not open_inputs:
        return dict(shapes)
    plan, _ = plan_dataset(dataset, specs, None, shapes)
    return {**shapes, **{name: plan.shapes[name] for name in open_inputs}}


def prepare_inputs(req: BenchRequest, specs: tuple[TensorSpec, ...], outputs: tuple[TensorSpec, ...] = ()
                   ) -> tuple[InputPlan, dict[str, np.ndarray], np.ndarray | None]:
    """The plan and the sample arrays: the dataset's (its arrays settle dynamic dimensions --shape leaves
    open), or seeded random data whose integer inputs take the values the source graph shows as valid."""
    if req.dataset is not None:
        plan, data = plan_dataset(req.dataset, specs, req.batch, req.shapes, req.ranges, req.values,
                                  outputs=outputs, output=req.output)
        return plan, data.arrays, data.labels
    plan = plan_inputs(specs, req.batch, req.shapes, req.ranges, req.values)
    open_integers = [n for n, dt in plan.dtypes.items()
                     if np.dtype(dt).kind in "iu" and n not in plan.ranges and n not in plan.values]
    if open_integers and Path(req.model).suffix.lower() == ".onnx":
        plan.adopt(integer_input_domains(Path(req.model)))
    return plan, random_inputs(plan, seed=req.seed), None


def _read_outputs(reply: dict[str, Any], out_dir: Path) -> dict[str, np.ndarray] | None:
    if "outputs" not in reply:
        return None
    if not (out_dir / "outputs.npz").is_file():
        raise EdgebenchError("the runner broke the protocol: its reply names captured outputs but no outputs.npz "
                             "came back: remove the profile's workdir on the device so that edgebench pushes its "
                             "runner again", ExitStatus.RUNNER_FAILED)
    return load_npz(out_dir / "outputs.npz", "runner outputs", limited=False)


def score(outputs: dict[str, np.ndarray] | None, output_names: list[str], labels: np.ndarray | None,
          reference: dict[str, np.ndarray] | None, output: str | None) -> dict[str, Any]:
    """Top-1 against labels (where the scored output is class scores) and, with a reference, every
    output's agreement (edgebench.data.accuracy); the scored output's figures also sit at the top level."""
    if outputs is None:
        return {}
    name = output or output_names[0]
    if name not in outputs:
        raise EdgebenchError(f"the model has no output {name!r} (outputs: {', '.join(outputs)}): fix --output",
                             ExitStatus.USAGE)
    common = reference if reference is None else {k: v for k, v in reference.items() if k in outputs}
    try:
        measured = accuracy.score_outputs(outputs, common, name, labels)
    except ValueError as exc:  # labels that do not fit the scores the run returned
        raise EdgebenchError(f"dataset: {exc}", ExitStatus.DATA_MISMATCH) from None
    scores: dict[str, Any] = {"output": name, "samples": int(len(outputs[name])),
                              **{k: v for k, v in measured[name].items() if k != "shape"}}
    if common:
        scores["outputs"] = {k: v for k, v in measured.items() if k in common}
    return scores


# File stems that say nothing about the model (exporters' and converters' defaults): such a file is named
# after its folder instead (models/resnet50/model.onnx → "resnet50").
GENERIC_STEMS = frozenset({"model", "inference", "saved_model", "export", "exported", "best", "last", "graph",
                           "frozen_graph", "frozen_inference_graph", "weights", "net", "network"})


def model_name(path: str | Path, given: str | None = None, meta: ArtifactMeta | None = None) -> str:
    """How results name a model: the name the user gave (``--name``, a sweep spec's ``name``); else, for an
    artifact edgebench made (its meta.json), its source model's name; else the file's stem, or, when the
    stem is generic (``GENERIC_STEMS``: model.onnx, inference.tflite …), the nearest folder with a name
    that is not."""
    if given:
        return given
    if meta is not None and meta.origin:  # made from a source model's hub ONNX: named after the source
        return model_name(str(meta.origin["path"]))
    if meta is not None and meta.source:
        return model_name(meta.source)
    path = Path(path)
    for part in (path.stem, *(p.name for p in path.resolve().parents)):
        if part and part.lower() not in GENERIC_STEMS:
            return part
    return path.stem


# Backend options that say where a runtime keeps its caches, not how it runs the model: left out of the cell key,
# so a cache folder on another machine does not make the same measurement another cell.
UNKEYED_OPTIONS = frozenset({"cache_dir", "warm_compile", "engine_cache"})


def cell_options(threads: int, batch: int, job_options: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """A result's ``options``, part of its cell key: threads, batch and, under ``backend``, the backend options the
    user set (``--option``: an execution provider, a performance hint …) as the job got them, so a measurement
    with CUDA never matches one on the CPU. Without such options the key is what it always was."""
    backend = {k: v for k, v in job_options.items() if k in given and k not in UNKEYED_OPTIONS}
    return {"threads": threads, "batch": batch, **({"backend": backend} if backend else {})}


def cost_metrics(target: Target) -> dict[str, Any]:
    """What compression bought: parameter counts, sparsity, shared values, ratios against fp32 of the
    same format, what the recipe asked for and any warning about it — from the artifact's meta.json, or
    read from an artifact given as it is (params counted the same way in every format)."""
    meta = target.meta
    costs = meta.cost_metrics() if meta is not None else {}
    if not costs:
        costs = {k: v for k, v in target.read_costs().items() if k in COST_METRICS}
    return {**costs, **requested(meta.weight_steps if meta is not None else {})}


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
    validity = Validity(**reply["validity"], cv_ok=summary.robust_cv <= req.timing.cv_threshold,
                        throttled=bool(throttled))
    costs = cost_metrics(target)
    warnings = costs.pop("warnings", [])
    return Result(
        model=ModelInfo(
            name=model_name(req.model, req.name, target.meta), source_sha256=target.source_sha256,
            recipe=target.recipe or req.recipe or target.precision, format=target.format,
            precision=target.precision, path=str(target.main), size_bytes=target.size_bytes,
            gzip_bytes=target.gzip_bytes, files=[str(f) for f in target.files], cache_hit=target.cache_hit,
            costs=costs, warnings=list(warnings), inputs=[t.to_dict() for t in target.inputs],
            outputs=[t.to_dict() for t in target.outputs],
            source=req.source or (dict(target.meta.origin) if target.meta and target.meta.origin else None)),
        device=DeviceInfo(profile=profile.name, host=reply.get("environment", {}).get("hostname"),
                          accelerator=profile.accelerator, cpus=tuple(reply["cpus"]) if reply.get("cpus") else None),
        runtime=reply["runtime"],
        options={**cell_options(threads, plan.batch, target.backend_options(req.backend_options), req.backend_options),
                 **({"cpus": reply["cpus"]} if reply.get("cpus") else {})},  # pinned: another cell
        latency_ms=summary,
        samples_ns=samples,
        iterations=len(samples),
        duration_s=float(reply["duration_s"]),
        batch=plan.batch,
        load_ms=reply["load_ms"],
        first_inference_ms=reply["first_inference_ms"],
        throughput_per_s=throughput_per_s(samples, plan.batch),
        memory_mb=Memory.from_dict(reply["memory_mb"]),
        accuracy=Accuracy.from_dict(score(outputs, [t.source_name or t.name for t in target.outputs], labels,
                                          reference, req.output)),
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
               "input_shapes": {k: list(v) for k, v in sorted(plan.shapes.items())},
               "inputs": plan.describe(from_dataset=req.dataset is not None), **(reply.get("extra") or {})},
        commit=git_commit(),
        provenance=provenance(target, reply["runtime"]),
        energy=Energy.from_dict(reply["energy"]) if reply.get("energy") is not None else None,
        energy_note=reply.get("energy_note"),
        profile=LayerProfile.from_dict(reply["profile"]) if reply.get("profile") is not None else None,
        throughput=throughput(reply.get("throughput"), plan.batch),
    )


def throughput(load: Mapping[str, Any] | None, batch: int) -> Throughput | None:
    """Throughput mode's figures from the runner's reply: inferences (samples) per second over its window and
    the latency of the requests completed in it."""
    if load is None:
        return None
    samples = [int(s) for s in load["samples_ns"]]
    if not samples:
        raise EdgebenchError(f"throughput mode completed no request in its {load['duration_s']:.3g} s window: "
                             "raise --max-duration-s", ExitStatus.USAGE)
    settings = {**load["settings"], "completed": len(samples), "validity": load["validity"]}
    return Throughput(streams=int(settings["streams"]), requests=int(settings["requests"]),
                      inferences_per_s=len(samples) * batch / float(load["duration_s"]),
                      latency_ms=summarize_ns(samples), duration_s=float(load["duration_s"]), settings=settings)


def provenance(target: Target | None = None, runtime: Mapping[str, Any] | None = None) -> Provenance:
    """The user's commit (``GITHUB_SHA``, else the working directory's git HEAD), the converter versions that
    made the artifact (none for a model measured as given, or a cell that failed before it had one) and the
    runtime that ran it."""
    commit = user_commit(os.environ)
    meta = target.meta if target is not None else None
    return Provenance(commit=commit[0] if commit else None, commit_source=commit[1] if commit else None,
                      converter=dict(meta.tool_versions) if meta is not None else {},
                      runtime={k: str(v) for k in ("name", "version") if (v := (runtime or {}).get(k)) is not None})
