"""Weight clustering with trained centroids (Han et al. 2016; tfmot's ``cluster_weights``).

Each layer's weight becomes ``centroids[indices]``: a ``torch.nn.utils.parametrize`` parametrization holding
the layer's K trainable centroids and, per weight, the index of its centroid. As in tfmot's
``ClusteringAlgorithm`` (``GradientAggregation.SUM``), a centroid's gradient is the sum of its weights'
gradients (what the gather's backward gives), and the same gradient passes straight through to the original
weights, which keep training so that a weight can move to another cluster: after each optimizer step the
indices are recomputed as each original weight's nearest centroid (tfmot does this in every forward pass;
the weights only change at a step, so it is the same).

Sparsity preserving, as ``edgebench.compress.cluster`` (and tfmot's ``preserve_sparsity``): the weights that
are zero when clustering starts — a pruning mask below this parametrization included — stay exactly zero
without a gradient, zero is one of the K values, and the K-1 trainable centroids serve the non-zero weights.
The initial centroids are ``edgebench.compress.cluster.kmeans_1d``'s (density, linear, kmeans++ or random
init), so trained and post-training clustering start from the same point.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from edgebench.compress.cluster import kmeans_1d
from edgebench.compress.recipe import CLUSTER_INITS
from edgebench.training.methods.magnitude import stacked_input

if TYPE_CHECKING:
    import torch


@cache
def _parametrization_class() -> type[torch.nn.Module]:
    import torch

    class ClusteredWeight(torch.nn.Module):
        """``where(keep, centroids[indices], 0)`` forward; gradient to the centroids (summed per cluster) and
        straight through to the weight below."""

        keep: torch.Tensor
        indices: torch.Tensor

        def __init__(self, centroids: torch.Tensor, keep: torch.Tensor, indices: torch.Tensor) -> None:
            super().__init__()
            self.centroids = torch.nn.Parameter(centroids)
            self.register_buffer("keep", keep)
            self.register_buffer("indices", indices)

        def forward(self, weight: torch.Tensor) -> torch.Tensor:
            straight_through = self.centroids[self.indices] + (weight - weight.detach())
            return torch.where(self.keep, straight_through, torch.zeros_like(weight))

    return ClusteredWeight


def _assign(clustered: torch.nn.Module, weight: torch.Tensor) -> None:
    """Each weight's nearest centroid (midpoints of the sorted centroids: O(n log K), no n×K matrix)."""
    import torch

    with torch.no_grad():
        ordered, order = torch.sort(clustered.get_parameter("centroids").detach())
        nearest = torch.searchsorted((ordered[1:] + ordered[:-1]) / 2, weight.contiguous())
        clustered.get_buffer("indices").copy_(order[nearest])


class ClusterTrainer:
    """Clusters each given layer's weight into at most ``k`` values (zero included) with trainable centroids."""

    def __init__(self, layers: dict[str, torch.nn.Module], k: int, init: str = "density", seed: int = 0) -> None:
        import torch
        from torch.nn.utils import parametrize

        if k < 2:
            raise ValueError(f"k must be >= 2, got {k}")
        if init not in CLUSTER_INITS:
            raise ValueError(f"init must be one of {', '.join(CLUSTER_INITS)}, got {init!r}")
        self.layers = dict(layers)
        self.clusters: dict[str, torch.nn.Module] = {}
        parametrization = _parametrization_class()
        for name, module in self.layers.items():
            with torch.no_grad():
                weight = module.weight
                assert isinstance(weight, torch.Tensor)
                keep = weight != 0
                if not bool(keep.any()):
                    continue  # nothing to cluster: the layer is all zeros and stays so
                shared = k if bool(keep.all()) else k - 1
                values = weight[keep].detach().cpu().double().numpy()
                centroids, labels = kmeans_1d(values, shared, init, seed)
                indices = torch.zeros(weight.shape, dtype=torch.long, device=weight.device)
                indices[keep] = torch.from_numpy(labels).to(device=weight.device, dtype=torch.long)
                clustered = parametrization(torch.from_numpy(centroids).to(weight), keep, indices)
            parametrize.register_parametrization(module, "weight", clustered)
            self.clusters[name] = clustered

    def on_step(self, step: int) -> None:
        """Called after each optimizer step: move each weight to its nearest centroid (tfmot's pulling indices)."""
        for name, clustered in self.clusters.items():
            _assign(clustered, stacked_input(self.layers[name], clustered))

    def strip(self) -> dict[str, int]:
        """Bake the clustered weights into plain parameters (removing the weight's parametrizations, those below
        and above included); returns each layer's number of distinct values (<= k, zero included)."""
        import torch
        from torch.nn.utils import parametrize

        result = {}
        for name, module in self.layers.items():
            if parametrize.is_parametrized(module, "weight"):
                parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
            weight = module.weight
            assert isinstance(weight, torch.Tensor)
            result[name] = int(torch.unique(weight.detach()).numel())
        return result
