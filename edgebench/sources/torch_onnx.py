"""PyTorch to ONNX, shared by the PyTorch sources and the Python API's ``nn.Module``: torch.onnx's two exporters
run quietly, and an export that fails is named by the op it could not take.

torch.export programs (``.pt2``, and a module exported here) go through the dynamo exporter, which keeps the
program's input names and dynamic dimensions; TorchScript goes through the TorchScript exporter, the only one
that takes a ``ScriptModule``. torch is imported by these functions only.
"""

from __future__ import annotations

import logging
import re
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

from edgebench.errors import EdgebenchError
from edgebench.sources.base import export_failed

if TYPE_CHECKING:
    import torch

DYNAMO_OPSET = 18  # the dynamo exporter's lowest
TORCHSCRIPT_OPSET = 17
DYNAMO = "torch.onnx (dynamo exporter)"
TORCHSCRIPT = "torch.onnx (TorchScript exporter)"
# Where torch names the op it has no ONNX function for: the dynamo exporter's DispatchError
# (``<OpOverload(op='aten._linalg_eigh', overload='default')>``), the TorchScript exporter's
# UnsupportedOperatorError (``Exporting the operator 'aten::linalg_eigvalsh' to ONNX opset …``).
_OP_PATTERNS = (re.compile(r"OpOverload\(op='([\w.:]+)'"), re.compile(r"operator '([\w.:]+)'"),
                re.compile(r"\b((?:aten|prim|quantized)::\w+)"))


@contextmanager
def quiet() -> Iterator[None]:
    """torch.onnx's warnings and log lines (deprecations, optional torchvision ops) kept off the terminal."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def failed_op(exc: BaseException) -> str | None:
    """The op an export failed on, as torch's exception (or one it chains) names it; None when none is named."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        for pattern in _OP_PATTERNS:
            found = pattern.search(str(current))
            if found:
                return found.group(1)
        current = current.__cause__ or current.__context__
    return None


def export_program(program: Any, out: Path, source: Path) -> None:
    """A ``torch.export.ExportedProgram`` as ONNX (one file, no external data) with the dynamo exporter: its
    input names and dynamic dimensions are the program's."""
    import torch

    try:
        with quiet():
            torch.onnx.export(program, f=str(out), dynamo=True, external_data=False, opset_version=DYNAMO_OPSET,
                              verbose=False)
    except EdgebenchError:
        raise
    except Exception as exc:  # torch.onnx's ConversionError, and whatever a model's own code raises
        raise export_failed(DYNAMO, source, failed_op(exc), exc) from None


def export_script(module: Any, example: Sequence["torch.Tensor"], names: Sequence[str], out: Path,
                  source: Path) -> None:
    """A ``ScriptModule`` as ONNX with the TorchScript exporter: inputs named ``names``, the first axis of every
    input and output dynamic (``batch``); ``example`` gives the other sizes."""
    import torch

    try:
        with quiet(), torch.no_grad():
            results = module(*example)
            flat = _flatten(results)
            outputs = ["output"] if len(flat) == 1 else [f"output_{i}" for i in range(len(flat))]
            dynamic = {name: {0: "batch"} for name, t in [*zip(names, example), *zip(outputs, flat)] if t.dim() > 0}
            torch.onnx.export(module, tuple(example), str(out), dynamo=False, opset_version=TORCHSCRIPT_OPSET,
                              input_names=list(names), output_names=outputs, dynamic_axes=dynamic)
    except EdgebenchError:
        raise
    except Exception as exc:
        raise export_failed(TORCHSCRIPT, source, failed_op(exc), exc) from None


def _flatten(value: Any) -> list["torch.Tensor"]:
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _flatten(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _flatten(v)]
    return [value]


def export_module(module: "torch.nn.Module", example: Sequence["torch.Tensor"], out: Path, program_out: Path) -> str:
    """An ``nn.Module`` (Python API) through ``torch.export`` then the dynamo exporter; the inputs are named after
    ``forward``'s parameters. The first axis of each input is made dynamic where the module allows it
    (``Dim.AUTO``, traced at batch 2 when the example has 1: torch.export fixes sizes 0 and 1); where it does
    not, the export keeps the example's sizes. The program is saved to ``program_out`` too (the direct OpenVINO
    route converts it), unless torch cannot serialize it. Returns the route taken."""
    import torch

    example = tuple(example)
    where = Path(f"<{type(module).__name__}>")
    auto = tuple({0: torch.export.Dim.AUTO} if t.dim() > 0 else None for t in example)
    doubled = tuple(torch.cat([t, t]) if t.dim() > 0 and t.shape[0] == 1 else t for t in example)
    module = module.eval()
    try:
        with quiet():
            try:
                program = torch.export.export(module, doubled, dynamic_shapes=auto)
                batch = "first axes dynamic where the module allows"
            except Exception:  # a module whose code fixes the batch: exported at the example's sizes
                program = torch.export.export(module, example)
                batch = "sizes fixed at the example's"
    except Exception as exc:
        raise export_failed("torch.export", where, failed_op(exc), exc) from None
    export_program(program, out, where)
    try:
        with quiet():
            torch.export.save(program, str(program_out))
    except Exception:  # a program torch cannot serialize: its formats go through the hub ONNX
        program_out.unlink(missing_ok=True)
    return f"nn.Module → torch.export ({batch}) → {DYNAMO}, opset {DYNAMO_OPSET}"
