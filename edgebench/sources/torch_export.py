"""``torch.export`` programs (``.pt2``, written by ``torch.export.save``) → ONNX with torch.onnx's dynamo exporter."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Mapping

from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.sources.base import Source, what_it_is, zip_names
from edgebench.sources.torch_onnx import DYNAMO, DYNAMO_OPSET, export_program
from edgebench.text import one_line

PACKAGES = {"torch": ("torch",), "onnxscript": ("onnxscript",)}  # the dynamo exporter builds its graph with onnxscript


def is_program(names: list[str]) -> bool:
    """A torch.export archive: it names its ``archive_format``."""
    return any(n == "archive_format" or n.endswith("/archive_format") for n in names)


def is_torchscript(names: list[str]) -> bool:
    """A TorchScript archive: pickled constants beside ``code/``."""
    return any("/code/" in n for n in names) and any(n.endswith("data.pkl") for n in names)


class TorchExportSource(Source):
    name = "torch_export"
    label = "torch.export program"
    extra = "pytorch"
    exporter = DYNAMO
    suffixes = (".pt2",)
    copied = True
    save_hint = "save one with torch.export.save(torch.export.export(model, example_inputs), 'model.pt2')"

    def sniff(self, path: Path) -> str | None:
        names = zip_names(path)
        if names is None:
            return what_it_is(path)
        if is_program(names):
            return None
        return "a TorchScript archive: name it .pt" if is_torchscript(names) else "a zip without archive_format"

    def packages(self, path: Path) -> dict[str, tuple[str, ...]]:
        return dict(PACKAGES)

    def load(self, path: Path) -> Any:
        """The ``torch.export.ExportedProgram`` in ``path`` (for the export, and for the direct OpenVINO route,
        ``artifacts.routes``)."""
        self.require("torch")
        import torch
        import torch.ao.quantization.fx._decomposed  # noqa: F401  registers the quantize/dequantize ops a quantized program holds

        try:
            with warnings.catch_warnings():  # torch's own deprecation notices about its pytree classes
                warnings.simplefilter("ignore")
                return torch.export.load(str(path))
        except Exception as exc:  # a newer serialization format, a damaged archive …
            raise EdgebenchError(f"torch.export.load cannot read {path} ({type(exc).__name__}: "
                                 f"{one_line(str(exc), 200)}): save it again with torch {torch.__version__}, or "
                                 "with the torch that reads it", ExitStatus.INVALID_MODEL) from None

    def export_onnx(self, path: Path, out: Path, shapes: Mapping[str, tuple[int, ...]]) -> str:
        self.require(*PACKAGES)
        export_program(self.load(path), out, path)
        return f"torch.export program → {DYNAMO}, opset {DYNAMO_OPSET}"
