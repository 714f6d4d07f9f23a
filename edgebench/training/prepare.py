"""Fine-tuning's inputs checked before any work, and what a trained model's cache key holds besides the recipe.

Refused in one line each, nothing cached: a recipe that fine-tunes (or distills) without training data; training
data given to a recipe with nothing to train; PyTorch or onnx2torch not installed (the ``train`` extra);
training data that does not fit the model, has no labels, holds NaN/Inf or is too small to hold out a
validation split; a teacher whose scores do not match the student's; an op the importer cannot take.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgebench.compress.recipe import Recipe, Step, parse_recipe
from edgebench.data.source import load_onnx_info, require_file, sha256_file
from edgebench.errors import EdgebenchError, ExitStatus

if TYPE_CHECKING:
    from edgebench.training.finetune import Finetune

EXTRA = "pip install 'edgebench[train]'"
TRAINABLE = ("prune", "prune-layer", "prune-filters", "lowrank", "cluster", "int8", "distill")


def require_torch(what: str) -> dict[str, str]:
    """The versions of the training libraries; RUNTIME_MISSING naming the extra when one is absent."""
    versions = {}
    for module, dist in (("torch", "torch"), ("onnx2torch", "onnx2torch"), ("torch_pruning", "torch-pruning")):
        if importlib.util.find_spec(module) is None:
            raise EdgebenchError(f"{what} needs {dist}, which is not installed: {EXTRA}", ExitStatus.RUNTIME_MISSING)
        versions[dist] = importlib.metadata.version(dist)
    return versions


def _with_settings(recipe: Recipe, settings: dict[str, Any]) -> Recipe:
    """The recipe with its finetune step spelled with every setting that differs from the defaults (those of
    a --train-config file included), so results and cache keys tell the variants apart."""
    step = Step("finetune", settings=tuple(sorted((k, _spell(v)) for k, v in settings.items())))
    return Recipe(tuple(s for s in recipe.steps if s.kind != "finetune") + (step,))


def _spell(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def check_training(source: Path, recipe: Recipe, finetune: "Finetune | None") -> tuple[Recipe, dict[str, Any]]:
    """(the recipe to build, with its finetune step when ``finetune`` is given; the key material: training
    data, teacher and config hashes, the scored output, library versions), refusing bad input first."""
    from edgebench.training.data import load_train_data
    from edgebench.training.finetune import spec_for

    if finetune is not None and not recipe.trains:
        recipe = parse_recipe(f"{recipe.canonical}+finetune" if recipe.steps else "finetune")
    if recipe.trains and finetune is None:
        raise EdgebenchError(f"recipe {recipe.canonical} fine-tunes but no training data was given: pass --finetune "
                             "TRAIN.npz (one array per model input and integer labels)", ExitStatus.USAGE)
    if recipe.find("distill") and not recipe.trains:
        raise EdgebenchError(f"recipe {recipe.canonical} distills, which needs training: pass --finetune TRAIN.npz",
                             ExitStatus.USAGE)
    if recipe.trains and not any(s.kind in TRAINABLE for s in recipe.steps):
        raise EdgebenchError(f"recipe {recipe.canonical} has nothing to fine-tune: add a step that training helps "
                             "(prune:S, prune-filters:S, lowrank:E, cluster:K, int8 for QAT, distill) or drop "
                             "--finetune", ExitStatus.USAGE)
    versions = require_torch(f"recipe {recipe.canonical}")
    spec = spec_for(recipe, finetune)
    if recipe.trains:
        recipe = _with_settings(recipe, spec.changed())
    material: dict[str, Any] = {"torch": versions}
    if finetune is not None:
        data = require_file(finetune.data, "training set")
        load_train_data(data, source, spec.val_fraction, finetune.output)
        material["train_data"] = sha256_file(data)
        material["output"] = finetune.output
        if finetune.teacher is not None and recipe.find("distill"):
            teacher = require_file(finetune.teacher, "teacher model")
            _check_teacher(source, teacher)
            material["teacher"] = sha256_file(teacher)
    from edgebench.training.importer import check_importable

    check_importable(source)
    return recipe, material


def _check_teacher(student: Path, teacher: Path) -> None:
    mine, theirs = load_onnx_info(student), load_onnx_info(teacher)
    names = [i.name for i in mine.inputs]
    if [i.name for i in theirs.inputs] != names:
        raise EdgebenchError(f"teacher {teacher} takes inputs {[i.name for i in theirs.inputs]} but the model takes "
                             f"{names}: distill from a model with the same inputs", ExitStatus.DATA_MISMATCH)
    scores = [o.shape[-1] for o in (mine.outputs[0], theirs.outputs[0])]
    if all(isinstance(s, int) for s in scores) and scores[0] != scores[1]:
        raise EdgebenchError(f"teacher {teacher} gives {scores[1]} scores per sample but the model {scores[0]}: "
                             "distill from a model of the same classes", ExitStatus.DATA_MISMATCH)
