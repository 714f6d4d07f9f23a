"""Runs onnx2tf in its own process (it prints pages, may call sys.exit and loads all of TensorFlow).

A self-contained script: the standard library, numpy and the converter's own packages, never edgebench, so
that any interpreter holding onnx2tf can run it by path (``formats/tflite/convert_env.py`` picks which).
``python _onnx2tf_worker.py request.json`` converts a copy of the ONNX model that it
prepares for onnx2tf (names TensorFlow accepts, every input at the sample's fixed shape) and writes
``reply.json`` beside the request: the tensors of the .tflite and the permutation from each ONNX tensor
to its TFLite counterpart, found by running both models on the host's sample (onnx2tf turns NCHW into
NHWC and may or may not transpose outputs, so shapes alone can be ambiguous). A failure writes
``error.json`` instead: the stage (onnxruntime on the sample, onnx2tf, LiteRT on the result), the
ONNX node and op that failed, and the converter's root-cause line.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import re
import sys
import traceback
from pathlib import Path
from typing import Any

import numpy as np

# TensorFlow's scope names take [A-Za-z0-9_.\/>-]; onnx2tf copies ONNX names into them (Paddle2ONNX
# writes "Softmax@0", PyTorch "onnx::Flatten_0").
_UNSAFE = re.compile(r"[^A-Za-z0-9_./-]")
# The float32 .tflite must reproduce onnxruntime on the sample to this relative L2 error (XNNPACK and
# onnxruntime differ by ~1e-6; a wrong layout guess by percents).
FAITHFUL_REL_ERR = 1e-3
# TensorFlow ops (as LiteRT names them, Flex<op>) that onnx2tf can build from builtin TFLite ops
# instead, and the name replace_to_pseudo_operators takes (lower case in its Python API).
PSEUDO_OPS = {"Erf": "erf", "Asin": "asin", "Acos": "acos", "Atan": "atan", "Abs": "abs", "Neg": "neg",
              "GatherNd": "gathernd", "Pow": "power", "LeakyRelu": "leakyrelu"}


def rel_l2(out: np.ndarray, ref: np.ndarray) -> float:
    """‖out − ref‖ / ‖ref‖ as ``edgebench.data.accuracy.rel_l2`` computes it (tests/test_tflite_convert_env.py
    checks the two agree; this script imports nothing of edgebench)."""
    o, r = np.asarray(out, np.float64), np.asarray(ref, np.float64)
    return float(np.linalg.norm(o - r) / max(float(np.linalg.norm(r)), float(np.finfo(np.float32).tiny)))


def name_key(name: str) -> str:
    """The part of a tensor name every converter keeps: onnx2tf turns "onnx::X_0" into "onnx____X_0"."""
    return re.sub(r"[^0-9a-z]", "", name.lower())


def _graphs(graph: Any) -> Any:
    yield graph
    for node in graph.node:
        for attr in node.attribute:
            for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                yield from _graphs(sub)


def prepare(source: str, target: Path,
            shapes: dict[str, list[int]]) -> tuple[dict[str, str], dict[str, tuple[str, str]]]:
    """Write ``source`` to ``target`` with TF-safe names and the inputs fixed at ``shapes``; return the
    new name of every graph input (by its original name) and each node's original name and op type (by
    its new name). Unnamed nodes get ``<op>_<n>`` so a failure can name them."""
    import onnx

    model = onnx.load(source)
    graphs = list(_graphs(model.graph))
    tensors = {n for g in graphs for n in itertools.chain(
        (v.name for v in [*g.input, *g.output, *g.value_info, *g.initializer]),
        (t for node in g.node for t in [*node.input, *node.output]))} - {""}
    renamed = _renames(tensors)
    node_names = _renames({n.name for g in graphs for n in g.node if n.name})
    taken = {node_names.get(n.name, n.name) for g in graphs for n in g.node}
    nodes: dict[str, tuple[str, str]] = {}
    for g in graphs:
        for node in g.node:
            original = node.name
            node.name = node_names.get(original, original)
            if not node.name:
                node.name = next(c for k in itertools.count() if (c := f"{node.op_type}_{k}") not in taken)
                taken.add(node.name)
            nodes[node.name] = (original or node.name, node.op_type)
            node.input[:] = [renamed.get(t, t) for t in node.input]
            node.output[:] = [renamed.get(t, t) for t in node.output]
        for v in [*g.input, *g.output, *g.value_info, *g.initializer]:
            v.name = renamed.get(v.name, v.name)
    originals = {new: old for old, new in renamed.items()}
    inputs = {}
    constants = {i.name for i in model.graph.initializer}
    for value in (v for v in model.graph.input if v.name not in constants):
        original = originals.get(value.name, value.name)
        inputs[original] = value.name
        for dim, size in zip(value.type.tensor_type.shape.dim, shapes.get(original, [])):
            dim.Clear()
            dim.dim_value = int(size)
    onnx.save(model, target)
    return inputs, nodes


def _renames(names: set[str]) -> dict[str, str]:
    taken, result = set(names), {}
    for name in sorted(names):
        clean = _UNSAFE.sub("_", name)
        if clean == name:
            continue
        candidate, k = clean, 1
        while candidate in taken:
            candidate, k = f"{clean}_{k}", k + 1
        taken.add(candidate)
        result[name] = candidate
    return result


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


def _calibration_files(req: dict[str, Any], inputs: dict[str, str], work: Path, keep: list[str]) -> list[list[Any]]:
    """onnx2tf's int8 calibration input: one .npy per input in TF layout (channel-last for 3- to 5-D,
    unless its shape is kept), mean 0 / std 1 so our data is used as is. Its own fallback would
    download MS-COCO images."""
    params: list[list[Any]] = []
    with np.load(req["calibration"], allow_pickle=False) as npz:
        calib = {k: npz[k] for k in npz.files}
    for original, name in inputs.items():
        arr = calib.get(original, calib.get("inputs") if len(inputs) == 1 else None)
        if arr is None:
            raise SystemExit(f"calibration set has no array for input {original!r}")
        arr = np.asarray(arr, np.float32)
        if 3 <= arr.ndim <= 5 and original not in keep:
            arr = np.transpose(arr, (0, *range(2, arr.ndim), 1))
        path = work / f"calib_{len(params)}.npy"
        np.save(path, np.ascontiguousarray(arr))
        params.append([name, str(path), 0.0, 1.0])
    return params


def _permutation(src: np.ndarray, dst: np.ndarray) -> tuple[list[int] | None | str, float]:
    """The permutation p with src.transpose(p) ≈ dst (None when identical, 'unmatched' when none fits),
    and its max abs error. Identity, then channel-last, win ties."""
    best: list[int] | None | str = "unmatched"
    best_err = np.inf
    candidates = [tuple(range(src.ndim))]
    if src.ndim >= 3:
        candidates.append((0, *range(2, src.ndim), 1))
    candidates += [p for p in itertools.permutations(range(src.ndim)) if p not in candidates]
    for perm in candidates:
        moved = np.transpose(src, perm)
        if moved.shape != dst.shape:
            continue
        err = float(np.max(np.abs(moved.astype(np.float64) - dst))) if moved.size else 0.0
        if err < best_err:
            best, best_err = list(perm), err
    if best == list(range(src.ndim)):
        best = None
    return best, float(best_err)


def _input_permutation(src_shape: tuple[int, ...], dst_shape: tuple[int, ...]) -> list[int] | None | str:
    if src_shape == dst_shape:
        return None
    channel_last = (0, *range(2, len(src_shape)), 1)
    fits = [p for p in itertools.permutations(range(len(src_shape)))
            if tuple(src_shape[i] for i in p) == dst_shape]
    return list(channel_last) if channel_last in fits else (list(fits[0]) if fits else "unmatched")


def _signature(interp: Any) -> tuple[Any, list[str], dict[str, Any]]:
    """A callable over named inputs, the input names and their details: the serving signature when the
    file has one, else the interpreter's own tensors."""
    signatures = interp.get_signature_list()
    if signatures:
        key = "serving_default" if "serving_default" in signatures else next(iter(signatures))
        runner = interp.get_signature_runner(key)
        details = runner.get_input_details()
        return runner, list(details), details
    details = {d["name"]: d for d in interp.get_input_details()}

    def run(**feed: np.ndarray) -> dict[str, np.ndarray]:
        for name, d in details.items():
            interp.resize_tensor_input(d["index"], feed[name].shape)
        interp.allocate_tensors()
        for name, d in details.items():
            interp.set_tensor(d["index"], feed[name])
        interp.invoke()
        return {d["name"]: interp.get_tensor(d["index"]) for d in interp.get_output_details()}
    return run, list(details), details


def _match(name: str, candidates: list[str]) -> list[str]:
    """ONNX names ``name`` (a TFLite tensor) can stand for: itself, else the same name key, else all."""
    if name in candidates:
        return [name]
    same = [c for c in candidates if name_key(c) == name_key(name)]
    return same or candidates


def reference(source: str, samples: dict[str, np.ndarray]) -> dict[str, np.ndarray] | str:
    """The source model's outputs on the sample (onnxruntime), or why onnxruntime cannot load the model
    (an op it lacks: onnx2tf then decides whether the model converts at all)."""
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(source, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's own error types
        return str(exc) or type(exc).__name__  # whole: the host makes it one line, keeping the cause
    try:
        return dict(zip([o.name for o in session.get_outputs()], session.run(None, samples)))
    except Exception as exc:
        raise ConversionError({"stage": "onnxruntime", "reason": str(exc) or type(exc).__name__}) from None


def verify(target: Path, samples: dict[str, np.ndarray], onnx_out: dict[str, np.ndarray]) -> dict[str, Any]:
    """Run the .tflite on the sample; map every TFLite tensor to the ONNX tensor it matches, with the
    error on the sample (max abs, and relative L2: ‖tflite − onnx‖ / ‖onnx‖)."""
    from ai_edge_litert.interpreter import Interpreter

    try:
        interp = Interpreter(model_path=str(target))
        runner, names, details = _signature(interp)
        feed, inputs, free = {}, [], list(samples)
        for name in names:
            shape = tuple(int(d) for d in details[name]["shape"])
            options = [s for s in _match(name, free) if _input_permutation(samples[s].shape, shape) != "unmatched"]
            if not options:
                raise RuntimeError(f"TFLite input {name!r} {list(shape)} matches no ONNX input")
            src_name = options[0]
            free.remove(src_name)
            perm = _input_permutation(samples[src_name].shape, shape)
            src = samples[src_name]
            moved = np.transpose(src, perm) if isinstance(perm, list) and perm else src
            feed[name] = np.array(moved, dtype=details[name]["dtype"])
            inputs.append({"name": name, "source_name": src_name, "permutation": perm})
        tfl_out = runner(**feed)
    except (RuntimeError, ValueError) as exc:
        flex = sorted(set(re.findall(r"\(Flex(\w+)\)", str(exc))))
        reason = (f"it holds TensorFlow op {', '.join(flex)}, which LiteRT runs only with the Flex (Select TF "
                  "ops) delegate" if flex else str(exc) or type(exc).__name__)
        raise ConversionError({"stage": "litert", "reason": reason, "flex": flex}) from None
    outputs, free = [], list(onnx_out)
    for name, value in tfl_out.items():
        value = np.asarray(value)
        fits = [(c, *_permutation(onnx_out[c], value)) for c in _match(name, free)]
        fits = [f for f in fits if f[1] != "unmatched"]
        if not fits:
            outputs.append({"name": name, "source_name": name, "permutation": "unmatched",
                            "sample_max_abs_err": None, "sample_rel_err": None})
            continue
        src_name, perm, err = min(fits, key=lambda f: f[2])
        free.remove(src_name)
        ref = (np.transpose(onnx_out[src_name], perm) if isinstance(perm, list) and perm
               else onnx_out[src_name]).astype(np.float64)
        outputs.append({"name": name, "source_name": src_name, "permutation": perm, "sample_max_abs_err": err,
                        "sample_rel_err": rel_l2(value, ref)})
    return {"inputs": inputs, "outputs": outputs}


def _worst(mapping: dict[str, Any]) -> tuple[str, float]:
    """The output furthest from onnxruntime (relative error; an unmatched output counts as infinite)."""
    errors = [(o["source_name"], np.inf if o["sample_rel_err"] is None else o["sample_rel_err"])
              for o in mapping["outputs"]]
    return max(errors, key=lambda e: e[1]) if errors else ("", 0.0)


def root_cause(exc: BaseException, log: str, nodes: dict[str, tuple[str, str]]) -> dict[str, Any]:
    """The failing ONNX node (its original name and op) and the converter's root-cause line."""
    clean = re.sub(r"\x1b\[[0-9;]*m", "", log)
    found = re.search(r"onnx_op_name:\s*(\S+)", clean)
    node = re.sub(r"^wa/", "/", found.group(1)) if found else None
    original, op_type = nodes.get(node or "", (node, None))
    missing = re.search(r"No module named 'onnx2tf\.ops\.(\w+)'", f"{exc}\n{clean}")
    if missing:
        return {"stage": "onnx2tf", "op_type": missing.group(1), "node": original, "unsupported": True}
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip() and not re.match(
        r"(Exception encountered when calling layer|Call arguments received|•)", ln.strip())]
    reason = lines[0] if lines else type(exc).__name__
    reason = re.sub(r" for '\{\{node [^']*\}\}[^']*'", "", reason).rstrip(" .:")
    handlers = [Path(f.filename).stem for f in traceback.extract_tb(exc.__traceback__)
                if Path(f.filename).parent.name == "ops" and Path(f.filename).parent.parent.name == "onnx2tf"]
    inner = f" in onnx2tf's {handlers[-1]} converter" if handlers and handlers[-1] != op_type else ""
    return {"stage": "onnx2tf", "op_type": op_type, "node": original,
            "reason": f"{type(exc).__name__}{inner}: {reason}"}


def convert(req: dict[str, Any], folder: Path, options: dict[str, list[str]]) -> dict[str, str]:
    """onnx2tf on a prepared copy into ``folder``. ``options["keep"]``: ONNX inputs whose shape the .tflite
    keeps as is (keep_shape_absolutely_input_names) instead of making them channel-last;
    ``options["pseudo"]``: ONNX ops onnx2tf builds from builtin TFLite ops (replace_to_pseudo_operators).
    Returns the prepared name of each ONNX input."""
    import onnx2tf

    work = Path(req["work_dir"])
    prepared = work / "model.onnx"  # onnx2tf rewrites its input in place (onnxsim): always a fresh copy
    inputs, nodes = prepare(req["source"], prepared, req["fixed_shapes"])
    quant = req.get("quantize") or {}
    keep = options.get("keep", [])
    extra: dict[str, Any] = {"quant_type": "per-channel" if quant.get("per_channel", True) else "per-tensor"}
    if keep:
        extra.update(keep_shape_absolutely_input_names=[inputs[name] for name in keep])
    if options.get("pseudo"):
        extra.update(replace_to_pseudo_operators=options["pseudo"])
    if quant.get("int8"):
        extra.update(output_integer_quantized_tflite=True,
                     custom_input_op_name_np_data_path=_calibration_files(req, inputs, work, keep))
    elif quant.get("dynamic"):
        extra.update(output_dynamic_range_quantized_tflite=True)
    log = io.StringIO()
    try:
        with contextlib.redirect_stdout(log):
            onnx2tf.convert(input_onnx_file_path=str(prepared), output_folder_path=str(folder), non_verbose=True,
                            **extra)
    except BaseException as exc:  # onnx2tf re-raises what TensorFlow raised, or calls sys.exit
        raise ConversionError(root_cause(exc, log.getvalue(), nodes)) from None
    return inputs


def faithful_conversion(req: dict[str, Any], samples: dict[str, np.ndarray],
                        onnx_out: dict[str, np.ndarray]) -> tuple[Path, dict[str, Any], dict[str, list[str]]]:
    """Convert, and check onnx2tf's float32 .tflite against onnxruntime on the sample; convert again,
    once per remedy, where onnx2tf's own options fix what the check found:

    - a TensorFlow (Flex) op LiteRT's builtin kernels lack, which onnx2tf can build from builtin ops:
      replace_to_pseudo_operators (Erf, in MiniLM's GELU, from the start);
    - outputs that disagree after onnx2tf made a 3- to 5-D input channel-last (openWakeWord's [1, 16, 96]
      feature window feeds a Flatten): keep_shape_absolutely_input_names for those inputs.

    Returns the saved_model folder, the float32 file's tensor mapping and the options used."""
    import onnx

    work = Path(req["work_dir"])
    ops = {n.op_type for g in _graphs(onnx.load(req["source"], load_external_data=False).graph) for n in g.node}
    # TFLite has no builtin Erf, so onnx2tf's Erf is always a Flex op: ask for the pseudo one at once
    options: dict[str, list[str]] = {"pseudo": ["erf"]} if "Erf" in ops else {}
    for attempt in itertools.count():
        folder = work / f"saved_model_{attempt}"
        convert(req, folder, options)
        try:
            mapping = verify(folder / "model_float32.tflite", samples, onnx_out)
        except ConversionError as exc:
            pseudo = {PSEUDO_OPS[op] for op in exc.detail.get("flex", []) if op in PSEUDO_OPS}
            if pseudo <= set(options.get("pseudo", [])):
                raise
            options["pseudo"] = sorted(pseudo | set(options.get("pseudo", [])))
            continue
        name, err = _worst(mapping)
        moved = [m["source_name"] for m in mapping["inputs"] if m["permutation"]]
        if err <= FAITHFUL_REL_ERR or options.get("keep") or not moved:
            break
        options["keep"] = moved
    if err > FAITHFUL_REL_ERR:
        raise ConversionError({"stage": "onnx2tf", "unfaithful": True, "reason": (
            f"its float32 result disagrees with onnxruntime on output {name!r} (relative error "
            f"{'no permutation fits' if err == np.inf else f'{err:.2g}'} on the conversion sample)")})
    return folder, mapping, options


class ConversionError(Exception):
    def __init__(self, detail: dict[str, Any]) -> None:
        super().__init__(detail.get("reason", ""))
        self.detail = detail


def main(request_path: str) -> int:
    req = json.loads(Path(request_path).read_text())
    reply_dir = Path(request_path).parent
    with np.load(req["sample"], allow_pickle=False) as npz:
        samples = {name: npz[f"arr_{i}"] for i, name in enumerate(req["sample_names"])}
    _patch_download(samples)
    try:
        onnx_out = reference(req["source"], samples)
        if isinstance(onnx_out, str):
            convert(req, Path(req["work_dir"]) / "saved_model", {})  # onnx2tf's verdict on the model first
            raise ConversionError({"stage": "onnxruntime-load", "reason": onnx_out})
        folder, mapping, options = faithful_conversion(req, samples, onnx_out)
        produced = folder / f"model_{req['file_precision']}.tflite"
        if not produced.is_file():
            raise ConversionError({"stage": "onnx2tf", "reason": f"onnx2tf wrote no {req['file_precision']} "
                                   "file (its quantization step failed)"})
        target = Path(req["out_dir"]) / "model.tflite"
        target.write_bytes(produced.read_bytes())
        if produced.name != "model_float32.tflite":
            mapping = verify(target, samples, onnx_out)
    except ConversionError as exc:
        (reply_dir / "error.json").write_text(json.dumps(exc.detail))
        return 3
    import onnx2tf

    (reply_dir / "reply.json").write_text(json.dumps({"tflite": str(target), **mapping, "onnx2tf": onnx2tf.__version__,
                                                      "kept_input_shapes": options.get("keep", []),
                                                      "pseudo_ops": options.get("pseudo", [])}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
