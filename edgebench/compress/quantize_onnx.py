"""Format-native ONNX quantization with ``onnxruntime.quantization``, and fp16 conversion.

``int8`` is static QDQ quantization calibrated on the user's calibration set: int8 weights (symmetric, so
zero stays exactly zero and pruning survives) and int8 activations with ranges from MinMax, Percentile or
Entropy calibration. Weights are per-channel except after clustering, where one per-tensor scale maps
each shared value to one integer and keeps the layer at ≤ K values (per-channel scales would split each
shared value into one per channel). ``int8-dynamic`` quantizes MatMul/Gemm weights and computes
activation ranges at run time: no calibration set, less speed-up. ``fp16`` halves every float weight and
keeps the model's inputs and outputs float32 (keep_io_types), so the same datasets and runners feed it.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from edgebench.compress.graph import save_model, topological_sort
from edgebench.data import load_dataset, plan_inputs
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.source import load_onnx_info

CALIBRATION_BATCH = 32


def _ort_quantization() -> Any:
    try:
        import onnxruntime.quantization as q
    except ImportError:
        raise EdgebenchError("ONNX quantization needs onnxruntime: pip install 'edgebench[onnx]'",
                             ExitStatus.RUNTIME_MISSING) from None
    return q


def calibration_batches(model: Path, calibration: Path) -> Iterator[dict[str, np.ndarray]]:
    """The calibration set, checked against the model's inputs (naming a misfit input), in feeds."""
    info = load_onnx_info(model)
    plan = plan_inputs(info.inputs)
    data = load_dataset(calibration, plan, what="calibration set")
    if not plan.batched:  # every input is one whole sample: feed them one by one
        for i in range(len(data)):
            yield {name: arr[i] for name, arr in data.arrays.items()}
        return
    dynamic = all(not isinstance(spec.shape[0], int) for spec in info.inputs if spec.name in plan.batched)
    # equal feeds (the histogram calibrators stack them): the largest divisor of the sample count up to
    # CALIBRATION_BATCH for a dynamic batch, else exactly the model's fixed batch
    step = max(d for d in range(1, min(CALIBRATION_BATCH, len(data)) + 1) if len(data) % d == 0) \
        if dynamic else plan.batch
    stop = len(data) - len(data) % step
    for start in range(0, stop, step):
        yield {name: (arr[start:start + step] if name in plan.batched else arr[(start // step) % len(arr)])
               for name, arr in data.arrays.items()}


def require_calibration(calibration: Path | None) -> Path:
    if calibration is None:
        raise EdgebenchError("int8 needs a calibration set to fix activation ranges: pass --calibration NPZ "
                             "(a few hundred real inputs), or use int8-dynamic", ExitStatus.USAGE)
    return Path(calibration)


def _reader(batches: list[dict[str, np.ndarray]]) -> Any:
    q = _ort_quantization()

    class Reader(q.CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(batches)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._it, None)

        def rewind(self) -> None:
            self._it = iter(batches)

    return Reader()


def _atomic(out: Path, write: Any) -> Path:
    """Run ``write(tmp_path)`` then rename over ``out``: a failure leaves no partial model behind."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".onnx", dir=out.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return out


def quantize_int8(model: Path, out: Path, calibration: Path | None, method: str = "minmax",
                  per_channel: bool = True) -> Path:
    """Static QDQ int8 calibrated on ``calibration`` (an .npz fitting the model's inputs)."""
    calibration = require_calibration(calibration)
    q = _ort_quantization()
    batches = list(calibration_batches(model, calibration))
    methods = {"minmax": q.CalibrationMethod.MinMax, "percentile": q.CalibrationMethod.Percentile,
               "entropy": q.CalibrationMethod.Entropy}

    with _quiet():
        return _atomic(out, lambda tmp: q.quantize_static(
            str(model), str(tmp), _reader(batches), quant_format=q.QuantFormat.QDQ, per_channel=per_channel,
            activation_type=q.QuantType.QInt8, weight_type=q.QuantType.QInt8, calibrate_method=methods[method],
            extra_options={"WeightSymmetric": True, "ActivationSymmetric": False}))


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """onnxruntime.quantization logs advice on the root logger and its histogram calibrators print() to
    stdout; keep the CLI's output (and JSON on stdout) to edgebench's own lines."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        root.setLevel(level)


def quantize_dynamic_int8(model: Path, out: Path) -> Path:
    """Dynamic int8 of MatMul/Gemm weights; Conv is left float because onnxruntime's CPU ConvInteger
    takes only uint8 weights, whose non-zero zero point would break the zeros of a pruned layer."""
    q = _ort_quantization()
    with _quiet():
        return _atomic(out, lambda tmp: q.quantize_dynamic(str(model), str(tmp), op_types_to_quantize=["MatMul", "Gemm"],
                                                           weight_type=q.QuantType.QInt8,
                                                           extra_options={"WeightSymmetric": True}))


def convert_fp16(model: Path, out: Path) -> Path:
    """Float16 weights and compute, float32 inputs and outputs."""
    import onnx

    try:
        from onnxruntime.transformers.float16 import convert_float_to_float16
    except ImportError:
        raise EdgebenchError("fp16 ONNX conversion needs onnxruntime: pip install 'edgebench[onnx]'",
                             ExitStatus.RUNTIME_MISSING) from None
    half = convert_float_to_float16(onnx.load(str(model)), keep_io_types=True)
    topological_sort(half)
    return save_model(half, out)
