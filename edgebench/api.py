"""edgebench's Python API: the CLI's commands as functions that return the typed records (docs/python-api.md).

Each function takes the command's options as keyword arguments named like them (``device``, ``dataset``,
``format``, ``recipe``, ``shapes`` …; paths as ``str`` or ``Path``) and calls the same pipeline the command
calls. Nothing is printed. A mistake that is the caller's to fix raises :class:`edgebench.errors.EdgebenchError`
with the one-line message and the ``status`` the CLI would exit with.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, TypeAlias

from edgebench.artifacts import cache as artifacts
from edgebench.compress.graph import layer_selection
from edgebench.config import GateSpec, SweepSpec, TimingSpec, gate_spec, load_gate_spec, parse_model
from edgebench.data.inputs import check_shapes
from edgebench.data.source import load_onnx_info
from edgebench.environment import Environment
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.formats import parse_formats
from edgebench.pipeline.ab import AB_TIMING, ABRounds, Budget, gate_rounds, run_sequential
from edgebench.pipeline.bench import BenchRequest, hub_source, model_name, run_bench
from edgebench.pipeline.compare import Criteria, Row, compare as run_compare
from edgebench.pipeline.gate import GateReport, is_stored_run, load_results, run_gate
from edgebench.pipeline.noise import NoiseFloor, store_floors
from edgebench.pipeline.sweep.cells import build_plan
from edgebench.pipeline.sweep.plan import Cell, Plan
from edgebench.pipeline.sweep.run import Events, Outcome
from edgebench.pipeline.sweep.shard import check_run_name, parse_shard, shard_plan
from edgebench.pipeline.sweep.stored import plan_sweep, resume_point, run_plan, shard_point
from edgebench.report import ReportData, write_report
from edgebench.result import Result, read_results as _read, write_results as _write
from edgebench.store.base import RunInfo
from edgebench.store.db import DEFAULT_PATH
from edgebench.store.locate import default_location, open_store, resolve, shown
from edgebench.devices.leases import use_lease_pool
from edgebench.store.runs import load_run, record_bench, write_csv
from edgebench.training.finetune import Finetune
from edgebench.training.module import ModuleResult, compress_module
from edgebench.training.spec import TrainSpec

if TYPE_CHECKING:
    import torch

__all__ = ["ABRun", "ModuleResult", "SweepRun", "TrainSpec", "ab", "bench", "compare", "compress", "compress_module",
           "convert", "export", "gate", "noise", "plan", "read_results", "report", "results", "runs", "sweep",
           "write_results"]

PathLike: TypeAlias = str | Path
Shapes: TypeAlias = Mapping[str, Sequence[int]] | None
Ranges: TypeAlias = Mapping[str, tuple[float, float]] | None
Timing: TypeAlias = TimingSpec | Mapping[str, float] | None
Side: TypeAlias = str | Path | int | Sequence[Result]  # a result file, a run id or name, or results
Rules: TypeAlias = PathLike | GateSpec | Mapping[str, Any] | None
Model: TypeAlias = "PathLike | torch.nn.Module"  # a model file (or SavedModel folder), or a module to export
Examples: TypeAlias = "Sequence[torch.Tensor] | None"
DEFAULT_FORMATS = ("onnx", "openvino", "tflite")  # compare's


@dataclass(frozen=True)
class SweepRun:
    """A sweep filed in the store: the run, every result it holds (resumed cells too, in the order they
    finished) and what this call did (``outcome``: the cells measured now, conversions, cache hits)."""

    run: RunInfo
    results: list[Result]
    outcome: Outcome

    @property
    def run_id(self) -> int:
        return self.run.id


@dataclass(frozen=True)
class ABRun:
    """Paired A/B rounds: each side's runs pooled into one result, and the gate's verdicts on B against A."""

    baseline: Result
    candidate: Result
    report: GateReport
    rounds: ABRounds  # the round ratios and decisions per latency metric, why and when the rounds stopped


def _finetune(data: PathLike | None, teacher: PathLike | None, config: PathLike | None,
              output: str | None) -> Finetune | None:
    if data is None:
        if teacher is not None or config is not None:
            raise EdgebenchError("teacher and train_config apply to fine-tuning: pass finetune= (a labelled .npz) too",
                                 ExitStatus.USAGE)
        return None
    return Finetune(Path(data).expanduser(), _path(teacher), _path(config), output)


def _path(value: PathLike | None) -> Path | None:
    return None if value is None else Path(value).expanduser()


def _shapes(shapes: Shapes) -> dict[str, tuple[int, ...]]:
    return {name: tuple(int(d) for d in dims) for name, dims in (shapes or {}).items()}


def _ranges(ranges: Ranges) -> dict[str, tuple[float, float]]:
    """``input_ranges`` as ``--input-range`` takes them: [low, high) with low < high."""
    found = {name: (float(low), float(high)) for name, (low, high) in (ranges or {}).items()}
    for name, (low, high) in found.items():
        if not low < high:
            raise EdgebenchError(f"bad input_ranges[{name!r}] ({low:g}, {high:g}): give (LOW, HIGH) with LOW < HIGH "
                                 "(e.g. (0, 30522))", ExitStatus.USAGE)
    return found


def _model(model: Model, example_inputs: Examples, cache_dir: PathLike | None,
           shapes: Mapping[str, tuple[int, ...]]) -> tuple[Path, str | None, dict[str, Any] | None]:
    """The ONNX a call works on, the name its results take by default and its source record: a path as it is (a
    Keras, SavedModel or PyTorch file exported to its hub ONNX first); a ``torch.nn.Module`` exported with
    torch.export and the dynamo exporter from ``example_inputs`` (docs/sources.md)."""
    from edgebench.artifacts.cache import cache_root
    from edgebench.sources.hub import module_to_hub

    if isinstance(model, (str, Path)):
        if example_inputs is not None:
            raise EdgebenchError("example_inputs apply to a torch.nn.Module; a model file carries its own: drop them",
                                 ExitStatus.USAGE)
        path = Path(model).expanduser()
        hub = hub_source(path, _path(cache_dir), shapes)
        return (path, None, None) if hub is None else (hub.onnx, model_name(path), hub.record())
    if example_inputs is None:
        raise EdgebenchError(f"a {type(model).__name__} is exported with torch.export, which needs example inputs: "
                             "pass example_inputs=(tensor, …), one per forward() argument", ExitStatus.USAGE)
    made = module_to_hub(model, tuple(example_inputs), cache_root(_path(cache_dir)))
    return made.onnx, type(model).__name__, made.record()


def _timing(timing: Timing) -> TimingSpec:
    if timing is None or isinstance(timing, TimingSpec):
        return timing or TimingSpec()
    return parse_model(TimingSpec, dict(timing), "timing")


def _formats(formats: str | Sequence[str]) -> list[str]:
    return parse_formats(formats if isinstance(formats, str) else ",".join(formats))


def bench(model: Model, *, example_inputs: Examples = None, device: str = "local-cpu",
          dataset: PathLike | None = None,
          format: str | None = None, precision: str | None = None, recipe: str | None = None,
          calibration: PathLike | None = None, batch: int | None = None, threads: int | None = None,
          shapes: Shapes = None, input_ranges: Ranges = None, input_values: Mapping[str, float] | None = None,
          options: Mapping[str, Any] | None = None, timing: Timing = None, output: str | None = None,
          include: Sequence[str] = (), exclude: Sequence[str] = (), all_layers: bool = False,
          name: str | None = None, cache_dir: PathLike | None = None, store: PathLike | None = None,
          finetune: PathLike | None = None, teacher: PathLike | None = None, train_config: PathLike | None = None,
          progress: Callable[[str], None] | None = None, profile: bool = False, route: str = "auto") -> Result:
    """``edgebench bench``: one model or artifact on one device (``format``/``recipe``: converted through the
    cache first; ``finetune``: fine-tuned on that labelled .npz, as :func:`compress`). ``options`` are the
    runtime's (``--option``); ``timing`` a :class:`TimingSpec` or a mapping of its fields; ``profile``: also
    per-layer times (``--profile``, ``Result.profile``); ``route="hub"``: a source model's format converted through
    its ONNX even where a direct route exists (``--route``). With ``store``, the result is also filed there as a
    finished run named ``bench-<model name>``. ``model``: a file (.onnx, an artifact, or a Keras, SavedModel or
    PyTorch model exported to ONNX first), or a ``torch.nn.Module`` with ``example_inputs`` (a tuple of tensors,
    one per ``forward`` argument), exported with torch.export (named after its class). Returns the
    :class:`~edgebench.result.Result`; ``result.model.source`` says what was exported and how."""
    sizes = _shapes(shapes)
    model_path, default_name, source = _model(model, example_inputs, cache_dir, sizes)
    req = BenchRequest(
        model=model_path, device=device, dataset=_path(dataset), batch=batch, threads=threads,
        shapes=sizes, ranges=_ranges(input_ranges), values=dict(input_values or {}), output=output,
        backend_options=dict(options or {}), format=format, precision=precision, recipe=recipe,
        calibration=_path(calibration), cache_dir=_path(cache_dir), timing=_timing(timing),
        layers=layer_selection(include, exclude, all_layers), name=name or default_name, source=source,
        finetune=_finetune(finetune, teacher, train_config, output), progress=progress, profile=profile,
        route=route)
    use_lease_pool(resolve(store) if store is not None else default_location())
    result = run_bench(req)
    if store is not None:
        record_bench(resolve(store), result, model_path)
    return result


def convert(model: Model, to: str | Sequence[str] = ("onnx",), *, example_inputs: Examples = None,
            precision: str | None = None,
            recipe: str | None = None, calibration: PathLike | None = None, shapes: Shapes = None,
            include: Sequence[str] = (), exclude: Sequence[str] = (), all_layers: bool = False, seed: int = 0,
            cache_dir: PathLike | None = None, finetune: PathLike | None = None, teacher: PathLike | None = None,
            train_config: PathLike | None = None, progress: Callable[[str], None] | None = None,
            route: str = "auto") -> list[artifacts.CachedArtifact]:
    """``edgebench convert``: the model in each format of ``to`` (a list, or ``"onnx,openvino"``), through the
    artifact cache. Returns one :class:`~edgebench.artifacts.cache.CachedArtifact` per format: its folder, its
    typed ``meta`` (files, sizes, cost metrics, preservation) and whether the cache had it (``hit``).
    ``finetune`` (a labelled .npz), ``teacher`` and ``train_config``: as --finetune, --teacher, --train-config;
    ``progress`` gets fine-tuning's epoch lines. ``model``/``example_inputs``/``route``: as :func:`bench` takes
    them; ``meta.route`` says how each artifact was converted."""
    sizes = _shapes(shapes)
    source, _, _ = _model(model, example_inputs, cache_dir, sizes)  # the artifacts' meta.json record it (origin)
    check_shapes(load_onnx_info(source).inputs, sizes)  # a bad model or shape: refused before converting
    canonical = artifacts.effective_recipe(recipe, precision).canonical
    selection = layer_selection(include, exclude, all_layers)
    training = _finetune(finetune, teacher, train_config, None)
    return [artifacts.ensure(source, fmt, recipe=canonical, calibration=_path(calibration), root=_path(cache_dir),
                             shapes=sizes, selection=selection, seed=seed, finetune=training, progress=progress,
                             route=route)
            for fmt in _formats(to)]


def compress(model: Model, recipe: str, *, to: str | Sequence[str] = ("onnx",), example_inputs: Examples = None,
             calibration: PathLike | None = None, shapes: Shapes = None, include: Sequence[str] = (),
             exclude: Sequence[str] = (), all_layers: bool = False, seed: int = 0,
             cache_dir: PathLike | None = None, finetune: PathLike | None = None, teacher: PathLike | None = None,
             train_config: PathLike | None = None,
             progress: Callable[[str], None] | None = None) -> list[artifacts.CachedArtifact]:
    """``edgebench compress``: the model compressed with ``recipe`` (``prune:0.8+cluster:16+int8``) in each
    format. Returns the artifacts as :func:`convert` does; ``meta`` holds what the recipe bought (``size_ratio``,
    ``sparsity``, ``max_unique_values`` …) and whether the produced file kept it (``preservation``).
    ``finetune``: a labelled .npz (one array per model input + integer ``labels``) to train the recipe's steps
    on (gradual pruning, trained centroids, QAT for int8; ``meta.weights.training`` holds the epochs' loss and
    held-out top-1); for a ``torch.nn.Module`` of your own see :func:`compress_module` (or pass it with
    ``example_inputs`` to compress its export)."""
    return convert(model, to, example_inputs=example_inputs, recipe=recipe, calibration=calibration, shapes=shapes,
                   include=include, exclude=exclude, all_layers=all_layers, seed=seed, cache_dir=cache_dir,
                   finetune=finetune, teacher=teacher, train_config=train_config, progress=progress)


def compare(model: Model, formats: str | Sequence[str] = DEFAULT_FORMATS, *, example_inputs: Examples = None,
            dataset: PathLike | None = None,
            precision: str | None = None, recipe: str | None = None, device: str = "local-cpu",
            threads: int | None = None, output: str | None = None, task: str = "auto",
            calibration: PathLike | None = None, criteria: Mapping[str, Criteria] | None = None,
            shapes: Shapes = None, input_ranges: Ranges = None, input_values: Mapping[str, float] | None = None,
            include: Sequence[str] = (), exclude: Sequence[str] = (), all_layers: bool = False,
            cache_dir: PathLike | None = None) -> list[Row]:
    """``edgebench compare``: every format on the same data, each output judged against the fp32 ONNX Runtime
    reference. ``criteria`` replaces the defaults (``DEFAULT_CRITERIA``) of the precisions it names. Returns one
    :class:`~edgebench.pipeline.compare.Row` per format; a format that fails the criteria is ``passed=False``
    with its ``failures`` (not an exception, unlike the CLI's exit 1), one that fails to run has ``error``.
    ``model``/``example_inputs``: as :func:`bench` takes them."""
    onnx, _, _ = _model(model, example_inputs, cache_dir, _shapes(shapes))
    return run_compare(onnx, _formats(formats), _path(dataset), precision, device, threads,
                       output, _path(calibration), _path(cache_dir), criteria=dict(criteria or {}), recipe=recipe,
                       task=task, shapes=_shapes(shapes), ranges=_ranges(input_ranges),
                       values=dict(input_values or {}), layers=layer_selection(include, exclude, all_layers))


def plan(spec: PathLike | SweepSpec | Mapping[str, Any], *, base_dir: PathLike | None = None,
         cache_dir: PathLike | None = None) -> Plan:
    """``edgebench sweep --dry-run``: the checked plan of a spec — a YAML path, a :class:`SweepSpec`, or a
    mapping of its fields (their paths relative to ``base_dir``, default the current folder). Returns the
    :class:`~edgebench.pipeline.sweep.plan.Plan`: ``cells``, ``conversions`` and the ``skipped`` cells with why;
    its Keras, SavedModel and PyTorch models are exported to ONNX into ``cache_dir`` (``hubs``)."""
    if isinstance(spec, (str, Path)):
        return plan_sweep(Path(spec).expanduser(), _path(cache_dir))
    parsed = spec if isinstance(spec, SweepSpec) else parse_model(SweepSpec, dict(spec), "sweep spec")
    return build_plan(parsed, Path(base_dir or Path.cwd()).expanduser().resolve(), f"sweep spec {parsed.name!r}",
                      _path(cache_dir))


class _Silent:
    """The sweep's events, unheard."""

    def conversion_started(self, conversion: tuple[str, str, str]) -> None: ...
    def conversion_done(self, conversion: tuple[str, str, str], hit: bool, error: str | None) -> None: ...
    def cell_started(self, cell: Cell) -> None: ...
    def cell_done(self, cell: Cell, result: Result) -> None: ...
    def stopping(self, in_flight: int, at_once: bool) -> None: ...


def sweep(spec: PathLike | SweepSpec | Mapping[str, Any], *, store: PathLike = DEFAULT_PATH,
          resume: str | int | None = None, cache_dir: PathLike | None = None, base_dir: PathLike | None = None,
          events: Events | None = None, run: str | None = None, shard: str | None = None) -> SweepRun:
    """``edgebench sweep``: plan the spec (as :func:`plan` takes it), convert each (model, recipe, format) once,
    measure every cell and file each in ``store`` at once; ``resume`` (a run id or name) runs only what that run
    lacks. ``run`` names the run; with ``shard`` (``"I/N"``, as ``--shard``) only that shard's cells run, into
    the shared run ``run`` every shard fills. A failed cell is a result with ``status="error"``, not an
    exception. ``events`` hears the progress (``pipeline.sweep.run.Events``). Returns the :class:`SweepRun`
    (a shard's: its own cells); an interrupted sweep raises EdgebenchError (status INTERRUPTED) after keeping its
    finished cells."""
    part = None if shard is None else parse_shard(shard)
    if part is not None and run is None:
        raise EdgebenchError(f"shard={shard!r} needs run=NAME: the run the shards share", ExitStatus.USAGE)
    if run is not None:
        if resume is not None:
            raise EdgebenchError("run= names a new run (or a shard's shared run); resume= continues one: pass one "
                                 "of them", ExitStatus.USAGE)
        check_run_name(run)
    planned = plan(spec, base_dir=base_dir, cache_dir=cache_dir)
    if part is not None:
        planned = shard_plan(planned, part)
    store_path = resolve(store)
    use_lease_pool(store_path)  # a PostgreSQL store: its database leases the boards to every host
    with open_store(store_path) as db:
        if part is not None and run is not None:
            run_id, done = shard_point(db, planned, run, part, join=True)
        else:
            run_id, done = resume_point(db, planned, None if resume is None else str(resume))
        run_id, outcome = run_plan(planned, db, run_id, done, _path(cache_dir), events or _Silent(), name=run,
                                   shard=part)
        if outcome.interrupted:
            again = f"shard={shard!r}, run={run!r}" if part is not None else f"resume={run_id}"
            raise EdgebenchError(f"interrupted: finished cells are stored in {shown(store_path)}; continue with "
                                 f"sweep(spec, {again})", ExitStatus.INTERRUPTED)
        mine = {cell.key for cell in planned.cells}
        found = [r for r in db.results(run_id) if part is None or r.cell_key in mine]
        return SweepRun(db.run(run_id), found, outcome)


def runs(*, store: PathLike = DEFAULT_PATH, limit: int | None = None) -> list[RunInfo]:
    """``edgebench results list``: the store's runs, newest first, as :class:`~edgebench.store.base.RunInfo`."""
    with open_store(resolve(store), read_only=True) as db:
        return db.runs(limit=limit)


def results(run: str | int | None = None, *, store: PathLike = DEFAULT_PATH) -> list[Result]:
    """``edgebench results show``: the results of one run (an id or a name; None: the newest), in the order its
    cells finished."""
    return load_run(resolve(store), None if run is None else str(run))[1]


def export(run: str | int | None = None, *, csv: PathLike | None = None, json: PathLike | None = None,
           store: PathLike = DEFAULT_PATH) -> list[Result]:
    """``edgebench results export``: write one run (None: the newest) as CSV (one flat row per cell) and/or
    JSON (the list of full results, the form :func:`gate` reads). Returns the run's results."""
    if csv is None and json is None:
        raise EdgebenchError("export needs csv=PATH and/or json=PATH", ExitStatus.USAGE)
    found = results(run, store=store)
    if csv is not None:
        write_csv(found, Path(csv).expanduser())
    if json is not None:
        write_results(found, json)
    return found


def report(run: str | int | None = None, *, store: PathLike = DEFAULT_PATH, html: PathLike | None = None,
           md: PathLike | None = None, max_accuracy_drop: float = 0.01) -> ReportData:
    """``edgebench report``: the HTML page and/or Markdown summary of one run (None: the newest; neither path:
    nothing written). Returns the :class:`~edgebench.report.data.ReportData` both show (per device: its cells,
    the Pareto front, the best)."""
    info, found = load_run(resolve(store), None if run is None else str(run))
    return write_report(found, info, _path(html), _path(md), max_accuracy_drop, store_floors(resolve(store)))


def noise(*, store: PathLike = DEFAULT_PATH) -> dict[str, NoiseFloor]:
    """``edgebench results noise``: each device's noise floor between the store's runs, from the A/A pairs (the
    same cell and artifact measured in two runs) it holds, as :class:`~edgebench.pipeline.noise.NoiseFloor`."""
    return store_floors(resolve(store))


def read_results(path: PathLike) -> list[Result]:
    """The results of a JSON file that ``bench``/``sweep``/``export`` wrote (one object or a list)."""
    return _read(Path(path).expanduser())


def write_results(results: Sequence[Result], path: PathLike) -> None:
    """Write ``results`` as a JSON list (atomically), the form :func:`gate` and ``edgebench gate`` read."""
    _write(list(results), Path(path).expanduser(), always_list=True)


def _side(ref: Side, store: PathLike) -> list[Result]:
    if isinstance(ref, (str, Path, int)):
        return load_results(str(ref), resolve(store))
    return list(ref)


def _rules(rules: Rules) -> GateSpec:
    if rules is None or isinstance(rules, GateSpec):
        return rules or GateSpec()
    if isinstance(rules, (str, Path)):
        return load_gate_spec(Path(rules).expanduser())
    return gate_spec(dict(rules), "gate rules")


def _write_gate(report: GateReport, md: PathLike | None, junit: PathLike | None) -> None:
    from edgebench.pipeline.gate_report import write_junit, write_markdown  # rich tables: only when asked

    if md is not None:
        write_markdown(report, Path(md))
    if junit is not None:
        write_junit(report, Path(junit))


def gate(baseline: Side, candidate: Side, *,
         store: PathLike = DEFAULT_PATH, rules: Rules = None, ci: bool | None = None,
         md: PathLike | None = None, junit: PathLike | None = None) -> GateReport:
    """``edgebench gate``: each side a result JSON file, a run id or name in ``store``, or a list of Results;
    ``rules`` a YAML path, a :class:`GateSpec` or a mapping of its fields (None: the built-in rules). Returns the
    :class:`~edgebench.pipeline.gate.GateReport` (``failed``, ``exit_status``, one ``Check`` per cell × metric);
    a regression is ``report.failed``, not an exception. ``ci``: whether an inconclusive verdict the rules leave
    unset fails (None: as the command decides, from ``$CI``). A side that is a stored run brings the devices'
    noise floors from ``store``. ``md``/``junit``: also write those reports."""
    spec = _rules(rules).for_ci(Environment().ci if ci is None else ci)
    sides = _side(baseline, store), _side(candidate, store)
    stored = any(isinstance(ref, (str, Path, int)) and is_stored_run(str(ref)) for ref in (baseline, candidate))
    result = run_gate(*sides, spec, store_floors(resolve(store)) if stored else None)
    _write_gate(result, md, junit)
    return result


def ab(baseline: PathLike, candidate: PathLike, *, device: str = "local-cpu",
       max_rounds: int = Budget.max_rounds, max_time_s: float = Budget.max_time_s,
       dataset: PathLike | None = None, batch: int | None = None, threads: int | None = None,
       shapes: Shapes = None, input_ranges: Ranges = None, input_values: Mapping[str, float] | None = None,
       timing: Timing = None, rules: Rules = None, ci: bool | None = None,
       name: str | None = None, md: PathLike | None = None, junit: PathLike | None = None) -> ABRun:
    """``edgebench ab``: round pairs A B, B A … on one device until the sequential test proves the latency
    verdict or the budget (``max_rounds`` pairs, ``max_time_s``) is spent, then the gate's other metrics on the
    pooled runs (``timing`` per run, default ``AB_TIMING`` as the command's; ``ci`` as for :func:`gate`).
    Returns the :class:`ABRun`."""
    spec = _rules(rules).for_ci(Environment().ci if ci is None else ci)
    run_timing = _timing(timing) if timing is not None else AB_TIMING
    budget = Budget(max_rounds, max_time_s)
    sizes, ranges, values = _shapes(shapes), _ranges(input_ranges), dict(input_values or {})
    a, b = (BenchRequest(model=Path(m).expanduser(), device=device, dataset=_path(dataset), batch=batch,
                         threads=threads, timing=run_timing, name=name, shapes=sizes, ranges=ranges, values=values)
            for m in (baseline, candidate))
    use_lease_pool(default_location())
    rounds = run_sequential((a, b), spec, budget)
    verdicts = gate_rounds(rounds, (a, b), spec, budget)
    _write_gate(verdicts, md, junit)
    return ABRun(rounds.pooled[0], rounds.pooled[1], verdicts, rounds)
