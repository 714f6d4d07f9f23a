"""Shared fixtures: the bundled digits model, small real models made with onnx.helper, quick timing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import models

ROOT = Path(__file__).resolve().parent.parent
DIGITS = ROOT / "edgebench" / "bundled" / "demo"

# Short but real measurement settings for tests (docs/design.md's timing rules, just small numbers).
QUICK_TIMING = ["--warmup-s", "0.01", "--warmup-iterations", "2", "--min-iterations", "20",
                "--min-duration-s", "0.05", "--max-duration-s", "5"]


@pytest.fixture(scope="session")
def digits_onnx() -> Path:
    return DIGITS / "digits_cnn.onnx"


@pytest.fixture(scope="session")
def digits_eval() -> Path:
    return DIGITS / "eval.npz"


@pytest.fixture(scope="session")
def multi_input_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return models.token_model(tmp_path_factory.mktemp("models") / "tokens.onnx")


@pytest.fixture(scope="session")
def recipe_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One artifact cache for the whole session: a (recipe, format) converted by one test is a hit for
    every later one (a TFLite conversion costs ~8 s)."""
    return tmp_path_factory.mktemp("recipe-cache")
