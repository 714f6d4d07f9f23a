"""What one sweep cell does with the rest of edgebench: plan checks against the real registries,
conversion through the artifact cache, and a benchmark job on the cell's device."""

from __future__ import annotations

from pathlib import Path

from edgebench import artifacts
from edgebench.bench import BenchRequest, run_bench
from edgebench.compress.recipe import parse_recipe
from edgebench.config import SweepSpec
from edgebench.convert import CONVERTERS
from edgebench.result import Result
from edgebench.sweep import Cell, Plan, make_plan
from edgebench.targets import resolve


def canonical_recipe(text: str) -> str:
    return parse_recipe(text).canonical


def build_plan(spec: SweepSpec, base_dir: Path, source: str) -> Plan:
    return make_plan(spec, base_dir, source, set(CONVERTERS), canonical_recipe)


def convert_cell(plan: Plan, conversion: tuple[str, str, str], cache_dir: Path | None) -> tuple[Path, bool]:
    """Make (or find in the cache) the artifact of one (model, recipe, format)."""
    name, recipe, fmt = conversion
    model = plan.model(name)
    target = resolve(plan.path(model.path), fmt, parse_recipe(recipe).precision, recipe,
                     plan.path(model.calibration), cache_dir)
    return target.main, bool(target.cache_hit)


def cached(plan: Plan, conversion: tuple[str, str, str], cache_dir: Path | None) -> bool:
    """Whether the artifact of (model, recipe, format) is already in the cache; checks its inputs too
    (e.g. an int8 recipe without a calibration set), raising the error the conversion would raise."""
    name, recipe, fmt = conversion
    model = plan.model(name)
    return artifacts.ensure(plan.path(model.path), fmt, recipe=recipe, calibration=plan.path(model.calibration),
                            root=cache_dir, only_cached=True) is not None


def bench_cell(plan: Plan, cell: Cell, cache_dir: Path | None) -> Result:
    """One measurement; the artifact comes from the cache the conversion step filled."""
    model = cell.model
    options = cell.options_dict
    req = BenchRequest(
        model=plan.path(model.path), device=cell.device, dataset=plan.path(model.dataset),
        batch=options.get("batch"), threads=options.get("threads"),
        shapes={k: tuple(v) for k, v in model.shapes.items()}, ranges=dict(model.input_ranges),
        values=dict(model.input_values), timing=plan.spec.timing, output=model.output, name=model.name,
        recipe=cell.recipe, format=cell.format, precision=parse_recipe(cell.recipe).precision,
        calibration=plan.path(model.calibration), cache_dir=cache_dir, timeout_s=plan.spec.cell_timeout_s)
    return run_bench(req, plan.profiles[cell.device])
