"""Sweep planning: a spec becomes the matrix of cells it asks for, checked before anything runs.

Every mistake in a spec (an unknown recipe step, format or device, a missing file, the same cell
twice) is refused here, naming the field, so a sweep never fails an hour in on a typo.
"""

from __future__ import annotations

import fnmatch
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from edgebench.config import DeviceProfile, SweepModel, SweepSpec, load_profile, load_yaml, parse_model
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.formats import get as get_format
from edgebench.result import CellKey
from edgebench.sources.hub import HubModel

AS_IS = ("onnx", "fp32")  # the source itself: nothing to convert


@dataclass(frozen=True)
class Cell:
    model: SweepModel
    recipe: str
    format: str
    device: str  # the profile's name, as results record it
    options: tuple[tuple[str, int], ...]

    @property
    def options_dict(self) -> dict[str, int]:
        return dict(self.options)

    @property
    def key(self) -> CellKey:
        """Matches ``Result.cell_key`` of the result this cell produces."""
        return CellKey.of(self.model.name, self.recipe, self.format, self.device, self.options_dict)

    @property
    def needs_conversion(self) -> bool:
        return (self.format, self.recipe) != AS_IS

    @property
    def conversion(self) -> tuple[str, str, str]:
        return (self.model.name, self.recipe, self.format)

    def label(self) -> str:
        opts = ",".join(f"{k}={v}" for k, v in self.options)
        return f"{self.model.name} {self.recipe} {self.format} @ {self.device} [{opts}]"

    def axes(self) -> dict[str, str]:
        return {"model": self.model.name, "recipe": self.recipe, "format": self.format, "device": self.device,
                **{k: str(v) for k, v in self.options}}


@dataclass
class Plan:
    spec: SweepSpec
    base_dir: Path
    profiles: dict[str, DeviceProfile]
    cells: list[Cell] = field(default_factory=list)
    skipped: list[tuple[Cell, str]] = field(default_factory=list)
    hubs: dict[str, HubModel] = field(default_factory=dict)  # model name → its hub ONNX, for a source model

    @property
    def conversions(self) -> list[tuple[str, str, str]]:
        """Each (model, recipe, format) the host converts once, in first-use order. A TensorRT engine is
        GPU-specific and built by the runner on the device; the host prepares the ONNX it is built from."""
        return list(dict.fromkeys(c.conversion for c in self.cells if c.needs_conversion))

    def model(self, name: str) -> SweepModel:
        return next(m for m in self.spec.models if m.name == name)

    def source(self, model: SweepModel) -> Path:
        """The model's ONNX: its ``path`` (relative to the spec file), or for a source model (Keras, SavedModel,
        PyTorch) the hub ONNX it was exported to (``hubs``)."""
        hub = self.hubs.get(model.name)
        return hub.onnx if hub is not None else self.base_dir / Path(model.path).expanduser()

    def path(self, relative: str | None) -> Path | None:
        return None if relative is None else (self.base_dir / Path(relative).expanduser())


def load_spec(path: Path) -> tuple[SweepSpec, Path]:
    spec = parse_model(SweepSpec, load_yaml(path, "sweep spec"), str(path))
    return spec, path.resolve().parent


def _matches(cell: Cell, rule: dict[str, str]) -> bool:
    axes = cell.axes()
    return all(fnmatch.fnmatchcase(axes.get(k, ""), str(v)) for k, v in rule.items())


def _duplicates(values: list[str]) -> list[str]:
    return sorted({v for v in values if values.count(v) > 1})


def _missing_here(fmt: str, profile: DeviceProfile) -> str | None:
    """For a device that runs the runner in this interpreter: the format's runtime when it is not installed."""
    if profile.connection.type != "local" or profile.python is not None:
        return None
    return get_format(fmt).runtime_missing_here()


def make_plan(spec: SweepSpec, base_dir: Path, source: str, known_formats: set[str],
              canonical_recipe: Any) -> Plan:
    """Expand and check the matrix. ``canonical_recipe`` parses a recipe (raising on a bad one)
    and returns its canonical text, so `int8+prune:0.5` is refused and `prune:.5` equals `prune:0.5`."""
    for axis, values in (("models", [m.name for m in spec.models]), ("recipes", spec.recipes),
                         ("formats", spec.formats), ("devices", spec.devices)):
        dup = _duplicates(values)
        if dup:
            hint = " (a model without a name is named after its file: give each model its own name)" \
                if axis == "models" else ""
            raise EdgebenchError(f"{source}: {axis} lists {', '.join(dup)} more than once: each cell must be "
                                 f"defined once{hint}", ExitStatus.CONFIG)
    for fmt in spec.formats:
        if fmt not in known_formats:
            raise EdgebenchError(f"{source}: unknown format {fmt!r} in formats: use one of "
                                 f"{', '.join(sorted(known_formats))}", ExitStatus.CONFIG)
    recipes = []
    for text in spec.recipes:
        try:
            recipes.append(canonical_recipe(text))
        except EdgebenchError as exc:
            raise EdgebenchError(f"{source}: recipes: {exc}", ExitStatus.CONFIG) from None
    dup = _duplicates(recipes)
    if dup:
        raise EdgebenchError(f"{source}: recipes name {', '.join(dup)} twice (in different spellings): "
                             "each cell must be defined once", ExitStatus.CONFIG)
    plan = Plan(spec, base_dir, {})
    for model in spec.models:
        for what in ("path", "dataset", "calibration", "finetune", "teacher", "train_config"):
            p = plan.path(getattr(model, what))
            if p is not None and not (p.is_file() or (what == "path" and p.is_dir())):  # a SavedModel is a folder
                raise EdgebenchError(f"{source}: model {model.name!r} {what} not found: {p} — fix the path "
                                     "(relative paths are relative to the spec file)", ExitStatus.NOT_FOUND)
    for ref in spec.devices:
        profile = load_profile(ref, base_dir)  # a profile path, like a model path, is relative to the spec
        if profile.name in plan.profiles:
            raise EdgebenchError(f"{source}: devices {ref!r} and another entry are both profile "
                                 f"{profile.name!r}: list each device once", ExitStatus.CONFIG)
        plan.profiles[profile.name] = profile
    option_axes = sorted(spec.options.items())
    for model, recipe, fmt, device in itertools.product(spec.models, recipes, spec.formats, plan.profiles):
        profile = plan.profiles[device]
        defaults = {"threads": profile.threads, "batch": 1}
        combos: Iterable[tuple[Any, ...]] = itertools.product(*[v for _, v in option_axes]) if option_axes else [()]
        for combo in combos:
            options = {**defaults, **dict(zip([k for k, _ in option_axes], combo))}
            cell = Cell(model, recipe, fmt, device, tuple(sorted(options.items())))
            if spec.include and not any(_matches(cell, r) for r in spec.include):
                continue
            if any(_matches(cell, r) for r in spec.exclude):
                continue
            runtime = get_format(fmt).runtime
            if runtime not in profile.runtimes:
                plan.skipped.append((cell, f"{device} has no {runtime} (its profile's runtimes: "
                                           f"{', '.join(profile.runtimes)})"))
                continue
            missing = _missing_here(fmt, profile)
            if missing:
                plan.skipped.append((cell, missing))
                continue
            plan.cells.append(cell)
    if not plan.cells:
        raise EdgebenchError(f"{source}: the spec selects no runnable cell ({len(plan.skipped)} skipped): check "
                             "formats against the devices' runtimes and the include/exclude filters", ExitStatus.CONFIG)
    return plan
