"""TorchScript modules (``.pt``/``.pth``, written by ``torch.jit.trace(...).save`` or ``torch.jit.script(...).save``)
→ ONNX with torch.onnx's TorchScript exporter.

That exporter needs example inputs. A traced module carries the ones it was traced with (``traced_inputs.pkl``
in the archive, read here for their dtypes and sizes only — nothing is unpickled but tensor headers); a scripted
one carries none, so its sizes come from ``--shape NAME:1x3x224x224`` (float32). Input names are the graph's
(``x.1`` → ``x``); the first axis of every input and output is made dynamic (``batch``).
"""

from __future__ import annotations

import pickle
import re
import zipfile
from pathlib import Path
from typing import Any, Mapping

from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.sources.base import Source, what_it_is, zip_names
from edgebench.sources.torch_export import PACKAGES, is_program, is_torchscript
from edgebench.sources.torch_onnx import TORCHSCRIPT, TORCHSCRIPT_OPSET, export_script, quiet
from edgebench.text import one_line

# torch's typed storages, as a traced input's pickle names them → numpy dtype names
_STORAGE_DTYPES = {"FloatStorage": "float32", "DoubleStorage": "float64", "HalfStorage": "float16",
                   "BFloat16Storage": "bfloat16", "LongStorage": "int64", "IntStorage": "int32",
                   "ShortStorage": "int16", "CharStorage": "int8", "ByteStorage": "uint8", "BoolStorage": "bool"}
TensorHeader = tuple[str, tuple[int, ...]]  # dtype, sizes


class TorchScriptSource(Source):
    name = "torchscript"
    label = "TorchScript module"
    extra = "pytorch"
    exporter = TORCHSCRIPT
    suffixes = (".pt", ".pth")
    takes_shapes = True
    save_hint = ("save one with torch.jit.trace(model, example_inputs).save('model.pt'), or torch.export.save to a "
                 ".pt2")

    def sniff(self, path: Path) -> str | None:
        names = zip_names(path)
        if names is None:
            return what_it_is(path)
        if is_torchscript(names):
            return None
        if is_program(names):
            return "a torch.export program: name it .pt2"
        if any(n.endswith("data.pkl") for n in names):
            return "a torch.save pickle (a state_dict or a pickled module), which holds no graph"
        return "a zip of another kind"

    def packages(self, path: Path) -> dict[str, tuple[str, ...]]:
        return {"torch": PACKAGES["torch"]}

    def export_onnx(self, path: Path, out: Path, shapes: Mapping[str, tuple[int, ...]]) -> str:
        self.require("torch")
        import torch

        try:
            with quiet():  # torch.jit.load's deprecation notice
                module = torch.jit.load(str(path), map_location="cpu")
        except Exception as exc:
            raise EdgebenchError(f"torch.jit.load cannot read {path} ({type(exc).__name__}: {one_line(str(exc), 200)})"
                                 f": {self.save_hint}", ExitStatus.INVALID_MODEL) from None
        graph_inputs = list(module.graph.inputs())[1:]  # the first is the module itself
        names = [re.sub(r"\.\d+$", "", v.debugName()) for v in graph_inputs]
        tensor = torch.TensorType.get()
        others = [f"{n} ({v.type()})" for n, v in zip(names, graph_inputs) if not v.type().isSubtypeOf(tensor)]
        if others:
            raise EdgebenchError(f"{path.name} takes inputs that are not tensors ({', '.join(others)}): export it with "
                                 "torch.export to a .pt2, which records them", ExitStatus.INVALID_MODEL)
        traced = traced_inputs(path)
        if traced is not None and len(traced) != len(names):
            traced = None
        unknown = [n for n in names if n not in shapes] if traced is None else []
        if unknown:
            raise EdgebenchError(f"{path.name} is a TorchScript module without example inputs (a scripted one): "
                                 f"pass the size of each input with --shape (e.g. --shape {unknown[0]}:1x3x224x224; "
                                 f"its inputs: {', '.join(names)}; float32 is assumed; in a sweep spec, the model's "
                                 "shapes:)", ExitStatus.USAGE)
        example = []
        for i, name in enumerate(names):
            dtype = traced[i][0] if traced is not None else "float32"
            size = tuple(shapes[name]) if name in shapes else traced[i][1] if traced is not None else ()
            example.append(_tensor(torch, dtype, size))
        export_script(module, example, names, out, path)
        given = "the trace" if traced is not None and not set(names) & set(shapes) else "--shape"
        return (f"TorchScript → {TORCHSCRIPT}, opset {TORCHSCRIPT_OPSET}; example inputs from {given}; "
                "first axes dynamic")


def _tensor(torch: Any, dtype: str, size: tuple[int, ...]) -> Any:
    kind = getattr(torch, dtype)
    if kind.is_floating_point:
        return torch.rand(size, dtype=kind)
    return torch.zeros(size, dtype=kind)


class _TensorHeaders(pickle.Unpickler):
    """Reads ``traced_inputs.pkl`` as (dtype, sizes) per tensor: only the globals a traced input's pickle uses
    are resolved, each to a harmless stand-in; anything else stops the reading."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return lambda storage, offset, size, *rest: (_STORAGE_DTYPES.get(storage, "?"), tuple(size))
        if (module, name) == ("torch.jit._pickle", "restore_type_tag"):
            return lambda value, tag: value
        if module == "torch" and name.endswith("Storage"):
            return name
        if (module, name) == ("collections", "OrderedDict"):
            return dict
        raise pickle.UnpicklingError(f"{module}.{name}")

    def persistent_load(self, pid: Any) -> Any:
        return pid[1]  # ('storage', <storage type>, key, device, numel): the storage type is the dtype


def traced_inputs(path: Path) -> list[TensorHeader] | None:
    """The dtypes and sizes of the inputs a traced module was traced with (its ``forward``'s), or None when the
    archive holds none (a scripted module) or holds something else."""
    try:
        with zipfile.ZipFile(path) as archive:
            member = next((n for n in archive.namelist() if n.endswith("traced_inputs.pkl")), None)
            if member is None:
                return None
            found = _TensorHeaders(archive.open(member)).load()
    except (pickle.UnpicklingError, zipfile.BadZipFile, OSError, ValueError, TypeError, EOFError, IndexError):
        return None
    inputs = found.get("forward") if isinstance(found, dict) else None
    if not isinstance(inputs, list) or not inputs:
        return None
    ok = all(isinstance(t, tuple) and len(t) == 2 and t[0] in _STORAGE_DTYPES.values() for t in inputs)
    return list(inputs) if ok else None
