"""ONNX ↔ PyTorch for fine-tuning: import with onnx2torch, export back with torch.onnx (TorchScript exporter).

`to_torch` refuses up front, by name, every op onnx2torch has no converter for (subgraphs of If/Loop
included), makes every Conv/Linear weight a trainable ``nn.Parameter`` — a MatMul by a constant matrix,
which onnx2torch keeps as a matmul with a buffer, becomes a bias-free ``nn.Linear`` — and records which
module each ONNX weight node became (`module_names`). `to_onnx` exports with the reference's input and
output names, dtypes and dynamic dimensions.

onnx2torch imports torchvision at import time only for its NonMaxSuppression and RoiAlign converters; where
torchvision is not installed (it cannot be installed beside the CPU-only torch wheel) it is imported with a
placeholder torchvision that is removed right after, and those two ops are reported as unsupported.
"""

from __future__ import annotations

import functools
import importlib
import sys
import types
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgebench.data.source import as_dim
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.text import one_line

if TYPE_CHECKING:
    import torch

NEEDS_TORCHVISION = ("NonMaxSuppression", "RoiAlign")
WEIGHT_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")
MODULES_META = "edgebench_onnx_modules"  # GraphModule.meta key: ONNX node (or weight) name -> module name
MIN_EXPORT_OPSET = 13
_TORCHVISION: list[bool] = []  # [whether torchvision imports], set on the first import of onnx2torch


def _refuse_torchvision(*_: object, **__: object) -> None:
    raise RuntimeError("torchvision is not installed, so onnx2torch cannot run NonMaxSuppression or RoiAlign")


def _import_onnx2torch() -> Any:
    """Import onnx2torch, with a placeholder torchvision while it imports if the real one is missing."""
    try:
        import torch  # noqa: F401
    except ImportError:
        raise EdgebenchError("fine-tuning needs PyTorch, which is not installed: pip install 'edgebench[train]'",
                             ExitStatus.RUNTIME_MISSING) from None
    if not _TORCHVISION:
        try:
            importlib.import_module("torchvision")
            _TORCHVISION.append(True)
        except ImportError:
            _TORCHVISION.append(False)
    if _TORCHVISION[0] or "onnx2torch" in sys.modules:
        return _import_real()
    placeholder, ops = types.ModuleType("torchvision"), types.ModuleType("torchvision.ops")
    for name in ("nms", "box_convert", "roi_align"):
        setattr(ops, name, _refuse_torchvision)
    placeholder.ops = ops  # type: ignore[attr-defined]
    sys.modules.update({"torchvision": placeholder, "torchvision.ops": ops})
    try:
        return _import_real()
    finally:
        for name, module in (("torchvision", placeholder), ("torchvision.ops", ops)):
            if sys.modules.get(name) is module:
                del sys.modules[name]


def _import_real() -> Any:
    try:
        import onnx2torch
    except ImportError as exc:
        raise EdgebenchError(f"fine-tuning needs onnx2torch ({one_line(str(exc), 200)}): pip install "
                             "'edgebench[train]'", ExitStatus.RUNTIME_MISSING) from None
    return onnx2torch


def _nodes(graph: Any) -> Iterator[Any]:
    """Every node of ``graph`` and of the subgraphs its nodes hold (If branches, Loop and Scan bodies)."""
    from onnx import AttributeProto

    for node in graph.node:
        yield node
        for attr in node.attribute:
            subgraphs = [attr.g] if attr.type == AttributeProto.GRAPH else \
                list(attr.graphs) if attr.type == AttributeProto.GRAPHS else []
            for sub in subgraphs:
                yield from _nodes(sub)


def unsupported_ops(model: Any) -> list[str]:
    """The ops of ``model`` (an onnx.ModelProto) onnx2torch cannot import, in the order first met."""
    _import_onnx2torch()
    from onnx2torch.node_converters.registry import get_converter

    opsets = {o.domain: o.version for o in model.opset_import}
    missing: dict[str, None] = {}
    for node in _nodes(model.graph):
        name = node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}"
        if node.domain == "" and node.op_type in NEEDS_TORCHVISION and not _TORCHVISION[0]:
            missing[f"{name} (needs torchvision)"] = None
            continue
        try:
            get_converter(operation_type=node.op_type, version=opsets[node.domain], domain=node.domain)
        except (KeyError, NotImplementedError):
            missing[name] = None
    return list(missing)


def _refuse_unsupported(model: Any) -> None:
    missing = unsupported_ops(model)
    if missing:
        raise EdgebenchError(f"fine-tuning needs the model in PyTorch: onnx2torch cannot import op(s) "
                             f"{', '.join(missing)} (opset {_default_opset(model)}); fine-tune the source model in "
                             "PyTorch and pass it as a module, or drop --finetune", ExitStatus.CONVERSION_FAILED)


def check_importable(onnx_path: Path) -> None:
    """Refuse up front, naming them, the ops of the model at ``onnx_path`` that onnx2torch cannot import."""
    import onnx

    _refuse_unsupported(onnx.load(str(onnx_path), load_external_data=False))


def _default_opset(model: Any) -> int | None:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)


def to_torch(onnx_path: Path) -> torch.fx.GraphModule:
    """Import the float ONNX model at ``onnx_path`` (weights as initializers) into a trainable GraphModule."""
    import onnx

    onnx2torch = _import_onnx2torch()
    model = onnx.load(str(onnx_path))
    _refuse_unsupported(model)
    try:
        module = onnx2torch.convert(model)
    except Exception as exc:  # onnx2torch's converters raise NotImplementedError, ValueError, KeyError ...
        raise EdgebenchError(f"onnx2torch could not import {onnx_path.name} ({type(exc).__name__}: "
                             f"{one_line(str(exc), 400)}): fine-tune the source model in PyTorch and pass it as a "
                             "module, or drop --finetune", ExitStatus.CONVERSION_FAILED) from None
    _matmuls_to_linear(module)
    _softmax_without_reshape(module)
    module.meta[MODULES_META] = _weight_modules(model, module)
    _make_trainable(module)
    return module


def _matmuls_to_linear(module: torch.fx.GraphModule) -> None:
    """Turn each MatMul by a constant 2-D float matrix (a buffer only that MatMul reads) into a bias-free
    nn.Linear with that matrix as its trainable weight: ``x @ W == linear(x, W.T)``."""
    import torch
    from onnx2torch.node_converters.matmul import OnnxMatMul

    changed = False
    for node in list(module.graph.nodes):
        if node.op != "call_module" or not isinstance(module.get_submodule(node.target), OnnxMatMul):
            continue
        x, w = node.args
        if getattr(w, "op", None) != "get_attr" or len(w.users) != 1:
            continue
        matrix = module.get_buffer(w.target)
        if matrix.dim() != 2 or not matrix.is_floating_point():
            continue
        linear = torch.nn.Linear(matrix.shape[0], matrix.shape[1], bias=False, dtype=matrix.dtype)
        linear.weight = torch.nn.Parameter(matrix.detach().t().contiguous().clone())
        module.set_submodule(node.target, linear)
        node.args = (x,)
        module.graph.erase_node(w)
        owner, _, buffer = w.target.rpartition(".")
        delattr(module.get_submodule(owner), buffer)
        changed = True
    if changed:
        module.graph.lint()
        module.recompile()


@functools.cache
def _last_axis_softmax() -> Any:
    import torch
    from onnx2torch.node_converters.activations import OnnxSoftmaxV1V11

    class LastAxisSoftmax(OnnxSoftmaxV1V11):
        """Softmax of opset < 13 (over the flattened axes from ``axis`` on) without onnx2torch's flatten and
        reshape when ``axis`` is the last axis: the exporter bakes the traced shape (the batch) into that reshape."""

        def forward(self, input_tensor: torch.Tensor) -> torch.Tensor:
            if self.axis not in (-1, input_tensor.dim() - 1):
                return super().forward(input_tensor)
            return torch.log_softmax(input_tensor, -1) if self.is_log else torch.softmax(input_tensor, -1)

    return LastAxisSoftmax


def _softmax_without_reshape(module: torch.fx.GraphModule) -> None:
    from onnx2torch.node_converters.activations import OnnxSoftmaxV1V11

    for name, layer in list(module.named_modules()):
        if type(layer) is OnnxSoftmaxV1V11:
            module.set_submodule(name, _last_axis_softmax()(axis=layer.axis, is_log=layer.is_log))


def _trainable(module: torch.nn.Module) -> torch.nn.Module | None:
    """The Conv/ConvTranspose/Linear that ``module`` is, or holds (onnx2torch wraps a Conv with asymmetric
    pads in Sequential(pad, conv))."""
    import torch

    kinds = (torch.nn.modules.conv._ConvNd, torch.nn.Linear)
    if isinstance(module, kinds):
        return module
    if isinstance(module, torch.nn.Sequential):
        return next((m for m in module if isinstance(m, kinds)), None)
    return None


def _weight_modules(model: Any, module: torch.fx.GraphModule) -> dict[str, str]:
    """ONNX weight node → the module name it became, keyed by node name and by weight name (edgebench names a
    layer by its weight where the node has no name or shares it), using onnx2torch's own module naming."""
    from onnx2torch.onnx_graph import OnnxGraph

    names = [n.name for n in model.graph.node]
    found: dict[str, str] = {}
    for unique, node in OnnxGraph(model.graph).nodes.items():
        proto = node.proto
        if proto.op_type not in WEIGHT_OPS or proto.domain not in ("", "ai.onnx"):
            continue
        try:
            wrapper = module.get_submodule(unique)
        except AttributeError:
            continue
        layer = _trainable(wrapper)
        if layer is None:
            continue
        target = unique if layer is wrapper else f"{unique}.{next(k for k, m in wrapper.named_children() if m is layer)}"
        if len(proto.input) > 1:
            found[proto.input[1]] = target
        if proto.name and names.count(proto.name) == 1:
            found[proto.name] = target
    return found


def _make_trainable(module: torch.nn.Module) -> None:
    """Every float weight and bias of a Conv/Linear module a Parameter that requires grad."""
    import torch

    for layer in module.modules():
        if _trainable(layer) is not layer or layer is module:
            continue
        for name in ("weight", "bias"):
            value = getattr(layer, name, None)
            if value is None or not value.is_floating_point():
                continue
            if not isinstance(value, torch.nn.Parameter):
                delattr(layer, name)
                value = torch.nn.Parameter(value.detach().clone())
                setattr(layer, name, value)
            value.requires_grad_(True)


def module_names(onnx_node_names: list[str], model: torch.nn.Module) -> dict[str, str]:
    """ONNX node name (or weight name) → the name of the Conv/ConvTranspose/Linear module it became in
    ``model``; names that became no trainable module are left out. A model imported by `to_torch` answers
    from what it recorded; another model by onnx2torch's naming ("/conv1/Conv" → "conv1/Conv")."""
    recorded: Mapping[str, str] = getattr(model, "meta", {}).get(MODULES_META, {})
    found: dict[str, str] = {}
    for name in onnx_node_names:
        target = recorded.get(name, name.replace(".", "/").lstrip("/"))
        try:
            module = model.get_submodule(target)
        except AttributeError:
            continue
        if _trainable(module) is module:
            found[name] = target
    return found


def _graph_inputs(model: Any) -> list[Any]:
    initializers = {i.name for i in model.graph.initializer}
    return [v for v in model.graph.input if v.name not in initializers]


def example_inputs(reference: Path, shapes: Mapping[str, tuple[int, ...]] | None = None) -> tuple[torch.Tensor, ...]:
    """One example feed for the model at ``reference``, in its input order: its dtypes, its fixed sizes,
    ``shapes`` (input → feed shape, e.g. a training batch's) for the dynamic ones, 1 for the rest; floats
    uniform in [0, 1), integers 0 (a valid token id, mask or index)."""
    import onnx
    import torch

    rng = np.random.default_rng(0)
    feeds = []
    for value in _graph_inputs(onnx.load(str(reference), load_external_data=False)):
        ttype, known = value.type.tensor_type, (shapes or {}).get(value.name, ())
        dims = [as_dim(d.dim_value if d.HasField("dim_value") else d.dim_param) for d in ttype.shape.dim]
        shape = tuple(d if isinstance(d, int) else known[i] if i < len(known) else 1 for i, d in enumerate(dims))
        dtype = onnx.helper.tensor_dtype_to_np_dtype(ttype.elem_type)
        array = rng.random(shape).astype(dtype) if dtype.kind == "f" else np.zeros(shape, dtype)
        feeds.append(torch.from_numpy(array))
    return tuple(feeds)


def _dynamic_axes(values: Any) -> dict[str, dict[int, str]]:
    axes: dict[str, dict[int, str]] = {}
    for value in values:
        for i, dim in enumerate(value.type.tensor_type.shape.dim):
            if as_dim(dim.dim_value if dim.HasField("dim_value") else dim.dim_param) is None:  # unnamed
                axes.setdefault(value.name, {})[i] = f"{value.name}_dim{i}"
            elif dim.dim_param:
                axes.setdefault(value.name, {})[i] = dim.dim_param
    return axes


def to_onnx(model: torch.nn.Module, reference: Path, out: Path, opset: int | None = None,
            shapes: Mapping[str, tuple[int, ...]] | None = None) -> None:
    """Export ``model`` to ``out`` with the reference's input/output names, dtypes and dynamic dimensions
    (same dim_param names); opset: the reference's, at least 13, at most what torch's TorchScript exporter
    writes. ``shapes`` sizes the dynamic dimensions of the example feed (default 1)."""
    import onnx
    import torch
    from torch.onnx import _constants

    ref = onnx.load(str(reference), load_external_data=False)
    inputs = _graph_inputs(ref)
    version = opset or min(max(_default_opset(ref) or MIN_EXPORT_OPSET, MIN_EXPORT_OPSET),
                           _constants.ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET)
    feeds = example_inputs(reference, shapes)
    model.eval()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # onnx2torch's modules make the tracer warn about every shape read
            # PRESERVE: exported as the model is (eval), without the EVAL mode's peephole that folds
            # BatchNormalization into the Conv weights (new weight names, clustering's shared values lost)
            torch.onnx.export(model, feeds, str(out), dynamo=False, opset_version=version,
                              training=torch.onnx.TrainingMode.PRESERVE, input_names=[v.name for v in inputs],
                              output_names=[v.name for v in ref.graph.output],
                              dynamic_axes={**_dynamic_axes(inputs), **_dynamic_axes(ref.graph.output)})
    except Exception as exc:  # the exporter raises RuntimeError, torch.onnx.errors.*, TypeError ...
        raise EdgebenchError(f"torch.onnx could not export the fine-tuned model ({type(exc).__name__}: "
                             f"{one_line(str(exc), 400)}): fine-tune the source model in PyTorch and pass it as a "
                             "module, or drop --finetune", ExitStatus.CONVERSION_FAILED) from None
    exported = onnx.load(str(out), load_external_data=False)
    got, want = [o.name for o in exported.graph.output], [o.name for o in ref.graph.output]
    if got != want:
        raise EdgebenchError(f"the fine-tuned model exports outputs {got}, not the model's {want}: fine-tune the "
                             "source model in PyTorch and pass it as a module, or drop --finetune",
                             ExitStatus.CONVERSION_FAILED)
