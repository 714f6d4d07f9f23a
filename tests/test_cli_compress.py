"""`edgebench compress` end to end, and every bad input it must refuse with one line and a status."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgebench.artifacts import cache as artifacts
from edgebench.cli import main
from edgebench.errors import ExitStatus
from tests.compress_models import CALIB, MODEL, residual_model, tiny_layer_model


def test_compress_prints_and_writes_metrics_per_format(tmp_path, capsys, recipe_cache):
    """The issue's "done when" command: every CPU format, costs printed, preservation checked on each file."""
    out, js = tmp_path / "out", tmp_path / "m.json"
    status = main(["compress", str(MODEL), "--recipe", "prune:0.8+cluster:16+int8", "--calibration", str(CALIB),
                   "--to", "onnx,openvino,tflite", "--out", str(out), "--json", str(js),
                   "--cache-dir", str(recipe_cache)])
    assert status == ExitStatus.OK, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "prune:0.8+cluster:16+int8" in printed and "gzip KB" in printed and "Number of" not in printed
    assert "Statistics collection" not in printed  # NNCF's progress bars stay out of the table
    rows = json.loads(js.read_text())
    assert [r["format"] for r in rows] == ["onnx", "openvino", "tflite"]
    for row in rows:
        assert row["sparsity"] > 0.7 and row["gzip_ratio"] > 10 and row["preservation"].startswith("checked")
        assert Path(row["path"]).is_file() and Path(row["path"]).parent.parent == out
    assert (out / "tflite-prune-0.8_cluster-16_int8" / "meta.json").is_file()


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


@pytest.mark.parametrize("to", ["onnx", "openvino", "tflite"])
def test_int8_without_calibration(tmp_path, capsys, to):
    _refused([str(MODEL), "--recipe", "int8", "--to", to, "--out", str(tmp_path / "o"),
              "--cache-dir", str(tmp_path / "c")], ExitStatus.USAGE, "pass --calibration NPZ", capsys)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("array, needle", [
    (np.zeros((8, 1, 8, 8), np.int64), "is int64 but the model's input is float32"),
    (np.zeros((8, 8, 8), np.float32), "has samples of shape [8, 8]"),
])
def test_calibration_that_does_not_fit(tmp_path, capsys, array, needle):
    bad = tmp_path / "bad.npz"
    np.savez(bad, inputs=array)
    _refused([str(MODEL), "--recipe", "prune:0.5+int8", "--calibration", str(bad), "--out", str(tmp_path / "o"),
              "--to", "openvino", "--cache-dir", str(tmp_path / "c")], ExitStatus.DATA_MISMATCH, needle, capsys)
    assert not (tmp_path / "o").exists() and not list((tmp_path / "c").rglob("meta.json"))


def test_recipe_that_prunes_a_whole_layer(tmp_path, capsys):
    model = tiny_layer_model(tmp_path / "tiny.onnx")
    _refused([str(model), "--recipe", "prune:0.5", "--out", str(tmp_path / "o"), "--cache-dir", str(tmp_path / "c")],
             ExitStatus.CONVERSION_FAILED, "would zero every weight of layer mm1", capsys)
    assert not (tmp_path / "o").exists() and not [p for p in (tmp_path / "c").rglob("*") if p.is_file()]


def test_graph_without_structured_pruning(tmp_path, capsys):
    model = residual_model(tmp_path / "res.onnx")
    _refused([str(model), "--recipe", "prune-filters:0.5", "--out", str(tmp_path / "o"),
              "--cache-dir", str(tmp_path / "c")], ExitStatus.CONVERSION_FAILED, "cannot prune filters of conv_b", capsys)


@pytest.mark.parametrize("to, recipe, needle", [("coreml", "fp16", "unknown format 'coreml'"),
                                                ("tensorrt", "int8-dynamic", "does not support precision 'int8-dynamic'")])
def test_formats_and_precisions_refused(tmp_path, capsys, to, recipe, needle):
    _refused([str(MODEL), "--recipe", recipe, "--to", to, "--cache-dir", str(tmp_path / "c")], ExitStatus.USAGE,
             needle, capsys)


@pytest.mark.parametrize("args, status, needle", [
    (["convert", str(MODEL), "--to", "tflite", "--recipe", "prune:0.5+int8"], ExitStatus.USAGE,
     "pass --calibration NPZ"),
    (["convert", str(MODEL), "--to", "openvino", "--recipe", "int8", "--precision", "fp16"], ExitStatus.USAGE,
     "conflicts with recipe int8"),
    (["bench", str(MODEL), "--format", "openvino", "--recipe", "int8"], ExitStatus.USAGE, "pass --calibration NPZ"),
    (["compare", str(MODEL), "--formats", "onnx", "--recipe", "cluster:1", "--dataset", str(CALIB)],
     ExitStatus.USAGE, "below 2"),
])
def test_recipe_bad_input_in_other_commands(tmp_path, capsys, args, status, needle):
    assert main([*args, "--cache-dir", str(tmp_path / "c")]) == status
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert not list((tmp_path / "c").rglob("meta.json"))


def test_recipe_on_a_converted_artifact_is_refused(tmp_path, capsys, recipe_cache):
    xml = artifacts.ensure(MODEL, "openvino", root=recipe_cache).main
    assert main(["bench", str(xml), "--recipe", "int8"]) == ExitStatus.USAGE
    assert "--recipe compresses only an .onnx model" in capsys.readouterr().err


def test_missing_model(tmp_path, capsys):
    _refused([str(tmp_path / "nope.onnx"), "--recipe", "fp16"], ExitStatus.NOT_FOUND, "model file not found", capsys)
