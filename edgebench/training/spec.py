"""Fine-tuning hyper-parameters: defaults, a YAML file (``--train-config``) and the recipe's ``finetune`` step.

The settings that change the trained weights are part of the artifact's cache key and of the recipe's canonical
spelling (``finetune:epochs=8:lr=0.0005``), so a sweep tells fine-tuned variants apart. The defaults suit small
models fine-tuned from trained weights (Adam at 1e-3, a few epochs per stage); the pruning schedule follows
TF Model Optimization's ``PolynomialDecay`` (begin at step 0, end at two thirds of the pruning stage, cubic).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Mapping

from edgebench.errors import EdgebenchError, ExitStatus


@dataclass(frozen=True)
class TrainSpec:
    """How each training stage runs. ``epochs`` is per stage: a recipe ``prune:0.8+cluster:16+int8`` trains
    three stages (gradual pruning, centroids, QAT). ``end_step`` None ends the pruning schedule at two thirds of
    the pruning stage's steps."""

    epochs: int = 4
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    val_fraction: float = 0.1
    qat_lr_scale: float = 0.1  # QAT fine-tunes a converged model: a tenth of lr
    begin_step: int = 0
    end_step: int | None = None
    frequency: int = 10
    initial_sparsity: float = 0.0
    power: float = 3.0

    def changed(self) -> dict[str, Any]:
        """The settings that differ from the defaults, for the canonical recipe and the cache key."""
        default = TrainSpec()
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) != getattr(default, f.name)}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_BOUNDS: dict[str, tuple[float, float]] = {
    "epochs": (0, 10_000), "batch_size": (1, 1 << 20), "lr": (0, 10), "weight_decay": (0, 1),
    "val_fraction": (0.01, 0.5), "qat_lr_scale": (0, 10), "begin_step": (0, 1 << 40), "end_step": (1, 1 << 40),
    "frequency": (1, 1 << 40), "initial_sparsity": (0, 0.999), "power": (0.1, 100),
}
ALIASES = {"batch": "batch_size", "wd": "weight_decay", "val": "val_fraction"}


def _value(key: str, raw: Any, where: str) -> Any:
    names = {f.name: f for f in fields(TrainSpec)}
    if key not in names:
        known = ", ".join([*names, *ALIASES])
        raise EdgebenchError(f"unknown fine-tuning setting {key!r} in {where}: use one of {known}", ExitStatus.USAGE)
    integer = key in ("epochs", "batch_size", "begin_step", "end_step", "frequency")
    try:
        value = float(raw)
        if integer and value != int(value):
            raise ValueError
        number: float | int = int(value) if integer else value
    except (TypeError, ValueError):
        kind = "an integer" if integer else "a number"
        raise EdgebenchError(f"fine-tuning setting {key}={raw!r} in {where} is not {kind}: e.g. "
                             f"{key}={getattr(TrainSpec(), key) or 1}", ExitStatus.USAGE) from None
    lo, hi = _BOUNDS[key]
    if not lo <= number <= hi or (key in ("lr", "batch_size") and number <= 0):
        raise EdgebenchError(f"fine-tuning setting {key}={raw} in {where} is outside [{lo:g}, {hi:g}]",
                             ExitStatus.USAGE)
    return number


def train_spec(settings: Mapping[str, Any] | None = None, config: Path | None = None) -> TrainSpec:
    """The spec from a YAML ``config`` (a mapping of settings) overridden by ``settings`` (the recipe's)."""
    spec = TrainSpec()
    sources: list[tuple[Mapping[str, Any], str]] = []
    if config is not None:
        sources.append((_read_config(config), str(config)))
    if settings:
        sources.append((settings, "the recipe's finetune step"))
    for mapping, where in sources:
        updates = {ALIASES.get(str(k), str(k)): v for k, v in mapping.items()}
        spec = replace(spec, **{k: _value(k, v, where) for k, v in updates.items()})
    if spec.end_step is not None and spec.end_step <= spec.begin_step:
        raise EdgebenchError(f"fine-tuning end_step={spec.end_step} is not after begin_step={spec.begin_step}",
                             ExitStatus.USAGE)
    return spec


def _read_config(path: Path) -> Mapping[str, Any]:
    import yaml

    if not path.is_file():
        raise EdgebenchError(f"training config {path} does not exist: give a YAML file of fine-tuning settings",
                             ExitStatus.NOT_FOUND)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise EdgebenchError(f"training config {path} is not valid YAML ({type(err).__name__}): fix the file",
                             ExitStatus.CONFIG) from None
    if not isinstance(data, dict):
        raise EdgebenchError(f"training config {path} is not a mapping of settings: write e.g. 'epochs: 8'",
                             ExitStatus.CONFIG)
    return data
