"""Loading a source model into the hub form (ONNX) and reading what the rest of edgebench needs."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Union

from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.text import one_line

Dim = Union[int, str, None]  # a fixed size, a symbolic name, or unknown


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: str  # numpy dtype name, e.g. "float32", "int64"
    shape: tuple[Dim, ...]

    @property
    def dynamic_axes(self) -> list[int]:
        return [i for i, d in enumerate(self.shape) if not isinstance(d, int)]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "shape": list(self.shape)}


@dataclass(frozen=True)
class ModelInfo:
    path: Path
    sha256: str
    size_bytes: int
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    opset: int | None = None


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def require_file(path: str | Path, what: str = "model") -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise EdgebenchError(f"{what} file not found: {p} — check the path", ExitStatus.NOT_FOUND)
    if not p.is_file():
        raise EdgebenchError(f"{what} path is not a file: {p} — pass the file itself", ExitStatus.NOT_FOUND)
    return p


def as_dim(value: Any) -> Dim:
    """One dimension as edgebench holds it: a size > 0, a symbolic name, or None (unknown). Exporters write
    a dynamic size as -1 (Paddle2ONNX) or 0 too; those are dynamic, never sizes."""
    if isinstance(value, str):
        return None if value in ("", "?") else value
    if value is None or int(value) <= 0:
        return None
    return int(value)


def _tensor_spec(value_info: Any) -> TensorSpec:
    import onnx

    ttype = value_info.type.tensor_type
    dtype = onnx.helper.tensor_dtype_to_np_dtype(ttype.elem_type).name if ttype.elem_type else "float32"
    dims = tuple(as_dim(d.dim_value if d.HasField("dim_value") else d.dim_param) for d in ttype.shape.dim)
    return TensorSpec(value_info.name, dtype, dims)


def load_onnx_info(path: str | Path) -> ModelInfo:
    """Parse and check an ONNX file; errors say what is wrong with the file and what to do."""
    import onnx
    from google.protobuf.message import DecodeError

    p = require_file(path)
    try:
        model = onnx.load(str(p), load_external_data=False)
    except (DecodeError, ValueError, RuntimeError, OSError) as exc:
        raise EdgebenchError(f"{p} is not a readable ONNX model ({type(exc).__name__}: "
                             f"{one_line(str(exc), 300) or 'truncated or not ONNX'}): "
                             "re-export the model or pass the right file", ExitStatus.INVALID_MODEL) from None
    if model.ir_version <= 0 or len(model.graph.node) == 0:
        raise EdgebenchError(f"{p} is not an ONNX model (no graph inside): pass an .onnx file exported "
                             "from your framework", ExitStatus.INVALID_MODEL)
    try:
        onnx.checker.check_model(str(p))
    except (onnx.checker.ValidationError, ValueError, OSError) as exc:
        why = one_line(str(exc), 600) or type(exc).__name__
        raise EdgebenchError(f"{p} fails the ONNX checker ({why}): re-export the model",
                             ExitStatus.INVALID_MODEL) from None
    initializers = {i.name for i in model.graph.initializer}
    inputs = tuple(_tensor_spec(v) for v in model.graph.input if v.name not in initializers)
    outputs = tuple(_tensor_spec(v) for v in model.graph.output)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    return ModelInfo(p, sha256_file(p), p.stat().st_size, inputs, outputs, opset)
