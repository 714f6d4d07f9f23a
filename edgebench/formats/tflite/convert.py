"""ONNX → TFLite through onnx2tf, run in a child process (``_onnx2tf_worker.py``, run by path under the
interpreter ``convert_env.resolve`` picks: it prints pages, may ``sys.exit`` and loads all of TensorFlow).
The host picks one conversion sample (``sample_inputs``): every input of the .tflite is fixed at its shape,
and onnx2tf gets it instead of downloading one. Its graphs are NHWC; the worker checks onnx2tf's float32 result against onnxruntime on the sample, finds each tensor's
permutation, and the artifact records it so the host transposes inputs and outputs for the runner. A
failure is one line naming the stage, the ONNX node and op, and the converter's root cause
(``failure_message``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from edgebench.data.inputs import plan_inputs
from edgebench.data.npz import load_npz
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.files import temp_prefix
from edgebench.formats.calibration import require_calibration
from edgebench.formats.prequantized import (FLOAT_COPY, TFLITE_QUANTIZER, check_qdq, dequantized, prequantized,
                                            qdq_file)
from edgebench.formats.tensors import Artifact, TensorIO, channel_last
from edgebench.formats.tflite.convert_env import WORKER, resolve
from edgebench.formats.tflite.interpreter import describe
from edgebench.data.source import TensorSpec, load_onnx_info
from edgebench.text import one_line

# onnx2tf's output file per precision: int8 is its integer_quant (int8 weights and activations from our
# calibration data, float32 I/O), int8-dynamic its dynamic-range quantization (int8 weights).
_FILE_PRECISION = {"fp32": "float32", "fp16": "float16", "int8": "integer_quant",
                   "int8-dynamic": "dynamic_range_quant"}
_TIMEOUT_S = 1800


def tool_versions() -> dict[str, str]:
    """The versions of the converter that will run (its environment prepared now if it is missing)."""
    return resolve().versions


def convert(source: Path, precision: str, out_dir: Path, calibration: Path | None = None,
            quantization: dict[str, Any] | None = None, shapes: Mapping[str, Sequence[int]] | None = None,
            **_: Any) -> Artifact:
    """onnx2tf on a prepared copy of ``source``: every input fixed at the shape of one sample (``shapes``
    where given, else the calibration data's, else the model's own with a batch of 1). A pre-quantized QDQ
    (``quantization["qdq"]``, or a QDQ ``source``) converts as its float copy (``prequantized.dequantized``),
    activations calibrated for int8."""
    qdq = qdq_file(quantization)
    if qdq is not None:
        per_channel = check_qdq(qdq, precision, "tflite")["per_channel"]  # the same integers as the QDQ's
        with tempfile.TemporaryDirectory(prefix=temp_prefix("qat")) as work:
            float_copy = dequantized(qdq, Path(work) / "float.onnx")
            artifact = convert(float_copy, precision, out_dir, calibration, {"per_channel": per_channel}, shapes)
        artifact.meta["quantizer"] = TFLITE_QUANTIZER
        return artifact
    if prequantized(source):  # a QDQ source at another precision: onnx2tf's float32 of Q/DQ is not faithful
        with tempfile.TemporaryDirectory(prefix=temp_prefix("qdq")) as work:
            float_copy = dequantized(source, Path(work) / "float.onnx")
            artifact = convert(float_copy, precision, out_dir, calibration, quantization, shapes)
        artifact.meta["converted"] = FLOAT_COPY
        return artifact
    converter = resolve()
    versions = converter.versions
    per_channel = bool((quantization or {}).get("per_channel", True))
    if precision == "int8":
        require_calibration(calibration)
    info = load_onnx_info(source)
    integers = [s.name for s in info.inputs if np.dtype(s.dtype).kind in "iub"]
    if precision == "int8" and integers:
        # onnx2tf's calibration normalises every input to float32, which the converter then refuses to set on
        # an integer input (measured on MiniLM: "Got value of type FLOAT32 but expected type INT64")
        raise EdgebenchError(f"TFLite int8 through onnx2tf cannot calibrate integer inputs ({', '.join(integers)}): "
                             "its calibration feeds float32; use int8-dynamic for TFLite, or int8 in onnx or "
                             "openvino", ExitStatus.CONVERSION_FAILED)
    sample = sample_inputs(info.inputs, calibration, shapes)
    with tempfile.TemporaryDirectory(prefix=temp_prefix("onnx2tf")) as tmp:
        np.savez(Path(tmp) / "sample.npz", *sample.values())  # by position: names may hold '/' or ':'
        request = Path(tmp) / "request.json"
        request.write_text(json.dumps({
            "source": str(source.resolve()), "out_dir": str(out_dir.resolve()), "work_dir": tmp,
            "file_precision": _FILE_PRECISION[precision], "sample": str(Path(tmp) / "sample.npz"),
            "sample_names": list(sample),
            "fixed_shapes": {name: list(arr.shape) for name, arr in sample.items()},
            "calibration": str(calibration.resolve()) if calibration else None,
            "quantize": {"int8": precision == "int8", "dynamic": precision == "int8-dynamic",
                         "per_channel": per_channel}}))
        # onnx2tf runs onnxsim as a command: the one installed beside the converter's interpreter
        path = os.pathsep.join([str(converter.python.parent), os.environ.get("PATH", "")])
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "", "PATH": path}
        # a copy in the work folder: the script's own folder goes first on sys.path, and the package's
        # modules (convert, api …) must not shadow the converter's
        worker = Path(shutil.copy(WORKER, Path(tmp) / WORKER.name))
        try:
            proc = subprocess.run([str(converter.python), str(worker), str(request)],
                                  capture_output=True, text=True, timeout=_TIMEOUT_S, env=env, cwd=tmp)
        except subprocess.TimeoutExpired:
            raise EdgebenchError(f"onnx2tf did not finish converting the model within {_TIMEOUT_S // 60} min: "
                                 "use another format (onnx, openvino) for this model",
                                 ExitStatus.CONVERSION_FAILED) from None
        error, reply_path = Path(tmp) / "error.json", Path(tmp) / "reply.json"
        if error.is_file():
            detail = json.loads(_scrub(error.read_text(), tmp))
            raise EdgebenchError(failure_message(detail), ExitStatus.CONVERSION_FAILED)
        if proc.returncode != 0 or not reply_path.exists():
            raise EdgebenchError(crash_message(proc.returncode, _scrub(proc.stdout + proc.stderr, tmp), precision),
                                 ExitStatus.CONVERSION_FAILED)
        reply = json.loads(reply_path.read_text())
    tflite = out_dir / "model.tflite"
    inputs, outputs = describe(tflite)
    inputs = _with_source(inputs, reply["inputs"], info.inputs)
    outputs = _with_source(outputs, reply["outputs"], info.outputs)
    errors = {o["name"]: o["sample_max_abs_err"] for o in reply["outputs"]}
    rel_errors = {o["name"]: o["sample_rel_err"] for o in reply["outputs"]}
    return Artifact("tflite", precision, [tflite], tflite, inputs, outputs,
                    meta={"converter": "onnx2tf", "sample_max_abs_err": errors, "sample_rel_err": rel_errors,
                          "converted_shapes": {name: list(arr.shape) for name, arr in sample.items()},
                          "kept_input_shapes": reply["kept_input_shapes"], "pseudo_ops": reply["pseudo_ops"],
                          **({"quantizer": f"onnx2tf {_FILE_PRECISION[precision]} (TFLiteConverter)",
                              "per_channel": per_channel} if precision.startswith("int8") else {}),
                          "tool_versions": {**versions, "onnx2tf": reply["onnx2tf"]}})


def sample_inputs(specs: Sequence[TensorSpec], calibration: Path | None,
                  shapes: Mapping[str, Sequence[int]] | None = None) -> dict[str, np.ndarray]:
    """One concrete model input per ONNX input, the shape the .tflite gets: the calibration set's first
    sample (a batch of 1, or ``shapes``), else seeded random data of the model's shape. A scalar or a
    per-sample input (a state with its batch on another axis) is one whole sample of its array."""
    data = load_npz(calibration, "calibration set") if calibration else {}
    names = [s.name for s in specs]
    if len(names) == 1 and names[0] not in data and "inputs" in data:
        data[names[0]] = data.pop("inputs")
    data = {k: v for k, v in data.items() if k in names}
    fixed = {k: tuple(v) for k, v in (shapes or {}).items()}
    unsized = [s for s in specs if s.name not in fixed and s.name not in data
               and any(not isinstance(d, int) for d in s.shape[1:])]
    if unsized:
        which = ", ".join(f"{s.name!r} [{', '.join('?' if d is None else str(d) for d in s.shape)}]" for s in unsized)
        hint = " ".join(f"--shape {s.name}:" + "x".join(str(d) if isinstance(d, int) else "N" if axis else "1"
                                                     for axis, d in enumerate(s.shape)) for s in unsized)
        raise EdgebenchError(f"the TFLite conversion fixes every input shape, and input {which} has dynamic "
                             f"dimensions past the batch: pass --calibration data to take them from, or {hint} "
                             "with a size for each N", ExitStatus.DATA_MISMATCH)
    plan = plan_inputs(specs, shapes=fixed, data={k: v.shape for k, v in data.items()}, what="calibration set")
    rng = np.random.default_rng(0)
    sample = {}
    for spec in specs:
        shape = plan.shapes[spec.name]
        arr = data.get(spec.name)
        if arr is not None:
            arr = arr[:shape[0]] if spec.name in plan.batched else arr[0]
        if arr is None or arr.shape != shape:
            arr = rng.random(shape) if np.dtype(spec.dtype).kind == "f" else rng.integers(0, 2, shape)
        sample[spec.name] = np.array(arr, dtype=spec.dtype)  # a C-ordered copy; 0-d stays 0-d
    return sample


def _scrub(text: str, tmp: str) -> str:
    """No temporary paths in what the user reads."""
    return text.replace(tmp + os.sep, "").replace(tmp, "")


def failure_message(detail: dict[str, Any]) -> str:
    """One line from the worker's error.json: which stage, the node and op, the root cause, what to do.
    The file converted may be one edgebench wrote (weights lifted from Constant nodes), so no file name."""
    detail = {**detail, "reason": one_line(str(detail.get("reason") or "no reason given"), 600)}
    if detail.get("stage") == "onnxruntime":
        return ("onnxruntime cannot run the model on the sample the TFLite conversion fixes its input shapes to "
                f"({detail['reason']}): pass --calibration data (or --shape) that the model takes")
    if detail.get("stage") == "onnxruntime-load":
        return (f"onnx2tf converted the model, but onnxruntime cannot load it to check the result ({detail['reason']})"
                ": use a model onnxruntime runs")
    if detail.get("stage") == "litert":
        fix = ("express that op with builtin TFLite ops in the model (another dtype or op)" if detail.get("flex")
               else "report the model to onnx2tf")
        return (f"onnx2tf converted the model, but LiteRT cannot run the result ({detail['reason']}): {fix}, "
                "or use another format (onnx, openvino)")
    op, node = detail.get("op_type"), detail.get("node")
    where = f"op {op} (node {node})" if op and node else f"op {op}" if op else f"node {node}" if node else ""
    if detail.get("unfaithful"):
        return (f"onnx2tf cannot convert the model faithfully: {detail['reason']}: report the model to onnx2tf, "
                "or use another format (onnx, openvino)")
    if detail.get("unsupported"):
        return (f"onnx2tf cannot convert the model: {where} is not supported by onnx2tf: replace it in the model "
                "or use another format (onnx, openvino)")
    reason = detail["reason"]
    return (f"onnx2tf cannot convert the model: {where + ': ' if where else ''}{reason}"
            ": export the model without this op or pattern, or use another format (onnx, openvino)")


def _with_source(tensors: list[TensorIO], mapping: list[dict[str, Any]], specs: Any) -> list[TensorIO]:
    by_src = {s.name: s for s in specs}
    by_name = {m["name"]: m for m in mapping}
    result = []
    for t in tensors:
        m = by_name.get(t.name)
        if m is None or m["permutation"] == "unmatched":
            raise EdgebenchError(f"onnx2tf produced tensor {t.name!r} that matches no ONNX tensor: the conversion "
                                 "is not faithful; report the model to onnx2tf", ExitStatus.CONVERSION_FAILED)
        src = by_src[m["source_name"]]
        perm = tuple(m["permutation"]) if m["permutation"] else None
        layout = ("NHWC" if perm == channel_last(4) else "NCHW") if len(src.shape) == 4 else None
        result.append(TensorIO(t.name, t.dtype, t.shape, src.name, src.shape, layout, perm))
    return result


def crash_message(returncode: int, log: str, precision: str) -> str:
    """One line for a converter process that ended without its reply: killed by a signal (TensorFlow's
    converter crashing in native code) or exited with an error that onnx2tf's log names."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return (f"the TFLite converter crashed ({name}) converting the model to {precision}: a fault inside "
                "TensorFlow/onnx2tf, not in the model file; try another precision or another format (onnx, openvino)")
    reason = onnx2tf_message(log) or f"the converter process ended with status {returncode}"
    return f"onnx2tf cannot convert the model: {reason}"


def onnx2tf_message(text: str) -> str:
    """onnx2tf's long log, shortened to the op that failed and why (when the worker itself failed).
    onnxruntime's own warning lines (shape merges during onnx2tf's checks) are never the reason; empty when
    nothing else is left."""
    clean = re.sub(r"\x1b\[[0-9;]*m", "", text)
    clean = "\n".join(ln for ln in clean.splitlines() if not re.search(r"\[[WIV]:onnxruntime", ln))
    missing_op = re.search(r"No module named 'onnx2tf\.ops\.(\w+)'", clean)
    if missing_op:
        return f"op {missing_op.group(1)} is not supported by onnx2tf: replace it in the model or use another format"
    op_name = re.search(r"onnx_op_name:\s*(\S+)", clean)
    errors = [ln.strip() for ln in clean.splitlines()
              if re.search(r"(Error|ERROR|not supported|Unsupported)", ln) and "trace log" not in ln]
    reason = errors[-1][:240] if errors else (clean.strip().splitlines() or [""])[-1][:240]
    return f"node {op_name.group(1)}: {reason}" if op_name else reason
