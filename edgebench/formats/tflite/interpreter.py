"""A .tflite opened on the host with the LiteRT interpreter (or TensorFlow's), and its serving signature's
tensors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.formats.tensors import TensorIO
from edgebench.formats.tflite import TfliteFormat
from edgebench.text import one_line


def describe(path: Path) -> tuple[list[TensorIO], list[TensorIO]]:
    """Names, dtypes and shapes of a .tflite's serving signature, read with the LiteRT interpreter."""
    interp = interpreter(path)
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


def interpreter(path: Path) -> Any:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tensorflow.lite import Interpreter
        except ImportError:
            raise EdgebenchError(f"reading a .tflite needs LiteRT on the host: {TfliteFormat.install_hint('tflite')}",
                                 ExitStatus.RUNTIME_MISSING) from None
    try:
        interp = Interpreter(model_path=str(path))
    except (ValueError, RuntimeError) as exc:
        raise EdgebenchError(f"{path} is not a readable .tflite ({one_line(str(exc), 400)}): pass a "
                             "TFLite flatbuffer or convert again", ExitStatus.INVALID_MODEL) from None
    return interp

