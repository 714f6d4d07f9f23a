"""Compression: recipe grammar, pruning, clustering, format-native quantization and cost metrics.

Weight steps (prune, cluster) act on float ONNX and are format-independent; quantization is native to
each format (onnxruntime.quantization for ONNX, NNCF for OpenVINO). See docs/compression.md.
"""

from edgebench.compress.graph import LayerSelection
from edgebench.compress.recipe import Recipe, Step, parse_recipe

__all__ = ["LayerSelection", "Recipe", "Step", "parse_recipe"]
