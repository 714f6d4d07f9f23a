"""Structured pruning with a dependency graph (torch-pruning): remove whole output channels — Conv filters,
Linear neurons — by L1 norm (Li et al., ICLR 2017), and shrink every layer the channels reach.

torch-pruning traces the model once with example inputs and groups the coupled layers: a BatchNorm and the
next Conv's input channels, a Linear behind a Flatten (its features per channel), and the Convs whose
channels meet in a residual Add or a depthwise Conv, which are pruned together with the same channels. That
last case is what the post-training numpy path (`edgebench.compress.prune_filters`) refuses. Channels are
ranked by the L1 norm of their filters, summed over the coupled layers that lose them (for a layer coupled
with nothing this is the layer's own per-filter L1, as in the numpy path). A layer whose channels would reach
a model output, or that torch-pruning cannot prune, is refused by name. torch-pruning does not see constants
(onnx2torch keeps them as buffers): a per-channel Mul/Add by a constant behind a pruned layer is found by
running the pruned model, and refused — the model is then left part-pruned, for the caller to discard.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.text import one_line

if TYPE_CHECKING:
    import torch
    from torch import Tensor, nn


def _refuse(name: str, why: str) -> EdgebenchError:
    return EdgebenchError(f"cannot prune filters of {name}: {why}; exclude it with --exclude '{name}' or use prune:S",
                          ExitStatus.CONVERSION_FAILED)


def _out_shapes(model: nn.Module, example_inputs: tuple[Tensor, ...]) -> list[tuple[int, ...]]:
    import torch

    with torch.no_grad():
        out = model(*example_inputs)
    return [tuple(t.shape) for t in (out if isinstance(out, (tuple, list)) else [out])]


def _channels(layer: nn.Module) -> int:
    return int(getattr(layer, "out_features", None) or getattr(layer, "out_channels"))


def _channel_l1(group: Any, dg: Any, channels: int) -> torch.Tensor:
    """L1 norm of each of the root's ``channels``, summed over the group's Conv/Linear layers losing them."""
    import torch

    score = torch.zeros(channels, dtype=torch.float64)
    for dep, idxs in group:
        layer = dep.target.module
        if not dg.is_out_channel_pruning_fn(dep.handler) or len(idxs) != channels \
                or not isinstance(layer, (torch.nn.modules.conv._ConvNd, torch.nn.Linear)):
            continue
        weight = layer.weight.detach().to(torch.float64)
        if isinstance(layer, torch.nn.modules.conv._ConvTransposeNd):  # [in, out/groups, k...]: out on axis 1
            weight = weight.transpose(0, 1)
        per_filter = weight.abs().reshape(weight.shape[0], -1).sum(dim=1)
        score += per_filter[torch.as_tensor([int(i) for i in idxs])]
    return score


def prune_filters(model: nn.Module, example_inputs: tuple[Tensor, ...], layers: dict[str, nn.Module],
                  amount: float) -> dict[str, dict[str, int]]:
    """Remove round(``amount`` × channels) lowest-L1 output channels of each of ``layers`` (module name →
    Conv/Linear), with every dependent layer; returns {name: {"filters_before":, "filters_after":}}."""
    import torch
    import torch_pruning as tp

    if not 0 <= amount < 1:
        raise EdgebenchError(f"prune-filters:{amount:g} is not a fraction in [0, 1): give the share of filters to "
                             "remove, e.g. prune-filters:0.5", ExitStatus.CONFIG)
    was_training = model.training
    model.eval()
    shapes = _out_shapes(model, example_inputs)
    dg = tp.DependencyGraph().build_dependency(model, example_inputs=example_inputs, verbose=False)
    for name, layer in layers.items():
        if not isinstance(layer, (torch.nn.modules.conv._ConvNd, torch.nn.Linear)):
            raise _refuse(name, f"it is a {type(layer).__name__}, not a Conv or Linear")
    before = {name: _channels(layer) for name, layer in layers.items()}
    result: dict[str, dict[str, int]] = {}
    pruned: set[int] = set()  # the layers whose channels went with an earlier group (coupled layers)
    for name, layer in layers.items():
        channels = before[name]
        prune_fn = tp.prune_linear_out_channels if isinstance(layer, torch.nn.Linear) else tp.prune_conv_out_channels
        if id(layer) in pruned:
            result[name] = {"filters_before": channels, "filters_after": _channels(layer)}
            continue
        remove = int(round(amount * channels))
        if remove >= channels:
            raise EdgebenchError(f"prune-filters:{amount:g} would remove every filter of {name} ({channels} "
                                 "channels): lower the amount or --exclude this layer", ExitStatus.CONVERSION_FAILED)
        if remove == 0:
            result[name] = {"filters_before": channels, "filters_after": channels}
            continue
        try:
            probe = dg.get_pruning_group(layer, prune_fn, idxs=list(range(channels)))
        except Exception as exc:  # torch-pruning raises ValueError, KeyError ... for what it did not trace
            raise _refuse(name, f"torch-pruning cannot group it ({type(exc).__name__}: {exc})") from None
        if any(dg.is_out_channel_pruning_fn(dep.handler) and not dep.target.outputs for dep, _ in probe):
            raise _refuse(name, "its channels reach a model output, which would change the output's shape")
        lowest = torch.argsort(_channel_l1(probe, dg, channels), stable=True)[:remove]
        group = dg.get_pruning_group(layer, prune_fn, idxs=sorted(int(i) for i in lowest))
        if not dg.check_pruning_group(group):
            raise _refuse(name, "a layer coupled with it would lose all its channels")
        group.prune()
        pruned.update(id(dep.target.module) for dep, _ in group if dg.is_out_channel_pruning_fn(dep.handler))
        try:
            changed = _out_shapes(model, example_inputs) != shapes
        except RuntimeError as exc:  # a consumer torch-pruning does not track, e.g. a Mul by a per-channel constant
            raise _refuse(name, f"a consumer of its channels did not shrink with it ({one_line(str(exc), 200)})") from None
        if changed:
            raise _refuse(name, "pruning it changed the model's output shape")
        result[name] = {"filters_before": channels, "filters_after": _channels(layer)}
    model.train(was_training)
    return result
