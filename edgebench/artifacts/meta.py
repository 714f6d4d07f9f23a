"""What an artifact's ``meta.json`` says beyond its files: the cost metrics results carry, and the outcome of
the preservation check (``preservation``: a ``Preservation`` value, with ``preservation_note`` beside it)."""

from __future__ import annotations

from typing import Any, Mapping

from edgebench.formats.readback import Preservation

# The cost metrics a result carries from its artifact (pipeline.bench.cost_metrics): counted on the produced
# files (formats.readback.costs), ratios against the fp32 artifact of the same format (compress.metrics.ratios).
COST_METRICS = ("params", "nonzero_params", "sparsity", "max_unique_values", "size_ratio", "gzip_ratio")

__all__ = ["COST_METRICS", "Preservation", "preservation"]


def preservation(meta: Mapping[str, Any]) -> Preservation | None:
    """The preservation check's outcome; None where the artifact was not made by edgebench's cache. A meta.json
    written before META_VERSION 4 (one copied out by ``compress --out``) held only the sentence: read once here."""
    value = meta.get("preservation")
    if not isinstance(value, str):
        return None
    try:
        return Preservation(value)
    except ValueError:  # an older meta.json: the sentence itself
        if value.startswith("nothing"):
            return Preservation.NOTHING
        return Preservation.CHECKED if value.startswith("checked") else Preservation.NOT_CHECKED


def preservation_note(meta: Mapping[str, Any]) -> str:
    """What was checked, in words (an older meta.json's ``preservation`` sentence)."""
    note = meta.get("preservation_note")
    if isinstance(note, str):
        return note
    value = meta.get("preservation")
    return value if isinstance(value, str) and value not in {p.value for p in Preservation} else ""
