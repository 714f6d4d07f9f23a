"""Shared fixtures: the bundled digits model, small real models made with onnx.helper, quick timing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests import models

ROOT = Path(__file__).resolve().parent.parent
DIGITS = ROOT / "edgebench" / "bundled" / "demo"

# Short but real measurement settings for tests (docs/design.md's timing rules, just small numbers).
QUICK_TIMING = ["--warmup-s", "0.01", "--warmup-iterations", "2", "--min-iterations", "20",
                "--min-duration-s", "0.05", "--max-duration-s", "5"]


@pytest.fixture(scope="session", autouse=True)
def private_device_locks(tmp_path_factory: pytest.TempPathFactory):
    """The suite's device locks (edgebench/devices/lock.py) in a folder of its own, shared by the subprocesses it
    starts: a benchmark running elsewhere on this machine neither waits for the suite nor makes it wait."""
    before = os.environ.get("EDGEBENCH_LOCK_DIR")
    os.environ["EDGEBENCH_LOCK_DIR"] = str(tmp_path_factory.mktemp("device-locks"))
    yield
    if before is None:
        os.environ.pop("EDGEBENCH_LOCK_DIR", None)
    else:
        os.environ["EDGEBENCH_LOCK_DIR"] = before


@pytest.fixture(scope="module")
def torch_one_thread():
    """Training tests run PyTorch on one thread: its two threads beside a core another job holds wait on each
    other at every step (measured: a step 7 ms alone, 0.28 s so), one thread runs at its own pace."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


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


@pytest.fixture
def tmpfs(tmp_path: Path):
    """Mount small real disks for fault tests: ``tmpfs(size=..., name=...)`` → a ``tests.mounts.Tmpfs`` (fill it
    up, remount it read-only); skipped with the reason where mounting is not permitted."""
    from tests.mounts import mounted_tmpfs

    yield from mounted_tmpfs(tmp_path / "mnt")
