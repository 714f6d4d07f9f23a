"""Cross-format agreement: run each format on the same dataset and judge it against the fp32 ONNX.

Every output of every format is measured against the same output of the reference (edgebench.data.accuracy:
cosine, SNR in dB, relative L2, max abs / rel error; top-1 agreement where the output is class scores;
top-1 against labels where labels exist). A format passes when each judged output (all of them, or the
one ``output`` names) reaches its precision's criteria: SNR ≥ ``min_snr_db``, cosine ≥ ``min_cosine`` and,
where top-1 applies, top-1 agreement ≥ ``min_agreement``. Polygraphy's element-wise figure — the smallest
tolerance that would have passed ("[abs=…] OR [rel=…]") — is kept as information only: it judges one
worst element, so an fp16 CNN with identical predictions failed it, while an int8 transformer whose
embeddings were ruined passed top-1 agreement. With a recipe, every format is built at that recipe and
still judged against the fp32 ONNX (pruning and clustering change outputs by design, so such rows are
expected to need looser criteria to pass).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from edgebench.artifacts.cache import effective_recipe
from edgebench.data import accuracy
from edgebench.pipeline.bench import BenchRequest, Outcome, execute, hub_source, model_name
from edgebench.compress.graph import LayerSelection
from edgebench.config import TimingSpec, load_profile
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.formats.calibration import check_calibration


@dataclass(frozen=True)
class Criteria:
    """What an output of one precision must reach to pass (docs/formats.md gives the measurements)."""
    min_snr_db: float
    min_cosine: float
    min_agreement: float  # top-1 agreement, where the output is class scores


# Measured on digits and the corpus (docs/formats.md, "Cross-format agreement"): healthy fp32 conversions
# read 119-127 dB, fp16 45-111 dB, int8 16 dB and up; damage that costs a point of top-1 or more reads
# 13.5 dB and below (weight noise, int8 calibrated on mis-scaled data, a broken fp16 graph at -1 dB).
DEFAULT_CRITERIA = {
    "fp32": Criteria(min_snr_db=60.0, min_cosine=0.99999, min_agreement=0.99),
    "fp16": Criteria(min_snr_db=30.0, min_cosine=0.999, min_agreement=0.99),
    "int8": Criteria(min_snr_db=15.0, min_cosine=0.98, min_agreement=0.95),
    "int8-dynamic": Criteria(min_snr_db=15.0, min_cosine=0.98, min_agreement=0.95),
}
# Outputs are captured once per sample; latency is bench's job, so compare times as little as it may.
COMPARE_TIMING = TimingSpec(warmup_iterations=0, warmup_s=0, min_iterations=1, min_duration_s=0, max_duration_s=1)


@dataclass
class Row:
    """One format. The flat metrics are those of the scored output (``output``, default the first);
    ``outputs`` holds every output's metrics, its verdict and why it failed."""
    format: str
    precision: str
    recipe: str = "fp32"
    status: str = "ok"
    output: str | None = None
    top1: float | None = None
    agreement_top1: float | None = None
    cosine: float | None = None
    snr_db: float | None = None
    rel_l2: float | None = None
    max_abs_err: float | None = None
    max_rel_err: float | None = None
    required_atol: float | None = None
    required_rtol: float | None = None
    criteria: dict[str, float] | None = None
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    passed: bool | None = None
    failures: list[str] = field(default_factory=list)
    cache_hit: bool | None = None
    error: str | None = None
    error_kind: str | None = None  # the error's ExitStatus name in lower case (runtime_missing …), as results name it

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def failures(metrics: dict[str, Any], criteria: Criteria) -> list[str]:
    """Why one output's metrics miss the criteria (empty: it passes)."""
    found = [f"{metrics['nonfinite']} values not finite"] if metrics["nonfinite"] else []
    if not metrics["snr_db"] >= criteria.min_snr_db:
        found.append(f"SNR {metrics['snr_db']:.1f} dB < {criteria.min_snr_db:g}")
    if not metrics["cosine"] >= criteria.min_cosine:
        found.append(f"cosine {metrics['cosine']:.4f} < {criteria.min_cosine:g}")
    agreement = metrics.get("agreement_top1")
    if agreement is not None and not agreement >= criteria.min_agreement:
        found.append(f"top-1 agreement {agreement:.1%} < {criteria.min_agreement * 100:g}%")
    return found


def judge(outcome: Outcome, reference: Outcome, output: str | None, criteria: dict[str, Criteria],
          labels: np.ndarray | None = None, task: str = "auto") -> Row:
    """Measure every output of ``outcome`` against ``reference``; judge ``output`` alone when given."""
    target = outcome.target
    wanted = criteria.get(target.precision, criteria["fp32"])
    ref_outputs, outs = reference.outputs or {}, outcome.outputs or {}
    scored = output or next(iter(ref_outputs))
    missing = [n for n in ref_outputs if n not in outs]
    if missing:
        raise EdgebenchError(f"output {missing[0]!r} is missing from the {target.format} run")
    try:
        measured = accuracy.score_outputs({n: outs[n] for n in ref_outputs}, ref_outputs, scored, labels, task)
    except ValueError as exc:
        raise EdgebenchError(f"{target.format}: {exc}") from None
    row = Row(target.format, target.precision, target.recipe or target.precision, output=scored,
              cache_hit=target.cache_hit, criteria=asdict(wanted))
    for name, metrics in measured.items():
        judged = output is None or name == output
        metrics["failures"] = failures(metrics, wanted) if judged else []
        metrics["judged"] = judged
        row.failures += [f"{name}: {why}" for why in metrics["failures"]]
    row.outputs = measured
    first = measured[scored]
    row.top1, row.agreement_top1 = first.get("top1"), first.get("agreement_top1")
    row.cosine, row.snr_db, row.rel_l2 = first["cosine"], first["snr_db"], first["rel_l2"]
    row.max_abs_err, row.max_rel_err = first["max_abs_err"], first["max_rel_err"]
    # Polygraphy's "smallest tolerance that would have passed": an element passes within atol OR rtol.
    row.required_atol, row.required_rtol = first["max_abs_err"], first["max_rel_err"]
    row.passed = not row.failures
    return row


def compare(model: Path, formats: list[str], dataset: Path | None, precision: str | None = None,
            device: str = "local-cpu", threads: int | None = None, output: str | None = None,
            calibration: Path | None = None, cache_dir: Path | None = None,
            criteria: dict[str, Criteria] | None = None, recipe: str | None = None, task: str = "auto",
            shapes: dict[str, tuple[int, ...]] | None = None, ranges: dict[str, tuple[float, float]] | None = None,
            values: dict[str, float] | None = None, layers: LayerSelection | None = None,
            starting: Callable[[str], None] | None = None) -> list[Row]:
    """One row per format; a format that fails to convert or run gets its error and the others go on.
    Without a dataset every format gets the same seeded random inputs (``shapes``, ``ranges``, ``values``
    as in bench); ``shapes`` also reach the conversions. With a ``recipe``, ``precision`` is its last step.
    ``starting(what)`` hears each step (the reference, then each format) before it runs."""
    announce = starting or (lambda what: None)
    if task not in accuracy.TASKS:
        raise EdgebenchError(f"bad --task {task!r}: choose one of {', '.join(accuracy.TASKS)}", ExitStatus.USAGE)
    if recipe is not None:
        recipe, precision = effective_recipe(recipe, precision).canonical, None
    hub = hub_source(Path(model), cache_dir, shapes)  # a Keras, SavedModel or PyTorch model: its hub ONNX, once
    onnx = hub.onnx if hub is not None else model
    if calibration is not None:  # a misfit set (or NaN in it) refused before any run
        check_calibration(onnx, calibration, effective_recipe(recipe, precision).precision == "int8", shapes)
    criteria = {**DEFAULT_CRITERIA, **(criteria or {})}
    profile = load_profile(device)

    def request(fmt: str | None, prec: str | None, steps: str | None = None) -> BenchRequest:
        return BenchRequest(model=onnx, device=device, dataset=dataset, threads=threads, timing=COMPARE_TIMING,
                            format=fmt, precision=prec, calibration=calibration, cache_dir=cache_dir,
                            output=output, recipe=steps, shapes=dict(shapes or {}), ranges=dict(ranges or {}),
                            values=dict(values or {}), capture=True, layers=layers,
                            name=model_name(model) if hub is not None else None,
                            source=hub.record() if hub is not None else None)

    announce(f"reference: {Path(model).name} fp32 onnx on {device}")
    reference = execute(request(None, None), profile)
    labels = reference.labels  # as bench read them: a model input named labels stays an input
    ref_outputs = reference.outputs or {}
    scored = output or next(iter(ref_outputs))
    if task == "classify" and accuracy.output_kind(ref_outputs[scored], labels, task) != accuracy.CLASSES:
        raise EdgebenchError(f"--task classify: output {scored!r} has shape {list(ref_outputs[scored].shape)}, "
                             "not >= 2 class scores on its last axis: drop --task or pick the scores with --output",
                             ExitStatus.USAGE)
    plain = recipe is None and precision in (None, "fp32")
    rows = []
    for fmt in formats:
        announce(f"{fmt} {recipe or precision or 'fp32'} on {device} (converted through the cache)")
        try:
            outcome = reference if (fmt == "onnx" and plain) else execute(request(fmt, precision, recipe), profile)
            rows.append(judge(outcome, reference, output, criteria, labels, task))
        except EdgebenchError as exc:
            rows.append(Row(fmt, precision or "fp32", recipe or precision or "fp32", status="error", passed=False,
                            error=str(exc), error_kind=exc.status.name.lower()))
    return rows


def write_json(rows: list[Row], path: Path, model: Path, name: str | None = None) -> None:
    """The rows of ``compare --json``, with the model's path and its name in results (``name`` or bench's rule)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"schema_version": 1, "model": str(model), "name": model_name(model, name),
                                "rows": [r.to_dict() for r in rows]}, indent=1))
