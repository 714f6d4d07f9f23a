"""Cross-format agreement: run each format on the same dataset and judge it against the fp32 ONNX.

Per format: top-1 against labels, top-1 agreement with the reference, max absolute / relative error,
and the smallest tolerance that would have passed, as Polygraphy prints it ("[abs=…] OR [rel=…]": an
element passes when it is within atol OR within rtol). A format passes when every element is within
the precision's default tolerance and its top-1 agreement reaches ``min_agreement``. With a recipe,
every format is built at that recipe and still judged against the fp32 ONNX: the table then shows what
the compression costs in each format (pruning and clustering change outputs by design, so such rows
are expected to need ``--tolerance`` / ``--min-agreement`` to pass).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgebench.bench import BenchRequest, Outcome, execute
from edgebench.config import TimingSpec, load_profile
from edgebench.errors import EdgebenchError

# (atol, rtol) per precision: fp32 conversions differ only by reordered float sums; fp16 weights move
# logits by ~1e-3 relative (Polygraphy's guidance), so its bound is looser.
# int8 moves each logit by a few quantization steps of the activations (~0.1-0.5 on logits of ~10); its
# top-1 agreement is the more telling check.
DEFAULT_TOLERANCES = {"fp32": (1e-4, 1e-4), "fp16": (1e-2, 1e-2), "int8": (5e-1, 5e-1),
                      "int8-dynamic": (5e-1, 5e-1)}
MIN_AGREEMENT = 0.99
# Outputs are captured once per sample; latency is bench's job, so compare times as little as it may.
COMPARE_TIMING = TimingSpec(warmup_iterations=0, warmup_s=0, min_iterations=1, min_duration_s=0, max_duration_s=1)


@dataclass
class Row:
    format: str
    precision: str
    recipe: str = "fp32"
    status: str = "ok"
    top1: float | None = None
    agreement_top1: float | None = None
    max_abs_err: float | None = None
    max_rel_err: float | None = None
    required_atol: float | None = None
    required_rtol: float | None = None
    atol: float | None = None
    rtol: float | None = None
    passed: bool | None = None
    cache_hit: bool | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def elementwise(out: np.ndarray, ref: np.ndarray, atol: float, rtol: float) -> dict[str, Any]:
    """Polygraphy's element-wise check and the minimum tolerances that would have passed it."""
    out64, ref64 = np.asarray(out, np.float64), np.asarray(ref, np.float64)
    if out64.shape != ref64.shape:
        raise EdgebenchError(f"output shape {list(out64.shape)} differs from the reference's {list(ref64.shape)}")
    absdiff = np.abs(out64 - ref64)
    reldiff = absdiff / np.maximum(np.abs(ref64), np.finfo(np.float64).tiny)
    ok = (absdiff <= atol) | (reldiff <= rtol)
    return {"max_abs_err": float(absdiff.max(initial=0.0)), "max_rel_err": float(reldiff.max(initial=0.0)),
            "required_atol": float(absdiff.max(initial=0.0)), "required_rtol": float(reldiff.max(initial=0.0)),
            "within_tolerance": bool(ok.all())}


def judge(outcome: Outcome, reference: Outcome, output: str | None, tolerances: dict[str, tuple[float, float]],
          min_agreement: float) -> Row:
    target = outcome.target
    atol, rtol = tolerances.get(target.precision, DEFAULT_TOLERANCES["fp32"])
    row = Row(target.format, target.precision, str(target.meta.get("recipe") or target.precision), atol=atol,
              rtol=rtol, cache_hit=target.cache_hit,
              top1=outcome.result.accuracy.get("top1"))
    name = output or next(iter(reference.outputs or {}))
    out, ref = (outcome.outputs or {}).get(name), (reference.outputs or {}).get(name)
    if out is None or ref is None:
        raise EdgebenchError(f"output {name!r} is missing from the {target.format} run or the reference: "
                             "pass --output with an output both produce")
    checked = elementwise(out, ref, atol, rtol)
    row.max_abs_err, row.max_rel_err = checked["max_abs_err"], checked["max_rel_err"]
    row.required_atol, row.required_rtol = checked["required_atol"], checked["required_rtol"]
    scores = np.asarray(out).reshape(len(out), -1)
    row.agreement_top1 = float(np.mean(scores.argmax(1) == np.asarray(ref).reshape(len(ref), -1).argmax(1)))
    row.passed = checked["within_tolerance"] and row.agreement_top1 >= min_agreement
    return row


def compare(model: Path, formats: list[str], dataset: Path, precision: str | None = None, device: str = "local-cpu",
            threads: int | None = None, output: str | None = None, calibration: Path | None = None,
            cache_dir: Path | None = None, tolerances: dict[str, tuple[float, float]] | None = None,
            min_agreement: float = MIN_AGREEMENT, recipe: str | None = None) -> list[Row]:
    """One row per format; a format that fails to convert or run gets its error and the others go on."""
    tolerances = {**DEFAULT_TOLERANCES, **(tolerances or {})}
    profile = load_profile(device)

    def request(fmt: str | None, prec: str | None, steps: str | None = None) -> BenchRequest:
        return BenchRequest(model=model, device=device, dataset=dataset, threads=threads, timing=COMPARE_TIMING,
                            format=fmt, precision=prec, calibration=calibration, cache_dir=cache_dir,
                            output=output, recipe=steps)

    reference = execute(request(None, None), profile)
    plain = recipe is None and precision in (None, "fp32")
    rows = []
    for fmt in formats:
        try:
            outcome = reference if (fmt == "onnx" and plain) else execute(request(fmt, precision, recipe), profile)
            rows.append(judge(outcome, reference, output, tolerances, min_agreement))
        except EdgebenchError as exc:
            rows.append(Row(fmt, precision or "fp32", recipe or precision or "fp32", status="error", passed=False,
                            error=str(exc)))
    return rows
