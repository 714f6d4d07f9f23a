"""TFLite (LiteRT) flatbuffers: from ONNX through onnx2tf, from Keras and from torch modules.

onnx2tf runs in a child process (``_onnx2tf_worker``): it prints pages, may ``sys.exit`` and loads
all of TensorFlow. It is always handed the project's own sample data, so it never downloads one.
Its graphs are NHWC; the worker finds each tensor's permutation by running ONNX and TFLite on the
same sample, and the artifact records it so the host transposes inputs and outputs for the runner.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from edgebench.convert.tensors import Artifact, TensorIO, channel_last
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.source import load_onnx_info

PRECISIONS = ("fp32", "fp16", "int8", "int8-dynamic")
BACKEND = "tflite"
EXTRA = "tflite-convert"
SUFFIXES = (".tflite",)
# onnx2tf's output file per precision: int8 is its integer_quant (int8 weights and activations from our
# calibration data, float32 I/O), int8-dynamic its dynamic-range quantization (int8 weights).
_FILE_PRECISION = {"fp32": "float32", "fp16": "float16", "int8": "integer_quant",
                   "int8-dynamic": "dynamic_range_quant"}
_TIMEOUT_S = 1800


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def tool_versions() -> dict[str, str]:
    found = {d: _version(d) for d in ("onnx2tf", "tensorflow-cpu", "tensorflow", "tf-keras", "ai-edge-litert")}
    if not found["onnx2tf"] or not (found["tensorflow-cpu"] or found["tensorflow"]):
        raise EdgebenchError("the ONNX → TFLite converter (onnx2tf + TensorFlow) is not installed: "
                             "pip install 'edgebench[tflite-convert]' then run 'make install' (it adds onnx2tf "
                             "with --no-deps)", ExitStatus.RUNTIME_MISSING)
    return {k: v for k, v in found.items() if v}


def convert(source: Path, precision: str, out_dir: Path, calibration: Path | None = None,
            quantization: dict[str, Any] | None = None, **_: Any) -> Artifact:
    versions = tool_versions()
    per_channel = bool((quantization or {}).get("per_channel", True))
    if precision == "int8":
        from edgebench.compress.quantize_onnx import require_calibration

        require_calibration(calibration)
    info = load_onnx_info(source)
    with tempfile.TemporaryDirectory(prefix="edgebench-onnx2tf-") as tmp:
        request = Path(tmp) / "request.json"
        request.write_text(json.dumps({
            "source": str(source.resolve()), "out_dir": str(out_dir.resolve()), "work_dir": tmp,
            "file_precision": _FILE_PRECISION[precision],
            "calibration": str(calibration.resolve()) if calibration else None,
            "inputs": [t.to_dict() for t in info.inputs],
            "quantize": {"int8": precision == "int8", "dynamic": precision == "int8-dynamic",
                         "per_channel": per_channel}}))
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
        proc = subprocess.run([sys.executable, "-m", "edgebench.convert._onnx2tf_worker", str(request)],
                              capture_output=True, text=True, timeout=_TIMEOUT_S, env=env, cwd=tmp)
        reply_path = Path(tmp) / "reply.json"
        if proc.returncode != 0 or not reply_path.exists():
            raise EdgebenchError(f"onnx2tf cannot convert {source.name}: {onnx2tf_message(proc.stdout + proc.stderr)}",
                                 ExitStatus.CONVERSION_FAILED)
        reply = json.loads(reply_path.read_text())
    tflite = out_dir / "model.tflite"
    inputs, outputs = describe(tflite)
    inputs = _with_source(inputs, reply["inputs"], info.inputs)
    outputs = _with_source(outputs, reply["outputs"], info.outputs)
    errors = {o["name"]: o["sample_max_abs_err"] for o in reply["outputs"]}
    return Artifact("tflite", precision, [tflite], tflite, inputs, outputs,
                    meta={"converter": "onnx2tf", "sample_max_abs_err": errors,
                          **({"quantizer": f"onnx2tf {_FILE_PRECISION[precision]} (TFLiteConverter)",
                              "per_channel": per_channel} if precision.startswith("int8") else {}),
                          "tool_versions": {**versions, "onnx2tf": reply["onnx2tf"]}})


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


def onnx2tf_message(text: str) -> str:
    """onnx2tf's long log, shortened to the op that failed and why."""
    clean = re.sub(r"\x1b\[[0-9;]*m", "", text)
    missing_op = re.search(r"No module named 'onnx2tf\.ops\.(\w+)'", clean)
    if missing_op:
        return f"op {missing_op.group(1)} is not supported by onnx2tf: replace it in the model or use another format"
    op_type = re.search(r"onnx_op_type:\s*(\S+)", clean)
    op_name = re.search(r"onnx_op_name:\s*(\S+)", clean)
    errors = [ln.strip() for ln in clean.splitlines()
              if re.search(r"(Error|ERROR|not supported|Unsupported)", ln) and "trace log" not in ln]
    reason = errors[-1][:240] if errors else (clean.strip().splitlines() or ["no output"])[-1][:240]
    if op_type:
        return f"op {op_type.group(1)} ({op_name.group(1) if op_name else '?'}): {reason}"
    return reason


def describe(path: Path) -> tuple[list[TensorIO], list[TensorIO]]:
    """Names, dtypes and shapes of a .tflite's serving signature, read with the LiteRT interpreter."""
    interp = _interpreter(path)
    signatures = interp.get_signature_list()
    if signatures:
        key = "serving_default" if "serving_default" in signatures else next(iter(signatures))
        runner = interp.get_signature_runner(key)
        ins, outs = runner.get_input_details(), runner.get_output_details()
        return ([_tensor(n, d) for n, d in ins.items()], [_tensor(n, d) for n, d in outs.items()])
    return ([_tensor(d["name"], d) for d in interp.get_input_details()],
            [_tensor(d["name"], d) for d in interp.get_output_details()])


def _tensor(name: str, d: dict[str, Any]) -> TensorIO:
    sig = d.get("shape_signature")
    dims = sig if sig is not None and len(sig) else d["shape"]
    shape = tuple(int(x) if int(x) >= 0 else None for x in dims)
    return TensorIO(name, d["dtype"].__name__ if hasattr(d["dtype"], "__name__") else str(d["dtype"]), shape)


def _interpreter(path: Path) -> Any:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tensorflow.lite import Interpreter  # type: ignore[no-redef]
        except ImportError:
            raise EdgebenchError("reading a .tflite needs LiteRT on the host: pip install 'edgebench[tflite]'",
                                 ExitStatus.RUNTIME_MISSING) from None
    try:
        interp = Interpreter(model_path=str(path))
    except (ValueError, RuntimeError) as exc:
        raise EdgebenchError(f"{path} is not a readable .tflite ({str(exc).splitlines()[0][:200]}): pass a "
                             "TFLite flatbuffer or convert again", ExitStatus.INVALID_MODEL) from None
    return interp

