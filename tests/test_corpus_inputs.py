"""Inputs of real third-party models: -1 and symbolic dimensions sized from the dataset or --shape, a
recurrent state and a 0-d sample rate, integer inputs kept inside the values their graph allows —
through bench, compare, convert, compress and sweep specs."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
import yaml
from onnx import TensorProto, helper

from edgebench.cli import main
from edgebench.formats.tensors import TensorIO
from edgebench.data.inputs import plan_inputs, random_inputs
from edgebench.errors import ExitStatus
from edgebench.data.domains import integer_input_domains
from edgebench.data.source import load_onnx_info
from tests.conftest import DIGITS
from tests.corpus import corpus

SHORT = ["--warmup-s", "0", "--warmup-iterations", "1", "--min-iterations", "3", "--min-duration-s", "0",
         "--max-duration-s", "5"]


def bench(*args: str) -> ExitStatus:
    return main(["bench", *args, *SHORT])


def result(path: Path) -> dict:
    r = json.loads(path.read_text())
    assert r["status"] == "ok", r.get("error")
    return r


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("edgebench: error: ") and "\n" not in err and "Traceback" not in err, err
    return err


# --- -1 and symbolic dimensions ----------------------------------------------------------------------

def test_minus_one_dims_are_dynamic_everywhere():
    cls = corpus("ppocr_cls")
    assert load_onnx_info(cls.path).inputs[0].shape == (None, 3, None, None)  # stored as [-1, 3, ?, ?]
    # a meta.json written before -1 counted as dynamic reads back dynamic too
    old = TensorIO.from_dict({"name": "x", "dtype": "float32", "shape": [-1, 3, 48, 192],
                              "source_shape": [-1, 3, 0, 0]})
    assert old.shape == (None, 3, 48, 192) and old.source_shape == (None, 3, None, None)


def test_ppocr_cls_sizes_from_its_dataset_and_batches(tmp_path):
    cls = corpus("ppocr_cls")
    out = tmp_path / "r.json"
    assert bench(str(cls.path), "--dataset", str(cls.data), "--batch", "4", "--json", str(out)) == 0
    r = result(out)
    assert r["extra"]["input_shapes"] == {"x": [4, 3, 48, 192]} and r["batch"] == 4
    assert r["extra"]["inputs"] == {"x": {"source": "dataset"}}
    assert r["accuracy"]["samples"] == 16 and r["accuracy"]["top1"] == 1.0  # labelled: 0° / 180°


def test_ppocr_cls_without_dataset_takes_shape_and_says_which_one_to_write(tmp_path, capsys):
    cls = corpus("ppocr_cls")
    assert bench(str(cls.path)) == ExitStatus.DATA_MISMATCH
    err = one_line_error(capsys)
    assert "input 'x' [?, 3, ?, ?]: pass --shape x:1x3xD2xD3 " in err and "-1" not in err and "--dataset" in err
    assert bench(str(cls.path), "--shape", "x:-1x3x48x192") == ExitStatus.DATA_MISMATCH
    assert "sizes above 0" in one_line_error(capsys)
    assert bench(str(cls.path), "--shape", "x:1x1x48x192") == ExitStatus.DATA_MISMATCH
    assert "keep the fixed dimensions (e.g. --shape x:1x3xD2xD3)" in one_line_error(capsys)
    out = tmp_path / "r.json"
    assert bench(str(cls.path), "--shape", "x:1x3x48x192", "--json", str(out)) == 0
    r = result(out)
    assert r["extra"]["input_shapes"] == {"x": [1, 3, 48, 192]}
    assert r["extra"]["inputs"]["x"] == {"source": "random", "range": [0.0, 1.0], "why": "default"}


def test_ppocrv4_det_dynamic_height_and_width_from_dataset(tmp_path):
    det = corpus("ppocrv4_det")
    out = tmp_path / "r.json"
    assert bench(str(det.path), "--dataset", str(det.data), "--json", str(out)) == 0
    r = result(out)
    assert r["extra"]["input_shapes"] == {"x": [1, 3, 160, 256]} and r["accuracy"]["samples"] == 8


# --- state and scalar inputs -------------------------------------------------------------------------

def test_silero_vad_with_its_dataset_keeps_state_and_rate_per_sample(tmp_path):
    vad = corpus("silero_vad")
    out = tmp_path / "r.json"
    assert bench(str(vad.path), "--dataset", str(vad.data), "--json", str(out)) == 0
    r = result(out)
    # data: input [16, 576] (batched), state [16, 2, 1, 128] and sr [16] (one whole input per sample)
    assert r["extra"]["input_shapes"] == {"input": [1, 576], "sr": [], "state": [2, 1, 128]}
    assert r["accuracy"]["samples"] == 16


def test_silero_vad_random_inputs_with_shapes_and_a_fixed_rate(tmp_path, capsys):
    vad = corpus("silero_vad")
    assert bench(str(vad.path)) == ExitStatus.DATA_MISMATCH
    assert "pass --shape input:1xD1 --shape state:2xD1x128 " in one_line_error(capsys)
    shapes = ["--shape", "input:1x576", "--shape", "state:2x1x128"]
    out = tmp_path / "given.json"
    assert bench(str(vad.path), *shapes, "--input-value", "sr=16000", "--input-range", "input:-1:1",
                 "--json", str(out)) == 0
    inputs = result(out)["extra"]["inputs"]
    assert inputs["sr"] == {"source": "fixed", "value": 16000, "why": "--input-value"}
    assert inputs["input"] == {"source": "random", "range": [-1.0, 1.0], "why": "--input-range"}
    # without --input-value the graph says it: sr is compared with 16000 (else the 8 kHz branch)
    out = tmp_path / "inferred.json"
    assert bench(str(vad.path), *shapes, "--json", str(out)) == 0
    sr = result(out)["extra"]["inputs"]["sr"]
    assert sr["source"] == "fixed" and sr["value"] == 16000 and sr["why"].startswith("graph: compared with")


def test_a_scalar_input_reaches_the_runtime_as_a_scalar(multi_input_onnx, recipe_cache, tmp_path):
    """OpenVINO refuses a [1] array for a 0-d input: per-sample scalars must stay 0-d in every feed."""
    out = tmp_path / "r.json"
    assert bench(str(multi_input_onnx), "--format", "openvino", "--shape", "ids:2x16", "--cache-dir",
                 str(recipe_cache), "--json", str(out)) == 0
    r = result(out)
    assert r["extra"]["input_shapes"] == {"ids": [2, 16], "scale": []}
    assert r["extra"]["inputs"]["ids"] == {"source": "random", "range": [0, 50],
                                           "why": "graph: indexes 'emb' (50 rows)"}


# --- integer inputs ------------------------------------------------------------------------------------

def test_minilm_random_token_ids_stay_inside_the_vocabulary(tmp_path):
    lm = corpus("minilm_l6_v2")
    domains = integer_input_domains(lm.path)
    assert (domains["input_ids"].low, domains["input_ids"].high) == (0, 30522)
    assert (domains["token_type_ids"].low, domains["token_type_ids"].high) == (0, 2)
    assert (domains["attention_mask"].low, domains["attention_mask"].high) == (0, 2)  # arithmetic only: 0/1
    plan = plan_inputs(load_onnx_info(lm.path).inputs, shapes={"input_ids": (1, 16)})
    assert plan.shapes["attention_mask"] == (1, 16)  # one --shape sizes 'sequence' in all three inputs
    plan.adopt(domains)
    ids = random_inputs(plan)["input_ids"]
    assert ids.min() >= 0 and ids.max() < 30522 and ids.max() > 1000  # the whole vocabulary, not 0..99
    out = tmp_path / "r.json"
    assert main(["bench", str(lm.path), "--shape", "input_ids:1x16", "--json", str(out), "--warmup-s", "0",
                 "--warmup-iterations", "0", "--min-iterations", "1", "--min-duration-s", "0"]) == 0
    inputs = result(out)["extra"]["inputs"]
    assert inputs["input_ids"]["range"] == [0, 30522] and "30522 rows" in inputs["input_ids"]["why"]
    assert inputs["token_type_ids"]["range"] == [0, 2] and inputs["attention_mask"]["range"] == [0, 2]


def test_an_integer_input_the_graph_cannot_bound_needs_a_range(tmp_path, capsys):
    """k feeds TopK: any random value may be out of bounds, so edgebench asks instead of guessing."""
    graph = helper.make_graph(
        [helper.make_node("TopK", ["x", "k"], ["values", "indices"])], "topk",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 10]),
         helper.make_tensor_value_info("k", TensorProto.INT64, [1])],
        [helper.make_tensor_value_info("values", TensorProto.FLOAT, [1, None]),
         helper.make_tensor_value_info("indices", TensorProto.INT64, [1, None])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path = tmp_path / "topk.onnx"
    onnx.save(model, path)
    assert bench(str(path)) == ExitStatus.DATA_MISMATCH
    err = one_line_error(capsys)
    assert "input 'k' is int64" in err and "it feeds TopK" in err and "--input-range k:LOW:HIGH" in err
    out = tmp_path / "r.json"
    assert bench(str(path), "--input-value", "k=3", "--json", str(out)) == 0
    assert result(out)["extra"]["inputs"]["k"] == {"source": "fixed", "value": 3, "why": "--input-value"}


# --- every command takes the input options -------------------------------------------------------------

def test_convert_and_compress_take_shape_into_the_cache_key(recipe_cache, tmp_path, capsys):
    cls = corpus("ppocr_cls")
    cache = ["--cache-dir", str(recipe_cache)]
    assert main(["convert", str(cls.path), "--to", "openvino", "--shape", "x:1x3x48x192", *cache]) == 0
    metas = [json.loads(p.read_text()) for p in recipe_cache.glob("*/*/meta.json")]
    assert any(m["options"].get("shapes") == {"x": [1, 3, 48, 192]} and m["format"] == "openvino" for m in metas)
    assert main(["convert", str(cls.path), "--to", "openvino", "--shape", "y:1x3x48x192", *cache]) == ExitStatus.DATA_MISMATCH
    assert "no input 'y'" in one_line_error(capsys)
    model = DIGITS / "digits_cnn.onnx"
    assert main(["compress", str(model), "-r", "prune:0.5", "--shape", "input:1x1x8x8", *cache]) == 0
    metas = [json.loads(p.read_text()) for p in recipe_cache.glob("*/*/meta.json")]
    assert any(m["recipe"] == "prune:0.5" and m["options"].get("shapes") == {"input": [1, 1, 8, 8]} for m in metas)


def test_compare_with_shape_and_without_a_dataset(recipe_cache, tmp_path):
    cls = corpus("ppocr_cls")
    out = tmp_path / "c.json"
    assert main(["compare", str(cls.path), "--formats", "onnx,openvino", "--shape", "x:1x3x48x192",
                 "--cache-dir", str(recipe_cache), "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [(r["format"], r["status"]) for r in rows] == [("onnx", "ok"), ("openvino", "ok")]


def test_sweep_spec_shapes_reach_the_conversion_and_the_bench(recipe_cache, tmp_path, capsys):
    cls = corpus("ppocr_cls")
    spec = {"name": "shapes", "models": [{"name": "cls", "path": str(cls.path), "shapes": {"x": [1, 3, 48, 192]}}],
            "recipes": ["fp32"], "formats": ["onnx", "openvino"], "devices": ["local-cpu"],
            "timing": {"warmup_s": 0, "warmup_iterations": 1, "min_iterations": 3, "min_duration_s": 0,
                       "max_duration_s": 5}}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(spec))
    out = tmp_path / "all.json"
    assert main(["sweep", str(path), "--store", str(tmp_path / "r.db"), "--cache-dir", str(recipe_cache),
                 "--json", str(out)]) == 0
    results = json.loads(out.read_text())
    assert {r["model"]["format"] for r in results} == {"onnx", "openvino"}
    for r in results:
        assert r["status"] == "ok", r.get("error")
        assert r["extra"]["input_shapes"] == {"x": [1, 3, 48, 192]}
    openvino = next(r for r in results if r["model"]["format"] == "openvino")
    assert openvino["model"]["cache_hit"] is True  # the bench found the artifact the conversion step made
    spec["models"][0]["shapes"] = {"image": [1, 3, 48, 192]}
    path.write_text(yaml.safe_dump(spec))
    assert main(["sweep", str(path), "--store", str(tmp_path / "r.db"), "--dry-run"]) == ExitStatus.CONFIG
    assert "model 'cls': shapes: the model has no input 'image'" in one_line_error(capsys)

