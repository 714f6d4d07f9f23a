"""Source models (edgebench/sources, docs/sources.md): small real PyTorch and Keras models built here, exported to
their hub ONNX once (names and dynamic batch kept, a second call a cache hit), and taken by bench, compare,
convert, a sweep and the Python API as an .onnx is; every bad input is one line with its exit status."""

from __future__ import annotations

import json
import os
import sys
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from edgebench import api
from edgebench.data.source import load_onnx_info
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.result import read_results
from edgebench.sources import base
from edgebench.sources.hub import to_hub
from edgebench.sources.registry import get, source_of
from tests.conftest import QUICK_TIMING
from tests.test_bad_files import one_line, run

QUICK = {"warmup_s": 0.01, "warmup_iterations": 2, "min_iterations": 20, "min_duration_s": 0.05,
         "max_duration_s": 5}


def tiny_cnn() -> Any:
    """A small CNN in PyTorch: input ``image`` [N, 1, 8, 8], 10 outputs."""
    import torch

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 4, 3, padding=1)
            self.fc = torch.nn.Linear(4 * 8 * 8, 10)

        def forward(self, image: torch.Tensor) -> torch.Tensor:
            return self.fc(torch.relu(self.conv(image)).flatten(1))

    return Net()


@pytest.fixture(scope="module")
def torch_models(tmp_path_factory: pytest.TempPathFactory, torch_one_thread: None) -> dict[str, Path]:
    """A small CNN (input ``image`` [N, 1, 8, 8]) as a torch.export program with a dynamic batch, a traced and a
    scripted TorchScript module, a state_dict, and a program with an op the ONNX exporter cannot take."""
    import torch

    class Eigen(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.linalg.eigvalsh(x @ x.transpose(-1, -2))

    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("torch")
    net, example = tiny_cnn().eval(), torch.rand(2, 1, 8, 8)
    batch = torch.export.Dim("batch", min=1, max=1024)
    with warnings.catch_warnings():  # torch.jit's deprecation notices
        warnings.simplefilter("ignore")
        torch.export.save(torch.export.export(net, (example,), dynamic_shapes={"image": {0: batch}}), out / "cnn.pt2")
        torch.jit.trace(net, (example,)).save(str(out / "cnn_traced.pt"))
        torch.jit.script(net).save(str(out / "cnn_scripted.pt"))
        torch.save(net.state_dict(), out / "weights.pt")
        torch.export.save(torch.export.export(Eigen(), (torch.rand(2, 4, 4),)), out / "eigen.pt2")
    return {p.name: p for p in out.iterdir()}


@pytest.fixture(scope="module")
def keras_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same CNN in Keras 3 (input ``image`` [N, 8, 8, 1]) as .keras and as a SavedModel (``model.export``), in
    tf_keras as .h5; a .keras with an unregistered custom layer; a SavedModel with an op tf2onnx cannot take."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf
    import tf_keras

    out = tmp_path_factory.mktemp("keras")
    keras.utils.set_random_seed(0)

    def cnn(k: Any) -> Any:
        image = k.Input((8, 8, 1), name="image")
        x = k.layers.Conv2D(4, 3, padding="same", activation="relu")(image)
        return k.Model(image, k.layers.Dense(10, name="logits")(k.layers.Flatten()(x)))

    model = cnn(keras)
    with warnings.catch_warnings():  # Keras' numpy 2 notice, tf_keras calling .h5 legacy
        warnings.simplefilter("ignore")
        model.save(out / "cnn.keras")
        model.export(str(out / "cnn_savedmodel"), verbose=False)
        cnn(tf_keras).save(out / "cnn.h5")

    class Doubler(keras.layers.Layer):
        def call(self, x: Any) -> Any:
            return x * 2

    x = keras.Input((4,), name="x")
    keras.Model(x, Doubler()(x)).save(out / "custom.keras")

    class Bessel(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x")])
        def serve(self, x: Any) -> Any:
            return {"y": tf.math.special.bessel_i0(x)}

    bessel = Bessel()
    tf.saved_model.save(bessel, str(out / "bessel"), signatures={"serving_default": bessel.serve})
    return {p.name: p for p in out.iterdir()}


@pytest.fixture(scope="module")
def hub_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hub-cache")


def test_registry_tells_each_kind_by_its_ending_or_folder(torch_models: dict[str, Path],
                                                         keras_models: dict[str, Path], digits_onnx: Path) -> None:
    kinds = {name: getattr(source_of(path), "name", None) for name, path in {**torch_models, **keras_models}.items()}
    assert kinds["cnn.pt2"] == "torch_export" and kinds["cnn_traced.pt"] == "torchscript"
    assert kinds["cnn.keras"] == kinds["cnn.h5"] == "keras" and kinds["cnn_savedmodel"] == "savedmodel"
    assert source_of(digits_onnx) is None and source_of(digits_onnx.parent / "missing.keras") is None


@pytest.mark.parametrize("name, shapes, route", [
    ("cnn.pt2", None, "dynamo exporter"),
    ("cnn_traced.pt", None, "example inputs from the trace"),
    ("cnn_scripted.pt", {"image": (1, 1, 8, 8)}, "example inputs from --shape"),
    ("cnn.keras", None, "Keras 3 model"),
    ("cnn.h5", None, "tf_keras model"),
    ("cnn_savedmodel", None, "SavedModel signature serving_default"),
])
def test_hub_onnx_keeps_the_input_name_and_a_dynamic_batch(name: str, shapes: dict[str, tuple[int, ...]] | None,
                                                           route: str, torch_models: dict[str, Path],
                                                           keras_models: dict[str, Path], hub_cache: Path) -> None:
    source = {**torch_models, **keras_models}[name]
    hub = to_hub(source, hub_cache, shapes)
    info = load_onnx_info(hub.onnx)
    (image,) = info.inputs
    assert image.name == "image" and image.dtype == "float32" and route in hub.route
    assert not isinstance(image.shape[0], int)  # the batch stays open
    assert image.shape[1:] == ((1, 8, 8) if name.endswith((".pt", ".pt2")) else (8, 8, 1))
    assert all(not isinstance(o.shape[0], int) for o in info.outputs)
    record = hub.record()
    assert record["kind"] == get(record["kind"]).name and record["path"] == str(source)
    assert record["exporter"] == hub.exporter and record["versions"]


def test_a_second_export_of_the_same_source_is_a_cache_hit(keras_models: dict[str, Path], hub_cache: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    first = to_hub(keras_models["cnn.keras"], hub_cache)

    def no_export(*args: Any) -> str:
        raise AssertionError("exported again")

    monkeypatch.setattr(type(get("keras")), "export_onnx", no_export)
    again = to_hub(keras_models["cnn.keras"], hub_cache)
    assert again.hit and again.onnx == first.onnx and again.source_sha256 == first.source_sha256
    assert (first.onnx.parent / "hub.json").is_file()
    assert not [p for p in first.onnx.parent.parent.iterdir() if p.name.startswith(".")]  # no build folder left


@pytest.mark.parametrize("name, fmt", [("cnn.pt2", "onnx"), ("cnn.pt2", "openvino"), ("cnn_traced.pt", "onnx"),
                                       ("cnn.keras", "onnx"), ("cnn.keras", "tflite"), ("cnn_savedmodel", "openvino"),
                                       ("cnn.h5", "openvino")])
def test_bench_takes_a_source_as_it_takes_an_onnx(name: str, fmt: str, torch_models: dict[str, Path],
                                                   keras_models: dict[str, Path], hub_cache: Path,
                                                   tmp_path: Path) -> None:
    source = {**torch_models, **keras_models}[name]
    status, out, err = run("bench", str(source), "--format", fmt, "--cache-dir", str(hub_cache),
                           "--json", str(tmp_path / "r.json"), *QUICK_TIMING)
    assert status == ExitStatus.OK, out + err
    (result,) = read_results(tmp_path / "r.json")  # the strict record checks take the new field
    assert result.ok and result.model.format == fmt and result.model.name == Path(name).stem
    kind = source_of(source)
    assert kind is not None and result.model.source is not None and result.model.source["kind"] == kind.name
    assert result.model.source["path"] == str(source) and "→" in result.model.source["route"]
    assert result.model.inputs and (result.model.inputs[0]["source_name"] or result.model.inputs[0]["name"]) == "image"


def test_compare_judges_every_format_of_a_source_against_its_hub_onnx(torch_models: dict[str, Path],
                                                                       hub_cache: Path, tmp_path: Path) -> None:
    status, out, err = run("compare", str(torch_models["cnn.pt2"]), "--formats", "onnx,openvino",
                           "--cache-dir", str(hub_cache), "--json", str(tmp_path / "rows.json"))
    assert status == ExitStatus.OK, out + err
    rows = json.loads((tmp_path / "rows.json").read_text())
    assert rows["name"] == "cnn" and [r["format"] for r in rows["rows"]] == ["onnx", "openvino"]
    assert all(r["passed"] for r in rows["rows"])


def test_convert_records_the_origin_and_an_artifact_copied_out_is_named_after_it(
        keras_models: dict[str, Path], hub_cache: Path, tmp_path: Path) -> None:
    source = keras_models["cnn_savedmodel"]
    status, out, err = run("convert", str(source), "--to", "onnx,openvino", "--cache-dir", str(hub_cache),
                           "--out", str(tmp_path / "out"))
    assert status == ExitStatus.OK, out + err
    assert "cnn_savedmodel: " in out and "tf2onnx" in out
    meta = json.loads((tmp_path / "out" / "openvino-fp32" / "meta.json").read_text())
    assert meta["origin"]["kind"] == "savedmodel" and meta["origin"]["route"].startswith("SavedModel")
    status, out, err = run("bench", str(tmp_path / "out" / "openvino-fp32" / meta["main"]),
                           "--json", str(tmp_path / "r.json"), *QUICK_TIMING)
    assert status == ExitStatus.OK, out + err
    (result,) = read_results(tmp_path / "r.json")
    assert result.model.name == "cnn_savedmodel" and result.model.source == meta["origin"]


def test_a_sweep_takes_a_source_path(keras_models: dict[str, Path], hub_cache: Path, tmp_path: Path) -> None:
    nhwc = np.random.default_rng(0).random((8, 8, 8, 1), dtype=np.float32)
    np.savez(tmp_path / "eval.npz", image=nhwc, labels=np.arange(8) % 10)
    spec = {"name": "sources", "models": [{"path": str(keras_models["cnn.h5"]), "dataset": "eval.npz"}],
            "recipes": ["fp32"], "formats": ["onnx"], "devices": ["local-cpu"], "timing": QUICK}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    status, out, err = run("sweep", str(tmp_path / "spec.yaml"), "--store", str(tmp_path / "r.db"),
                           "--cache-dir", str(hub_cache), "--json", str(tmp_path / "r.json"))
    assert status == ExitStatus.OK, out + err
    (result,) = read_results(tmp_path / "r.json")
    assert result.ok and result.model.name == "cnn" and result.model.source is not None
    assert result.model.source["kind"] == "keras" and result.accuracy.samples == 8


def test_the_api_benches_an_nn_module_with_example_inputs(torch_one_thread: None, hub_cache: Path) -> None:
    import torch

    module = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3)).eval()
    result = api.bench(module, example_inputs=(torch.rand(1, 4, 4),), cache_dir=hub_cache, timing=QUICK)
    assert result.ok and result.model.name == "Sequential" and result.model.source is not None
    assert result.model.source["kind"] == "torch_module" and "torch.export" in result.model.source["route"]
    (inp,) = load_onnx_info(Path(result.model.path)).inputs  # type: ignore[arg-type]
    assert inp.shape[1:] == (4, 4) and not isinstance(inp.shape[0], int)
    with pytest.raises(EdgebenchError, match="example_inputs") as missing:
        api.bench(module, cache_dir=hub_cache)
    assert missing.value.status == ExitStatus.USAGE


# --- bad inputs: one line each --------------------------------------------------------------------------------


def test_a_file_that_is_not_what_its_ending_says_is_one_line(torch_models: dict[str, Path], tmp_path: Path) -> None:
    (tmp_path / "model.keras").write_text("not a model\n")
    (tmp_path / "empty_savedmodel").mkdir()
    (tmp_path / "script.pt2").write_bytes(torch_models["cnn_traced.pt"].read_bytes())
    with zipfile.ZipFile(tmp_path / "other.h5", "w") as archive:
        archive.writestr("x.txt", "x")
    cases = {"model.keras": "is not a Keras model (a text file)", "empty_savedmodel": "a folder without saved_model.pb",
             "script.pt2": "a TorchScript archive: name it .pt", "other.h5": "is not a Keras model (a zip of another"}
    for name, needle in cases.items():
        status, _, err = run("bench", str(tmp_path / name), "--cache-dir", str(tmp_path / "cache"))
        assert status == ExitStatus.INVALID_MODEL and needle in one_line(err), err
    status, _, err = run("bench", str(torch_models["weights.pt"]), "--cache-dir", str(tmp_path / "cache"))
    assert status == ExitStatus.INVALID_MODEL and "a torch.save pickle" in one_line(err)


def test_a_missing_framework_names_the_extra(keras_models: dict[str, Path], torch_models: dict[str, Path],
                                             tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tf2onnx", None)  # installed, but its import fails
    status, _, err = run("bench", str(keras_models["cnn.keras"]), "--cache-dir", str(tmp_path / "fresh"))
    assert status == ExitStatus.RUNTIME_MISSING and "pip install 'edgebench[keras]'" in one_line(err)
    monkeypatch.setattr(base, "_installed", lambda dist: None)  # not installed at all
    status, _, err = run("convert", str(torch_models["cnn.pt2"]), "--to", "onnx", "--cache-dir", str(tmp_path / "c"))
    assert status == ExitStatus.RUNTIME_MISSING and "needs torch" in one_line(err)
    assert "pip install 'edgebench[pytorch]'" in err


def test_a_torchscript_without_example_inputs_names_the_option(torch_models: dict[str, Path], tmp_path: Path) -> None:
    status, _, err = run("bench", str(torch_models["cnn_scripted.pt"]), "--cache-dir", str(tmp_path / "cache"))
    assert status == ExitStatus.USAGE and "--shape image:" in one_line(err) and "its inputs: image" in err


@pytest.mark.parametrize("name, needle", [
    ("eigen.pt2", "torch.onnx (dynamo exporter) cannot export eigen.pt2: it cannot convert op aten._linalg_eigh"),
    ("bessel", "tf2onnx cannot export bessel: it cannot convert op BesselI0"),
])
def test_an_export_that_fails_on_an_op_names_the_op_and_the_exporter(name: str, needle: str,
                                                                      torch_models: dict[str, Path],
                                                                      keras_models: dict[str, Path],
                                                                      tmp_path: Path) -> None:
    status, _, err = run("bench", str({**torch_models, **keras_models}[name]), "--cache-dir", str(tmp_path / "cache"))
    assert status == ExitStatus.CONVERSION_FAILED and needle in one_line(err), err
    assert not list((tmp_path / "cache").rglob("*.onnx"))  # a failed export leaves nothing in the cache


def test_a_keras_model_with_an_unregistered_custom_layer_is_one_line(keras_models: dict[str, Path],
                                                                     tmp_path: Path) -> None:
    status, _, err = run("bench", str(keras_models["custom.keras"]), "--cache-dir", str(tmp_path / "cache"))
    assert status == ExitStatus.INVALID_MODEL
    assert "its custom class 'Doubler' is not registered here" in one_line(err) and "SavedModel" in err


def test_an_unknown_ending_names_every_source_ending(tmp_path):
    from edgebench.formats.registry import format_of
    from edgebench.sources.registry import names

    with pytest.raises(EdgebenchError) as err:
        format_of(tmp_path / "model.mlmodel")
    main_endings = {get(n).suffixes[0] for n in names() if get(n).suffixes}  # each source's own ending is named
    assert all(ending in str(err.value) for ending in main_endings), (main_endings, str(err.value))
    assert "SavedModel" in str(err.value)
