"""The compression recipe grammar: ``prune:0.8+cluster:16+int8``.

A recipe is a chain of steps applied left to right. The order prune → cluster → quantize is enforced
because each step must preserve the previous one's effect (Han et al., "Deep Compression"; the TF Model
Optimization toolkit): clustering keeps zeros at zero, quantization keeps zeros and shared values. The
other way round, pruning would add a new value (zero) to a clustered layer and quantization error would
un-share clustered weights, so a different order is refused instead of silently producing a worse model.

Grammar (case-insensitive, steps joined by ``+``)::

    fp32 | fp16 | int8[:minmax|percentile|entropy] | int8-dynamic
    prune:S | prune-layer:S | prune-filters:S        S in (0, 1)
    lowrank:E                                         E in (0, 1]: the share of the squared singular values kept
    cluster:K[:density|linear|kmeans++|random]        2 <= K <= 65536
    distill[:T[:ALPHA]]                               knowledge distillation while fine-tuning (T > 0, ALPHA in [0, 1])
    finetune[:KEY=VALUE...]                           fine-tune each step on --finetune data (edgebench.training.spec)

``finetune`` makes every step training-aware (gradual pruning, trained centroids, QAT for int8); ``distill``
and ``finetune`` hold no weight edit of their own and come last in the canonical spelling.

In YAML a recipe is the same string or a list of steps, each a string (``"cluster:16"``) or a one-key
mapping (``{cluster: 16}``, ``{cluster: {k: 16, init: linear}}``, ``{int8: {calibration: entropy}}``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Union

from edgebench.errors import EdgebenchError, ExitStatus

PRECISIONS = ("fp32", "fp16", "int8", "int8-dynamic")
PRUNE_KINDS = ("prune", "prune-layer", "prune-filters")
CALIBRATION_METHODS = ("minmax", "percentile", "entropy")
CLUSTER_INITS = ("density", "linear", "kmeans++", "random")
TRAINING = ("distill", "finetune")
KNOWN = (*PRECISIONS, *PRUNE_KINDS, "lowrank", "cluster", *TRAINING)
DISTILL_DEFAULTS = (4.0, 0.5)  # temperature, alpha (Hinton et al. 2015)
# More shared values than this need an index wider than 16 bits, as wide as the fp16 weight it replaces.
MAX_CLUSTERS = 2**16
_HELP = ("steps: fp32, fp16, int8[:minmax|percentile|entropy], int8-dynamic, prune:S, prune-layer:S, "
         "prune-filters:S, lowrank:E, cluster:K[:density|linear|kmeans++|random], distill[:T[:ALPHA]], "
         "finetune[:KEY=VALUE...], joined by '+'")


@dataclass(frozen=True)
class Step:
    """One parsed step. ``value`` is S for pruning, E for lowrank, K for clustering and T for distill;
    ``option`` the init, the calibration or distill's alpha; ``settings`` finetune's ``KEY=VALUE`` pairs."""

    kind: str
    value: float | int | None = None
    option: str | None = None
    settings: tuple[tuple[str, str], ...] = ()

    @property
    def stage(self) -> int:
        """Position in the enforced order: structured prune, low-rank, magnitude prune, cluster, precision,
        then the training options (distill, finetune)."""
        order = {"prune-filters": 0, "lowrank": 1, "prune": 2, "prune-layer": 2, "cluster": 3, "distill": 5,
                 "finetune": 6}
        return order.get(self.kind, 4)

    @property
    def sparsity(self) -> float:
        """S of a pruning step."""
        if self.value is None:
            raise ValueError(f"recipe step {self.kind} has no sparsity")
        return float(self.value)

    @property
    def clusters(self) -> int:
        """K of a cluster step."""
        if self.value is None:
            raise ValueError(f"recipe step {self.kind} has no cluster count")
        return int(self.value)

    def canonical(self) -> str:
        if self.kind == "lowrank":
            return f"lowrank:{float(self.value or 0)!r}"
        if self.kind == "distill":
            temperature, alpha = float(self.value or 0), float(self.option or 0)
            return "distill" + (f":{temperature!r}:{alpha!r}" if (temperature, alpha) != DISTILL_DEFAULTS else "")
        if self.kind == "finetune":
            return ":".join(["finetune", *(f"{k}={v}" for k, v in self.settings)])
        if self.kind in PRUNE_KINDS:
            return f"{self.kind}:{self.sparsity!r}"  # repr: shortest exact spelling
        if self.kind == "cluster":
            return f"cluster:{self.value}" + (f":{self.option}" if self.option != "density" else "")
        if self.kind == "int8" and self.option != "minmax":
            return f"int8:{self.option}"
        return self.kind


@dataclass(frozen=True)
class Recipe:
    """A validated chain of steps; ``canonical`` is the stable spelling used in cache keys and results."""

    steps: tuple[Step, ...]

    @property
    def precision(self) -> str:
        return next((s.kind for s in self.steps if s.kind in PRECISIONS), "fp32")

    @property
    def weight_steps(self) -> tuple[Step, ...]:
        """The format-independent steps that rewrite float weights (pruning, low-rank, clustering)."""
        return tuple(s for s in self.steps if s.kind not in PRECISIONS and s.kind not in TRAINING)

    @property
    def trains(self) -> bool:
        """Whether the recipe fine-tunes (a ``finetune`` step: it needs training data)."""
        return self.find("finetune") is not None

    @property
    def needs_torch(self) -> bool:
        """Whether the recipe goes through PyTorch (edgebench.training): fine-tuning, or a low-rank step."""
        return self.trains or self.find("lowrank") is not None or self.find("distill") is not None

    @property
    def canonical(self) -> str:
        return "+".join(s.canonical() for s in self.steps) or "fp32"

    def find(self, kind: str) -> Step | None:
        return next((s for s in self.steps if s.kind == kind), None)

    def __str__(self) -> str:
        return self.canonical


def _bad(message: str) -> EdgebenchError:
    return EdgebenchError(message, ExitStatus.USAGE)


def _number(text: str, what: str, step: str, fix: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _bad(f"{what} in {step!r} is not a number: {fix}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise _bad(f"{what} in {step!r} is not finite: {fix}")
    return value


def _parse_training(name: str, args: list[str], text: str) -> Step:
    if name == "lowrank":
        fix = "write lowrank:E with E in (0, 1], the share of the squared singular values kept, e.g. lowrank:0.9"
        if len(args) != 1:
            raise _bad(f"recipe step {text!r} needs one energy: {fix}")
        energy = _number(args[0], "energy", text, fix)
        if not 0.0 < energy <= 1.0:
            raise _bad(f"energy {args[0]} in {text!r} is outside (0, 1]: {fix}")
        return Step(name, energy)
    if name == "distill":
        fix = "write distill[:T[:ALPHA]] with T > 0 and ALPHA in [0, 1], e.g. distill:4:0.5"
        if len(args) > 2:
            raise _bad(f"recipe step {text!r} has too many options: {fix}")
        temperature = _number(args[0], "temperature", text, fix) if args else DISTILL_DEFAULTS[0]
        alpha = _number(args[1], "alpha", text, fix) if len(args) > 1 else DISTILL_DEFAULTS[1]
        if temperature <= 0 or not 0.0 <= alpha <= 1.0:
            raise _bad(f"recipe step {text!r} is out of range: {fix}")
        return Step(name, temperature, repr(alpha))
    settings = []
    for arg in args:
        key, sep, value = arg.partition("=")
        if not sep or not key or not value:
            raise _bad(f"recipe step {text!r}: write finetune[:KEY=VALUE...], e.g. finetune:epochs=8:lr=0.0005")
        settings.append((key.strip().replace("-", "_"), value.strip()))
    if len({k for k, _ in settings}) < len(settings):
        raise _bad(f"recipe step {text!r} repeats a setting: give each once")
    return Step(name, settings=tuple(sorted(settings)))


def _parse_step(text: str) -> Step:
    name, *args = text.strip().lower().split(":")
    if name not in KNOWN:
        raise _bad(f"unknown recipe step {text.strip()!r}: {_HELP}")
    if name in ("lowrank", *TRAINING):
        return _parse_training(name, args, text)
    if name in PRUNE_KINDS:
        if len(args) != 1:
            raise _bad(f"recipe step {text!r} needs one sparsity: write {name}:S with S in (0, 1), e.g. {name}:0.5")
        try:
            sparsity = float(args[0])
        except ValueError:
            raise _bad(f"sparsity in {text!r} is not a number: write {name}:S with S in (0, 1)") from None
        if not 0.0 < sparsity < 1.0:
            raise _bad(f"sparsity {args[0]} in {text!r} is outside (0, 1): pick a fraction such as {name}:0.5")
        return Step(name, sparsity)
    if name == "cluster":
        if not 1 <= len(args) <= 2:
            raise _bad(f"recipe step {text!r}: write cluster:K[:init] with K >= 2, e.g. cluster:16:kmeans++")
        try:
            k = int(args[0])
        except ValueError:
            raise _bad(f"cluster count in {text!r} is not an integer: write cluster:K with K >= 2") from None
        if k < 2:
            raise _bad(f"cluster count K={k} in {text!r} is below 2: one shared value cannot represent a layer; "
                       "use K >= 2 (e.g. cluster:16)")
        if k > MAX_CLUSTERS:
            raise _bad(f"cluster count K={k} in {text!r} is above {MAX_CLUSTERS}: an index that wide saves nothing over "
                       "fp16 weights; use 2 <= K <= 256 for real savings (e.g. cluster:16)")
        init = args[1] if len(args) == 2 else "density"
        if init not in CLUSTER_INITS:
            raise _bad(f"unknown cluster init {init!r} in {text!r}: use one of {', '.join(CLUSTER_INITS)}")
        return Step(name, k, init)
    if name == "int8":
        if len(args) > 1 or (args and args[0] not in CALIBRATION_METHODS):
            raise _bad(f"unknown int8 calibration in {text!r}: write int8[:{'|'.join(CALIBRATION_METHODS)}]")
        return Step(name, None, args[0] if args else "minmax")
    if args:
        raise _bad(f"recipe step {name!r} takes no options (got {text!r}): write {name}")
    return Step(name)


def _check_order(steps: list[Step], text: str) -> None:
    precisions = [s for s in steps if s.kind in PRECISIONS]
    if len(precisions) > 1:
        raise _bad(f"recipe {text!r} has {len(precisions)} precision steps "
                   f"({', '.join(s.kind for s in precisions)}): keep one, last")
    for kind in ("prune-filters", "lowrank", "cluster", *TRAINING):
        if sum(s.kind == kind for s in steps) > 1:
            raise _bad(f"recipe {text!r} repeats {kind}: give it once")
    if sum(s.kind in ("prune", "prune-layer") for s in steps) > 1:
        raise _bad(f"recipe {text!r} has more than one magnitude pruning step: keep one of prune / prune-layer")
    for before, after in zip(steps, steps[1:]):
        if after.stage < before.stage:
            why = ("distill and finetune are training options, spelled after the steps they train"
                   if before.kind in TRAINING else
                   "pruning after clustering adds zero as an extra value and breaks weight sharing"
                   if before.kind == "cluster" else
                   "pruning and clustering edit float weights, which a precision step has already replaced"
                   if before.kind in PRECISIONS else
                   "filter pruning changes layer shapes (so does low-rank factorization), so it runs before "
                   "magnitude pruning")
            fixed = "+".join(s.canonical() for s in sorted(steps, key=lambda s: s.stage))
            raise _bad(f"recipe {text!r} puts {after.canonical()} after {before.canonical()}: the order is "
                       f"prune → cluster → quantize because {why}; write {fixed}")


def _step_text(item: Any) -> str:
    """A YAML list item → the string form, so both spellings share one parser."""
    if isinstance(item, str):
        return item
    if isinstance(item, dict) and len(item) == 1:
        (name, value), = item.items()
        if isinstance(value, dict) and str(name).lower() == "finetune":
            return ":".join([str(name), *(f"{k}={v}" for k, v in value.items())])
        if isinstance(value, dict) and str(name).lower() == "distill":
            opts = {str(k).lower(): v for k, v in value.items()}
            temperature, alpha = opts.pop("temperature", DISTILL_DEFAULTS[0]), opts.pop("alpha", DISTILL_DEFAULTS[1])
            if opts:
                raise _bad(f"recipe step {item!r} has unknown keys {sorted(opts)}: use temperature and alpha")
            return f"distill:{temperature}:{alpha}"
        if isinstance(value, dict):
            opts = {str(k).lower(): v for k, v in value.items()}
            first = opts.pop("k", opts.pop("sparsity", opts.pop("energy", None)))
            second = opts.pop("init", opts.pop("calibration", None))
            if opts:
                raise _bad(f"recipe step {item!r} has unknown keys {sorted(opts)}: use k/init, sparsity, energy or "
                           "calibration")
            return ":".join(str(x) for x in (name, first, second) if x is not None)
        return str(name) if value is None else f"{name}:{value}"
    raise _bad(f"recipe step {item!r} is neither a string nor a one-key mapping: write e.g. 'prune:0.5' or "
               "{prune: 0.5}")


def _split(text: str) -> list[str]:
    """Split at ``+`` except inside ``kmeans++`` (so ``cluster:16:kmeans+++int8`` is two steps)."""
    return [part.replace("\0", "++") for part in re.sub(r"(?i)kmeans\+\+", "kmeans\0", text).split("+")]


def parse_recipe(recipe: Union[str, list[Any], "Recipe", None]) -> Recipe:
    """Parse a CLI string or a YAML list into a Recipe, refusing unknown steps and a wrong order."""
    if isinstance(recipe, Recipe):
        return recipe
    if recipe is None:
        return Recipe(())
    items = [_step_text(i) for i in recipe] if isinstance(recipe, list) else _split(str(recipe))
    text = "+".join(items)
    if not text.strip():
        raise _bad(f"the recipe is empty: give at least one step (fp32 for the model as it is); {_HELP}")
    if not items or any(not i.strip() for i in items):
        raise _bad(f"recipe {text!r} has an empty step: {_HELP}")
    steps = [_parse_step(i) for i in items]
    _check_order(steps, text)
    return Recipe(tuple(s for s in steps if s.kind != "fp32"))  # fp32 is the absence of a precision step
