"""Runs onnx2tf in its own process (it prints pages, may call sys.exit and loads all of TensorFlow).

``python -m edgebench.convert._onnx2tf_worker request.json`` writes ``reply.json`` beside the request:
the chosen .tflite, its tensors, and the permutation from each ONNX tensor to its TFLite counterpart,
found by running both models on the same calibration sample (onnx2tf turns NCHW into NHWC and may or
may not transpose outputs, so shapes alone can be ambiguous).
"""

from __future__ import annotations

import itertools
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np


def _sample_inputs(req: dict[str, Any]) -> dict[str, np.ndarray]:
    """One batch-1 sample per input: from the calibration .npz when given, else seeded random in [0, 1)."""
    calib: dict[str, np.ndarray] = {}
    if req.get("calibration"):
        with np.load(req["calibration"], allow_pickle=False) as npz:
            calib = {k: npz[k] for k in npz.files}
    rng = np.random.default_rng(0)
    samples = {}
    for spec in req["inputs"]:
        arr = calib.get(spec["name"])
        if arr is None and len(req["inputs"]) == 1:
            arr = calib.get("inputs")
        if arr is None:
            shape = [d if isinstance(d, int) and d > 0 else 1 for d in spec["shape"]]
            dtype = np.dtype(spec["dtype"])
            arr = (rng.random(shape) if dtype.kind == "f" else rng.integers(0, 2, shape)).astype(dtype)
        samples[spec["name"]] = np.ascontiguousarray(arr[:1])
    return samples


def _patch_download(samples: dict[str, np.ndarray]) -> None:
    """onnx2tf fetches a sample image for 3-channel 4-D inputs, even for fp32: hand it ours instead."""
    import onnx2tf.onnx2tf as main_mod
    import onnx2tf.utils.common_functions as common

    first = next(iter(samples.values()))
    local = np.transpose(first, (0, 2, 3, 1)) if first.ndim == 4 and first.shape[1] == 3 else first

    def own_data() -> np.ndarray:
        return np.repeat(local.astype(np.float32), 20, axis=0)

    main_mod.download_test_image_data = own_data
    common.download_test_image_data = own_data


def _calibration_files(req: dict[str, Any], work: Path) -> list[list[Any]]:
    """onnx2tf's int8 calibration input: one .npy per input in TF layout (NHWC for 4-D), mean 0 / std 1
    so our data is used as is. Its own fallback would download MS-COCO images."""
    params = []
    with np.load(req["calibration"], allow_pickle=False) as npz:
        calib = {k: npz[k] for k in npz.files}
    for spec in req["inputs"]:
        arr = calib.get(spec["name"], calib.get("inputs") if len(req["inputs"]) == 1 else None)
        if arr is None:
            raise SystemExit(f"calibration set has no array for input {spec['name']!r}")
        arr = np.asarray(arr, np.float32)
        if arr.ndim == 4:
            arr = np.transpose(arr, (0, 2, 3, 1))
        path = work / f"calib_{len(params)}.npy"
        np.save(path, np.ascontiguousarray(arr))
        params.append([spec["name"], str(path), 0.0, 1.0])
    return params


def _dynamic_range(saved_model: Path, target: Path, per_channel: bool) -> None:
    """Dynamic-range int8 (int8 weights, activations quantized at run time) from the saved_model, so the
    file keeps its serving signature (onnx2tf's own dynamic-range file, made from a concrete function,
    has none)."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter._experimental_disable_per_channel = not per_channel
    target.write_bytes(converter.convert())


def _permutation(src: np.ndarray, dst: np.ndarray) -> list[int] | None | str:
    """The permutation p with src.transpose(p) ≈ dst; None when identical; 'unmatched' when none fits."""
    best, best_err = "unmatched", np.inf
    candidates = [tuple(range(src.ndim))]
    if src.ndim >= 3:
        candidates.append((0, *range(2, src.ndim), 1))
        candidates += [p for p in itertools.permutations(range(src.ndim)) if p not in candidates]
    for perm in candidates:
        moved = np.transpose(src, perm)
        if moved.shape != dst.shape:
            continue
        err = float(np.max(np.abs(moved - dst))) if moved.size else 0.0
        if err < best_err:
            best, best_err = list(perm), err
    if best == "unmatched":
        return best
    return None if best == list(range(src.ndim)) else best


def main(request_path: str) -> int:
    req = json.loads(Path(request_path).read_text())
    samples = _sample_inputs(req)
    _patch_download(samples)
    import onnx2tf
    import onnxruntime as ort
    from ai_edge_litert.interpreter import Interpreter

    work = Path(req["work_dir"])
    scratch = work / Path(req["source"]).name  # onnx2tf rewrites its input in place (onnxsim): give it a copy
    shutil.copyfile(req["source"], scratch)
    quant = req.get("quantize") or {}
    extra: dict[str, Any] = {}
    if quant.get("int8"):
        extra = {"output_integer_quantized_tflite": True, "custom_input_op_name_np_data_path":
                 _calibration_files(req, work), "quant_type": "per-channel" if quant.get("per_channel", True)
                 else "per-tensor"}
    elif quant.get("dynamic"):
        extra = {"output_signaturedefs": True}  # the saved_model our dynamic-range conversion starts from
    onnx2tf.convert(input_onnx_file_path=str(scratch), output_folder_path=str(work / "saved_model"),
                    copy_onnx_input_output_names_to_tflite=True, non_verbose=True, **extra)
    produced = work / "saved_model" / f"{Path(req['source']).stem}_{req['file_precision']}.tflite"
    if quant.get("dynamic"):
        _dynamic_range(work / "saved_model", produced, quant.get("per_channel", True))
    if not produced.is_file():
        print(f"ERROR: onnx2tf wrote no {produced.name} (its {req['file_precision']} quantization failed)")
        return 3
    target = Path(req["out_dir"]) / "model.tflite"
    shutil.copyfile(produced, target)

    session = ort.InferenceSession(req["source"], providers=["CPUExecutionProvider"])
    onnx_out = dict(zip([o.name for o in session.get_outputs()], session.run(None, samples)))
    interp = Interpreter(model_path=str(target))
    runner = interp.get_signature_runner()
    sig = interp.get_signature_list()["serving_default"]
    details = runner.get_input_details()
    feed, inputs = {}, []
    for name in sig["inputs"]:
        src_name = name if name in samples else next(iter(samples)) if len(samples) == 1 else name
        src = samples[src_name]
        shape = tuple(int(d) for d in details[name]["shape"])
        perm = None if src.shape == shape else [0, *range(2, src.ndim), 1]
        feed[name] = np.ascontiguousarray(np.transpose(src, perm) if perm else src)
        inputs.append({"name": name, "source_name": src_name, "permutation": perm})
    tfl_out = runner(**feed)
    outputs = []
    for name, value in tfl_out.items():
        src_name = name if name in onnx_out else (next(iter(onnx_out)) if len(onnx_out) == 1 else name)
        perm = _permutation(onnx_out[src_name], np.asarray(value)) if src_name in onnx_out else "unmatched"
        err = None
        if perm != "unmatched":
            moved = np.transpose(onnx_out[src_name], perm) if perm else onnx_out[src_name]
            err = float(np.max(np.abs(moved - value))) if moved.size else 0.0
        outputs.append({"name": name, "source_name": src_name, "permutation": perm, "sample_max_abs_err": err})
    reply = {"tflite": str(target), "inputs": inputs, "outputs": outputs, "onnx2tf": onnx2tf.__version__}
    (Path(request_path).parent / "reply.json").write_text(json.dumps(reply))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
