"""`edgebench compress` end to end, and every bad input it must refuse with one line and a status."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgebench.cli import main
from edgebench.errors import ExitStatus
from tests.compress_models import CALIB, MODEL, residual_model, tiny_layer_model


def test_compress_prints_and_writes_metrics(tmp_path, capsys):
    out, js = tmp_path / "out", tmp_path / "m.json"
    status = main(["compress", str(MODEL), "--recipe", "prune:0.8+cluster:16+int8", "--calibration", str(CALIB),
                   "--to", "onnx", "--out", str(out), "--json", str(js)])
    assert status == ExitStatus.OK
    printed = capsys.readouterr().out
    assert "prune:0.8+cluster:16+int8" in printed and "gzip KB" in printed and "Number of" not in printed
    (row,) = json.loads(js.read_text())
    assert row["format"] == "onnx" and (out / "digits_cnn.prune-0.8_cluster-16_int8.onnx").exists()
    assert row["metrics"]["sparsity"] > 0.7 and row["metrics"]["gzip_ratio"] > 10


def _refused(args, status, needle, capsys):
    assert main(["compress", *args]) == status
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize("recipe, needle", [
    ("quantize", "unknown recipe step 'quantize'"),
    ("prune:1.2", "outside (0, 1)"),
    ("prune-layer:0", "outside (0, 1)"),
    ("cluster:1", "below 2"),
    ("cluster:16+prune:0.5", "the order is prune → cluster → quantize"),
])
def test_bad_recipes(tmp_path, capsys, recipe, needle):
    _refused([str(MODEL), "--recipe", recipe, "--out", str(tmp_path)], ExitStatus.USAGE, needle, capsys)


def test_int8_without_calibration(tmp_path, capsys):
    _refused([str(MODEL), "--recipe", "int8", "--out", str(tmp_path / "o")], ExitStatus.USAGE,
             "pass --calibration NPZ", capsys)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("array, needle", [
    (np.zeros((8, 1, 8, 8), np.int64), "is int64 but the model's input is float32"),
    (np.zeros((8, 8, 8), np.float32), "has samples of shape [8, 8]"),
])
def test_calibration_that_does_not_fit(tmp_path, capsys, array, needle):
    bad = tmp_path / "bad.npz"
    np.savez(bad, inputs=array)
    _refused([str(MODEL), "--recipe", "prune:0.5+int8", "--calibration", str(bad), "--out", str(tmp_path / "o")],
             ExitStatus.DATA_MISMATCH, needle, capsys)
    assert not (tmp_path / "o").exists()


def test_recipe_that_prunes_a_whole_layer(tmp_path, capsys):
    model = tiny_layer_model(tmp_path / "tiny.onnx")
    _refused([str(model), "--recipe", "prune:0.5", "--out", str(tmp_path / "o")], ExitStatus.CONVERSION_FAILED,
             "would zero every weight of layer mm1", capsys)
    assert not (tmp_path / "o").exists()


def test_graph_without_structured_pruning(tmp_path, capsys):
    model = residual_model(tmp_path / "res.onnx")
    _refused([str(model), "--recipe", "prune-filters:0.5", "--out", str(tmp_path / "o")],
             ExitStatus.CONVERSION_FAILED, "cannot prune filters of conv_b", capsys)


@pytest.mark.parametrize("to, needle", [("openvino", "lands with the converter layer"),
                                        ("onnx,tflite", "lands with the converter layer"),
                                        ("coreml", "unknown format 'coreml'")])
def test_formats_not_available_yet(tmp_path, capsys, to, needle):
    _refused([str(MODEL), "--recipe", "fp16", "--to", to, "--out", str(tmp_path)], ExitStatus.USAGE, needle, capsys)


def test_missing_model(tmp_path, capsys):
    _refused([str(tmp_path / "nope.onnx"), "--recipe", "fp16"], ExitStatus.NOT_FOUND, "model file not found", capsys)
