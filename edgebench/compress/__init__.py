"""Compression steps that do not depend on the format: recipe grammar, pruning, clustering and cost metrics.

Weight steps (prune, cluster) act on float ONNX and are format-independent; quantization is native to
each format and lives with it (``edgebench.formats.<format>``). See docs/compression.md.
"""

from edgebench.compress.graph import LayerSelection
from edgebench.compress.recipe import Recipe, Step, parse_recipe

__all__ = ["LayerSelection", "Recipe", "Step", "parse_recipe"]
