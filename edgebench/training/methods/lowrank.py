"""Low-rank factorization of dense and convolution layers by truncated SVD (Denton et al. 2014).

A layer's weight matrix W (out × in; a convolution's cout × cin·kh·kw) is ``U S Vᵀ``; keeping the r largest
singular values gives two layers: ``√S Vᵀ`` (in → r; for a convolution an r-filter convolution with the
original kernel, stride, padding and dilation) then ``U √S`` (r → out, the original bias; a 1×1 convolution).
The rank r is the smallest keeping ``energy`` of the sum of squared singular values (the squared Frobenius
norm, so the relative weight error is at most √(1 - energy)). A layer where r·(in + out) >= in·out saves
nothing and is left alone, as is a grouped convolution. Fine-tuning afterwards recovers what the cut lost.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


def _rank(singular: torch.Tensor, energy: float) -> int:
    """The smallest r with sum(s[:r]²) >= energy · sum(s²)."""
    import torch

    cumulative = torch.cumsum(singular.double() ** 2, 0)
    return min(int((cumulative < energy * cumulative[-1]).sum()) + 1, singular.numel())


def _params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _factors(module: torch.nn.Module, rank: int, u: torch.Tensor, s: torch.Tensor,
             vh: torch.Tensor) -> torch.nn.Sequential:
    """The two layers replacing ``module`` with the rank-``rank`` factors of its weight."""
    import torch

    weight, bias = module.weight, module.bias
    assert isinstance(weight, torch.Tensor)
    root = s[:rank].sqrt()
    first_w = (root[:, None] * vh[:rank]).to(weight.dtype)
    second_w = (u[:, :rank] * root[None, :]).to(weight.dtype)
    first: torch.nn.Module
    second: torch.nn.Module
    if isinstance(module, torch.nn.Linear):
        first = torch.nn.Linear(module.in_features, rank, bias=False)
        second = torch.nn.Linear(rank, module.out_features, bias=bias is not None)
    else:
        assert isinstance(module, (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d))
        spatial: dict[str, Any] = {"kernel_size": module.kernel_size, "stride": module.stride,
                                   "padding": module.padding, "dilation": module.dilation,
                                   "padding_mode": module.padding_mode}
        first = type(module)(module.in_channels, rank, bias=False, **spatial)
        second = type(module)(rank, module.out_channels, 1, bias=bias is not None)
    with torch.no_grad():
        first.get_parameter("weight").copy_(first_w.reshape(first.get_parameter("weight").shape))
        second.get_parameter("weight").copy_(second_w.reshape(second.get_parameter("weight").shape))
        if isinstance(bias, torch.Tensor):
            second.get_parameter("bias").copy_(bias)
    return torch.nn.Sequential(first, second).to(device=weight.device, dtype=weight.dtype)


def factorize(model: torch.nn.Module, layers: dict[str, torch.nn.Module],
              energy: float) -> dict[str, dict[str, int]]:
    """Replace each layer (named as in ``model``) by its two rank-r factors, in place; returns
    ``{name: {"rank", "full_rank", "params_before", "params_after"}}`` (a skipped layer: params unchanged)."""
    import torch

    if not 0.0 < energy <= 1.0:
        raise ValueError(f"energy must be in (0, 1], got {energy}")
    result = {}
    for name, module in layers.items():
        if not isinstance(module, (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)):
            raise ValueError(f"layer {name} is a {type(module).__name__}: only Linear and Conv layers factorize")
        weight = module.weight.detach()
        matrix = weight.reshape(weight.shape[0], -1)
        full_rank = min(matrix.shape)
        before = after = _params(module)
        rank = full_rank
        if isinstance(module, torch.nn.Linear) or module.groups == 1:  # a grouped conv is not one matrix
            u, s, vh = torch.linalg.svd(matrix.double(), full_matrices=False)
            rank = _rank(s, energy)
            if rank * sum(matrix.shape) < matrix.numel():
                replacement = _factors(module, rank, u, s, vh)
                model.set_submodule(name, replacement)
                after = _params(replacement)
        result[name] = {"rank": rank, "full_rank": full_rank, "params_before": before, "params_after": after}
    return result
