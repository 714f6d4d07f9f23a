"""What one sweep cell does with the rest of edgebench: plan checks against the real registries,
conversion through the artifact cache, and a benchmark job on the cell's device."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from edgebench.artifacts import cache as artifacts
from edgebench.pipeline.bench import BenchRequest, conversion_shapes, execute, hub_source, model_name
from edgebench.compress.graph import LayerSelection, layer_selection
from edgebench.compress.recipe import parse_recipe
from edgebench.config import SweepModel, SweepSpec
from edgebench.data.inputs import check_output, check_shapes, plan_dataset
from edgebench.formats.calibration import check_calibration
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.formats import names as format_names
from edgebench.result import Result
from edgebench.data.source import TensorSpec, load_onnx_info
from edgebench.pipeline.sweep.plan import Cell, Plan, make_plan
from edgebench.artifacts.targets import Target, resolve
from edgebench.training.finetune import Finetune


def canonical_recipe(text: str) -> str:
    return parse_recipe(text).canonical


def with_names(spec: SweepSpec, base_dir: Path) -> SweepSpec:
    """``spec`` with every model named: its ``name``, else its file's name by bench's rule (``model_name``), so a
    sweep and a bench of the same file make the same cell key and gate against each other."""
    models = [m if m.name else m.model_copy(update={"name": model_name(base_dir / Path(m.path).expanduser())})
              for m in spec.models]
    return spec.model_copy(update={"models": models})


def build_plan(spec: SweepSpec, base_dir: Path, source: str, cache_dir: Path | None = None) -> Plan:
    """The checked plan of ``spec``; a source model (Keras, SavedModel, PyTorch) is exported to its hub ONNX in the
    artifact cache ``cache_dir`` here, once, so that its inputs, dataset and calibration set are checked against
    that ONNX before any cell runs."""
    spec = with_names(spec, base_dir)
    plan = make_plan(spec, base_dir, source, set(format_names()), canonical_recipe)
    for model in spec.models:
        try:
            hub = hub_source(plan.base_dir / Path(model.path).expanduser(), cache_dir, model_shapes(model))
        except EdgebenchError as exc:
            raise EdgebenchError(f"{source}: model {model.name!r}: {exc}", exc.status) from None
        if hub is not None:
            plan.hubs[model.name] = hub
    for model in spec.models:
        named = sorted({*model.input_ranges, *model.input_values})
        path = plan.source(model)
        if (model.shapes or named) and path.suffix.lower() == ".onnx":
            _check_inputs(load_onnx_info(path).inputs, model, named, f"{source}: model {model.name!r}")
        if path.suffix.lower() == ".onnx":
            _check_data(plan, model, path, f"{source}: model {model.name!r}")
    return plan


def _check_data(plan: Plan, model: SweepModel, path: Path, where: str) -> None:
    """A dataset, or the calibration set of an int8 recipe, that does not fit the model, holds NaN or Inf, or
    has labels past the model's classes, or an ``output`` the model lacks, is refused when the plan is made,
    before any cell runs."""
    dataset, calibration = plan.path(model.dataset), plan.path(model.calibration)
    int8 = any(name == model.name and parse_recipe(recipe).precision == "int8" for name, recipe, _ in plan.conversions)
    trains = [recipe for name, recipe, _ in plan.conversions if name == model.name and parse_recipe(recipe).trains]
    if trains:  # training data that does not fit (or is missing) refused before any cell runs
        from edgebench.training.prepare import check_training

        try:
            check_training(path, parse_recipe(trains[0]), model_finetune(plan, model))
        except EdgebenchError as exc:
            raise EdgebenchError(f"{where}: {exc}", exc.status) from None
    if dataset is None and calibration is None and model.output is None:
        return
    info = load_onnx_info(path)
    try:
        check_output(info.outputs, model.output)
        if dataset is not None:
            plan_dataset(dataset, info.inputs, None, model_shapes(model), dict(model.input_ranges),
                         dict(model.input_values), outputs=info.outputs, output=model.output)
        if calibration is not None:  # NaN in it refused for every format (TFLite takes its sample from it)
            check_calibration(path, calibration, int8, model_shapes(model))
    except EdgebenchError as exc:
        raise EdgebenchError(f"{where}: {exc}", exc.status) from None


def _check_inputs(inputs: tuple[TensorSpec, ...], model: SweepModel, named: list[str], where: str) -> None:
    """A typo in an input's name or shape is refused when the plan is made, not an hour into the sweep."""
    unknown = [n for n in named if n not in {i.name for i in inputs}]
    if unknown:
        raise EdgebenchError(f"{where}: input_ranges/input_values name {unknown[0]!r}, which is no input of the "
                             f"model (inputs: {', '.join(i.name for i in inputs)}): fix the name", ExitStatus.CONFIG)
    try:
        check_shapes(inputs, model_shapes(model))
    except EdgebenchError as exc:
        raise EdgebenchError(f"{where}: shapes: {exc}", ExitStatus.CONFIG) from None


def model_finetune(plan: Plan, model: SweepModel, recipe: str | None = None) -> Finetune | None:
    """The model's fine-tuning inputs (``finetune``, ``teacher``, ``train_config``) for a recipe that trains
    (with ``recipe`` None: for any); None for the others, so post-training recipes stay as they are."""
    data = plan.path(model.finetune)
    if data is None or (recipe is not None and not parse_recipe(recipe).trains):
        return None
    return Finetune(data, plan.path(model.teacher), plan.path(model.train_config), model.output)


def model_shapes(model: SweepModel) -> dict[str, tuple[int, ...]]:
    """The spec's sizes for dynamic dimensions: the bench and the conversions take the same ones, so a
    cell finds the artifact its conversion step made."""
    return {name: tuple(dims) for name, dims in model.shapes.items()}


def cell_shapes(plan: Plan, model: SweepModel, fmt: str) -> dict[str, tuple[int, ...]]:
    """The shapes the conversion fixes: the spec's, and the dataset's where a TFLite file needs them
    (what bench asks for the same cell, so the bench step finds the artifact this step made)."""
    path = plan.source(model)
    return conversion_shapes(path, fmt, plan.path(model.dataset), plan.path(model.calibration), model_shapes(model))


def model_layers(model: SweepModel) -> LayerSelection:
    """The spec's ``layers:`` of a model, for its conversions and its bench cells alike (one cache entry)."""
    return layer_selection(model.layers.include, model.layers.exclude, model.layers.all_layers)


def convert_cell(plan: Plan, conversion: tuple[str, str, str], cache_dir: Path | None) -> Target:
    """Make (or find in the cache) the artifact of one (model, recipe, format); its cells are measured on it."""
    name, recipe, fmt = conversion
    model = plan.model(name)
    target = resolve(plan.source(model), fmt, parse_recipe(recipe).precision, recipe,
                     plan.path(model.calibration), cache_dir, shapes=cell_shapes(plan, model, fmt),
                     selection=model_layers(model), finetune=model_finetune(plan, model, recipe))
    return target


def cached(plan: Plan, conversion: tuple[str, str, str], cache_dir: Path | None) -> bool:
    """Whether the artifact of (model, recipe, format) is already in the cache; checks its inputs too
    (e.g. an int8 recipe without a calibration set), raising the error the conversion would raise."""
    name, recipe, fmt = conversion
    model = plan.model(name)
    return artifacts.lookup(plan.source(model), fmt, recipe=recipe, calibration=plan.path(model.calibration),
                            root=cache_dir, shapes=cell_shapes(plan, model, fmt),
                            selection=model_layers(model), finetune=model_finetune(plan, model, recipe)) is not None


def bench_cell(plan: Plan, cell: Cell, cache_dir: Path | None, target: Target | None = None) -> Result:
    """One measurement, on ``target``: the artifact the conversion step resolved (None: the cell's model as it
    is, or one resolved here)."""
    model = cell.model
    options = cell.options_dict
    req = BenchRequest(
        model=plan.source(model), device=cell.device, dataset=plan.path(model.dataset),
        batch=options.get("batch"), threads=options.get("threads"),
        shapes=model_shapes(model), ranges=dict(model.input_ranges),
        values=dict(model.input_values), timing=plan.spec.timing, output=model.output, name=model.name,
        recipe=cell.recipe, format=cell.format, precision=parse_recipe(cell.recipe).precision,
        calibration=plan.path(model.calibration), cache_dir=cache_dir, timeout_s=plan.spec.cell_timeout_s,
        layers=model_layers(model), finetune=model_finetune(plan, model, cell.recipe),
        mode=plan.spec.mode, streams=plan.spec.streams, requests=plan.spec.requests, profile=plan.spec.profile,
        source=hub.record() if (hub := plan.hubs.get(model.name)) is not None else None)
    if target is not None and target.cache_hit is not None:
        target = dataclasses.replace(target, cache_hit=True)  # as before: the cell finds it in the cache
    return execute(req, plan.profiles[cell.device], target=target).result
