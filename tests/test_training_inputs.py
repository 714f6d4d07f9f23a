"""Fine-tuning's inputs (issue 16): the recipe grammar's training steps, the settings, and every bad input refused
in one line with its status before any training — nothing cached."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from edgebench.compress.recipe import parse_recipe
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.training.data import MIN_HELD_OUT, TrainData, load_train_data
from edgebench.training.spec import TrainSpec, train_spec
from tests.contract import run

DEMO = Path(__file__).resolve().parent.parent / "edgebench" / "bundled" / "demo"
MODEL = DEMO / "digits_cnn.onnx"
TRAIN = DEMO / "train.npz"


@pytest.mark.parametrize("text, canonical", [
    ("prune:0.8+cluster:16+int8+finetune", "prune:0.8+cluster:16+int8+finetune"),
    ("finetune:lr=0.0005:epochs=8+prune:0.5", None),  # finetune is spelled last: refused with the order
    ("lowrank:0.9+prune:0.5+finetune", "lowrank:0.9+prune:0.5+finetune"),
    ("prune-filters:0.5+lowrank:1+int8", "prune-filters:0.5+lowrank:1.0+int8"),
    ("prune:0.5+distill+finetune", "prune:0.5+distill+finetune"),
    ("prune:0.5+distill:2:0.9+finetune:epochs=8:lr=0.0005", "prune:0.5+distill:2.0:0.9+finetune:epochs=8:lr=0.0005"),
])
def test_training_steps_parse_to_one_spelling(text: str, canonical: str | None) -> None:
    if canonical is None:
        with pytest.raises(EdgebenchError) as err:
            parse_recipe(text)
        assert err.value.status == ExitStatus.USAGE and "write prune:0.5+finetune" in str(err.value)
        return
    assert parse_recipe(text).canonical == canonical
    assert parse_recipe(canonical).canonical == canonical


def test_yaml_steps_spell_like_strings() -> None:
    steps = [{"lowrank": {"energy": 0.9}}, "prune:0.5", {"distill": {"temperature": 3, "alpha": 0.7}},
             {"finetune": {"lr": 0.002, "epochs": 2}}]
    assert parse_recipe(steps).canonical == "lowrank:0.9+prune:0.5+distill:3.0:0.7+finetune:epochs=2:lr=0.002"


@pytest.mark.parametrize("text, fragment", [
    ("lowrank:0", "outside (0, 1]"), ("lowrank:1.5", "outside (0, 1]"), ("lowrank", "needs one energy"),
    ("distill:0", "out of range"), ("distill:2:1.5", "out of range"), ("distill:x", "not a number"),
    ("finetune:epochs", "KEY=VALUE"), ("finetune:lr=1:lr=2", "repeats"), ("prune:0.5+finetune+finetune", "repeats"),
])
def test_bad_training_steps_are_usage_errors(text: str, fragment: str) -> None:
    with pytest.raises(EdgebenchError) as err:
        parse_recipe(text)
    assert err.value.status == ExitStatus.USAGE and fragment in str(err.value)


def test_settings_from_yaml_then_recipe(tmp_path: Path) -> None:
    config = tmp_path / "train.yaml"
    config.write_text(yaml.safe_dump({"epochs": 6, "batch": 32, "lr": 0.01}))
    spec = train_spec({"lr": "0.002"}, config)
    assert (spec.epochs, spec.batch_size, spec.lr) == (6, 32, 0.002)
    assert spec.changed() == {"epochs": 6, "batch_size": 32, "lr": 0.002}
    assert TrainSpec().changed() == {}


@pytest.mark.parametrize("settings, fragment", [
    ({"epoch": 3}, "unknown fine-tuning setting 'epoch'"), ({"epochs": "2.5"}, "not an integer"),
    ({"lr": "-1"}, "outside"), ({"lr": "0"}, "outside"), ({"val_fraction": "0.9"}, "outside"),
    ({"begin_step": 10, "end_step": 5}, "not after"),
])
def test_bad_settings_are_refused(settings: dict[str, object], fragment: str) -> None:
    with pytest.raises(EdgebenchError) as err:
        train_spec(settings)
    assert err.value.status == ExitStatus.USAGE and fragment in str(err.value)


def test_split_holds_out_every_class_and_is_seeded() -> None:
    data = load_train_data(TRAIN, MODEL, 0.1)
    train, val = data.split(0.1, seed=0)
    assert len(train) + len(val) == len(data) and len(val) >= MIN_HELD_OUT
    assert set(np.unique(val.labels)) == set(range(10))
    again, _ = data.split(0.1, seed=0)
    assert np.array_equal(train.labels, again.labels)
    small = TrainData({"input": np.zeros((40, 1), np.float32)}, np.repeat(np.arange(20), 2))
    _, held = small.split(0.1)  # 20 classes of 2: rounding gives none per class, the share is taken overall
    assert len(held) >= MIN_HELD_OUT


def _npz(path: Path, **arrays: np.ndarray) -> Path:
    np.savez(path, **arrays)
    return path


BAD_DATA = {
    "no labels": (lambda x, y: {"inputs": x}, "no 'labels' array", ExitStatus.DATA_MISMATCH),
    "NaN": (lambda x, y: {"inputs": np.where(np.arange(x.size).reshape(x.shape) == 7, np.nan, x).astype(np.float32),
                          "labels": y}, "NaN or Inf", ExitStatus.DATA_MISMATCH),
    "misfit": (lambda x, y: {"inputs": x[:, :, :4, :], "labels": y}, "per sample", ExitStatus.DATA_MISMATCH),
    "too small": (lambda x, y: {"inputs": x[:50], "labels": y[:50]}, "too few to hold out", ExitStatus.DATA_MISMATCH),
    "float labels": (lambda x, y: {"inputs": x, "labels": y.astype(np.float32)}, "not integer", ExitStatus.DATA_MISMATCH),
    "label past classes": (lambda x, y: {"inputs": x, "labels": y + 5}, "outside the 10 classes",
                           ExitStatus.DATA_MISMATCH),
}


@pytest.mark.parametrize("case", sorted(BAD_DATA))
def test_bad_training_data_one_line_nothing_cached(tmp_path: Path, case: str) -> None:
    with np.load(TRAIN) as train:
        x, y = train["inputs"], train["labels"]
    make, fragment, status = BAD_DATA[case]
    data = _npz(tmp_path / "train.npz", **make(x, y))
    cache = tmp_path / "cache"
    out = run(tmp_path, ["compress", MODEL, "--recipe", "prune:0.5", "--finetune", data, "--cache-dir", cache])
    assert out.status == status, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgebench: error:") and fragment in lines[0], out.stderr
    assert "Traceback" not in out.stderr
    assert not any(p.name == "meta.json" for p in cache.rglob("*")) if cache.exists() else True


@pytest.mark.parametrize("argv, fragment", [
    (["--recipe", "prune:0.5+finetune"], "no training data was given"),
    (["--recipe", "prune:0.5+distill"], "distills, which needs training"),
    (["--recipe", "fp16", "--finetune", str(TRAIN)], "nothing to fine-tune"),
    (["--recipe", "prune:0.5", "--teacher", str(MODEL)], "pass --finetune"),
    (["--recipe", "prune:0.5", "--finetune", str(TRAIN), "--train-config", "missing.yaml"], "does not exist"),
])
def test_recipe_and_options_that_cannot_train(tmp_path: Path, argv: list[str], fragment: str) -> None:
    out = run(tmp_path, ["compress", MODEL, *argv, "--cache-dir", tmp_path / "cache"])
    assert out.status in (ExitStatus.USAGE, ExitStatus.NOT_FOUND), out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], out.stderr
