"""TFLite from Python models: a tiny Keras model through tf.lite.TFLiteConverter, run in the TFLite runner."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from edgebench.pipeline.bench import BenchRequest, execute
from edgebench.pipeline.compare import COMPARE_TIMING
from edgebench.formats.tflite.api import from_keras, from_torch
from edgebench.errors import EdgebenchError, ExitStatus


@pytest.mark.parametrize("precision,tol", [("fp32", 1e-5), ("fp16", 1e-2)])
def test_keras_model_converts_and_matches_keras(tmp_path: Path, precision: str, tol: float) -> None:
    tf = pytest.importorskip("tensorflow")
    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential([tf.keras.Input((6,), name="features"), tf.keras.layers.Dense(16, activation="relu"),
                                 tf.keras.layers.Dense(3)])
    artifact = from_keras(model, precision, tmp_path / precision)
    assert artifact.main.is_file() and artifact.inputs[0].shape == (None, 6)
    data = np.random.default_rng(1).normal(size=(40, 6)).astype(np.float32)
    np.savez(tmp_path / "data.npz", **{artifact.inputs[0].name: data})
    outcome = execute(BenchRequest(model=artifact.main, dataset=tmp_path / "data.npz", threads=1, batch=4,
                                   timing=COMPARE_TIMING))
    assert outcome.result.model.format == "tflite"
    (got,) = outcome.outputs.values()
    expected = model(data).numpy()
    assert got.shape == expected.shape == (40, 3)
    assert np.max(np.abs(got - expected)) < tol


def test_torch_path_without_litert_torch_names_the_package(tmp_path: Path) -> None:
    """litert-torch is not installed here (it pulls an unpinned torch): the path reports it, one line."""
    if importlib.util.find_spec("litert_torch") is not None:
        pytest.skip(reason="litert-torch is installed; this checks the message when it is absent")
    with pytest.raises(EdgebenchError, match="pip install litert-torch") as err:
        from_torch(object(), (), "fp32", tmp_path)
    assert err.value.status == ExitStatus.RUNTIME_MISSING
