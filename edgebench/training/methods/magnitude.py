"""Gradual magnitude pruning while training (Zhu & Gupta 2017; tfmot's ``prune_low_magnitude``).

Each layer's weight gets a mask as a ``torch.nn.utils.parametrize`` parametrization (``weight = original *
mask``): the forward pass sees the pruned weights, a pruned weight's gradient is zero, so an optimizer step
cannot bring it back, and later parametrizations (clustering, fake-quant) stack on top of the mask. On the
steps the schedule names, the masks are recomputed from the masked weights' magnitudes at the schedule's
sparsity; weights already pruned have magnitude zero, so they stay pruned as the sparsity rises.

``global`` scope ranks all layers' weights against one threshold (as ``prune:S``), ``layer`` prunes the same
fraction of each layer (as ``prune-layer:S``). Counts are exact, ties broken by position, as in
``edgebench.compress.prune``: the sparsity asked is the sparsity made.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.training.methods.schedule import Schedule

if TYPE_CHECKING:
    import torch
    from torch.nn.utils.parametrize import ParametrizationList

SCOPES = ("global", "layer")


def _chain(module: torch.nn.Module) -> ParametrizationList:
    """The parametrizations on ``module.weight`` (the original weight and the list applied to it in order)."""
    from torch.nn.utils.parametrize import ParametrizationList

    chain = module.get_submodule("parametrizations.weight")
    assert isinstance(chain, ParametrizationList)
    return chain


def stacked_input(module: torch.nn.Module, parametrization: torch.nn.Module) -> torch.Tensor:
    """What ``parametrization`` receives in ``module.weight``'s chain: the original weight through the ones below."""
    chain = _chain(module)
    value: torch.Tensor = chain.original
    for item in chain:
        if item is parametrization:
            return value
        value = item(value)
    raise ValueError("the parametrization is not on this module's weight")


def _smallest(magnitudes: torch.Tensor, count: int) -> torch.Tensor:
    """A flat bool mask of exactly ``count`` smallest entries, ties broken by position (a stable sort)."""
    import torch

    chosen = torch.zeros(magnitudes.numel(), dtype=torch.bool, device=magnitudes.device)
    if count > 0:
        order = torch.sort(magnitudes.reshape(-1), stable=True).indices
        chosen[order[:count]] = True
    return chosen


@cache
def _mask_class() -> type[torch.nn.Module]:
    import torch

    class WeightMask(torch.nn.Module):
        """``weight * mask``; the mask is a buffer (1 keeps, 0 prunes) that the pruner rewrites."""

        mask: torch.Tensor

        def __init__(self, shape: torch.Size, like: torch.Tensor) -> None:
            super().__init__()
            self.register_buffer("mask", torch.ones(shape, dtype=like.dtype, device=like.device))

        def forward(self, weight: torch.Tensor) -> torch.Tensor:
            return weight * self.mask

    return WeightMask


class MagnitudePruner:
    """Masks the given layers' weights and raises their sparsity on the schedule; ``scope`` global or layer."""

    def __init__(self, layers: dict[str, torch.nn.Module], schedule: Schedule, scope: str = "global") -> None:
        import torch
        from torch.nn.utils import parametrize

        if scope not in SCOPES:
            raise ValueError(f"scope must be one of {', '.join(SCOPES)}, got {scope!r}")
        if not layers:
            raise ValueError("no layers to prune")
        self.layers = dict(layers)
        self.schedule = schedule
        self.scope = scope
        mask_class = _mask_class()
        self.masks: dict[str, torch.nn.Module] = {}
        for name, module in self.layers.items():
            weight = module.weight
            assert isinstance(weight, torch.Tensor)
            mask = mask_class(weight.shape, weight)
            parametrize.register_parametrization(module, "weight", mask)
            self.masks[name] = mask

    def _buffer(self, name: str) -> torch.Tensor:
        mask: torch.Tensor = self.masks[name].get_buffer("mask")
        return mask

    def _masked(self, name: str) -> torch.Tensor:
        """The layer's weight as the mask sees it, with the current mask applied (pruned entries are 0)."""
        return stacked_input(self.layers[name], self.masks[name]) * self._buffer(name)

    def _update(self, sparsity: float) -> dict[str, float]:
        """New masks pruning exactly ``sparsity`` of the weights (in all layers or in each); zeroes the pruned
        originals too, as tfmot assigns ``weight * mask``. Returns each layer's sparsity."""
        import torch

        with torch.no_grad():
            magnitudes = {name: self._masked(name).abs() for name in self.layers}
            if self.scope == "global":
                flat = torch.cat([m.reshape(-1) for m in magnitudes.values()])
                chosen = _smallest(flat, round(sparsity * flat.numel()))
                pruned, offset = {}, 0
                for name, m in magnitudes.items():
                    pruned[name] = chosen[offset:offset + m.numel()].reshape(m.shape)
                    offset += m.numel()
            else:
                pruned = {name: _smallest(m, round(sparsity * m.numel())).reshape(m.shape)
                          for name, m in magnitudes.items()}
            for name, gone in pruned.items():
                if bool(gone.all()):
                    raise EdgebenchError(f"pruning to sparsity {sparsity:g} would zero every weight of layer {name}: "
                                         "lower the sparsity, prune per layer, or exclude this layer",
                                         ExitStatus.CONVERSION_FAILED)
            result = {}
            for name, gone in pruned.items():
                mask = self._buffer(name)
                mask.copy_((~gone).to(mask.dtype))
                chain = _chain(self.layers[name])
                if chain[0] is self.masks[name]:  # the mask sees the original: zero it too
                    chain.original.mul_(mask)
                result[name] = int(gone.sum()) / gone.numel()
        return result

    def on_step(self, step: int) -> None:
        """Called after each optimizer step: recompute the masks when the schedule prunes at ``step``."""
        if self.schedule.should_prune(step):
            self._update(self.schedule.sparsity(step))

    def finalize(self) -> dict[str, float]:
        """Masks at exactly the schedule's final sparsity (whatever steps ran); returns each layer's sparsity."""
        return self._update(self.schedule.final_sparsity)

    def strip(self) -> None:
        """Bake the masked weights into plain parameters (zeros stay zeros); removes the weight's parametrizations
        (those stacked on the mask are baked with it)."""
        from torch.nn.utils import parametrize

        for module in self.layers.values():
            if parametrize.is_parametrized(module, "weight"):
                parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
