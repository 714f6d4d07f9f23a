"""Direct routes (edgebench/artifacts/routes.py, docs/sources.md): a format converted straight from the source model
where its framework has a converter — Keras/SavedModel → TFLiteConverter, SavedModel/torch.export → OpenVINO — on
tiny real models built here; the route recorded in meta.json and in the key; the artifact fed and judged by the
source's names as a hub-route artifact is; compression recipes and --route hub through the hub ONNX."""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgebench.artifacts.cache import ensure
from edgebench.artifacts.routes import choose
from edgebench.cli import main
from edgebench.compress.recipe import parse_recipe
from edgebench.environment import Environment
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.formats import get
from edgebench.pipeline.bench import BenchRequest, execute
from edgebench.pipeline.compare import COMPARE_TIMING
from edgebench.sources.hub import COPY, module_to_hub, to_hub
from tests.test_sources import tiny_cnn

SAMPLES = 32


def run(*argv: str) -> tuple[int, str, str]:
    env = Environment(stdout=io.StringIO(), stderr=io.StringIO(), environ=os.environ)
    status = main(list(argv), env=env)
    return int(status), env.stdout.getvalue(), env.stderr.getvalue()  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def keras_cnn(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A Keras 3 CNN (input ``image`` [N, 8, 8, 1], output ``logits``) as .keras and as a SavedModel, with an eval
    set (labels: the model's own top-1, so top-1 measures agreement) and a calibration set, both NHWC."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    out = tmp_path_factory.mktemp("keras-routes")
    keras.utils.set_random_seed(0)
    image = keras.Input((8, 8, 1), name="image")
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(image)
    model = keras.Model(image, keras.layers.Dense(10, name="logits")(keras.layers.Flatten()(x)))
    data = np.random.default_rng(0).random((SAMPLES, 8, 8, 1), dtype=np.float32)
    expected = np.asarray(model(data, training=False))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.save(out / "cnn.keras")
        model.export(str(out / "cnn_savedmodel"), verbose=False)
    np.savez(out / "eval.npz", image=data, labels=expected.argmax(1))
    np.savez(out / "calib.npz", image=np.random.default_rng(1).random((SAMPLES, 8, 8, 1), dtype=np.float32))
    return {"keras": out / "cnn.keras", "savedmodel": out / "cnn_savedmodel", "eval": out / "eval.npz",
            "calib": out / "calib.npz", "data": data, "expected": expected}


@pytest.fixture(scope="module")
def torch_cnn(tmp_path_factory: pytest.TempPathFactory, torch_one_thread: None) -> dict[str, Any]:
    """The CNN in PyTorch (input ``image`` [N, 1, 8, 8]) as a torch.export program with a dynamic batch."""
    import torch

    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("torch-routes")
    net = tiny_cnn().eval()
    batch = torch.export.Dim("batch", min=1, max=1024)
    torch.export.save(torch.export.export(net, (torch.rand(2, 1, 8, 8),), dynamic_shapes={"image": {0: batch}}),
                      out / "cnn.pt2")
    data = np.random.default_rng(0).random((SAMPLES, 1, 8, 8), dtype=np.float32)
    with torch.no_grad():
        expected = net(torch.from_numpy(data)).numpy()
    np.savez(out / "eval.npz", image=data, labels=expected.argmax(1))
    return {"pt2": out / "cnn.pt2", "eval": out / "eval.npz", "data": data, "expected": expected, "module": net}


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("routes-cache")


def outputs(model: Path, fmt: str, dataset: Path, cache: Path, precision: str = "fp32", route: str = "auto",
            calibration: Path | None = None) -> tuple[np.ndarray, Any]:
    """The source model converted to ``fmt`` and run by the runner on ``dataset`` (keyed by the source's input
    names): its first output in the source's names and layout, and the result."""
    outcome = execute(BenchRequest(model=model, format=fmt, precision=precision, dataset=dataset, cache_dir=cache,
                                   calibration=calibration, threads=1, timing=COMPARE_TIMING, route=route))
    assert outcome.outputs is not None and outcome.result.ok
    (got,) = outcome.outputs.values()
    return got, outcome


def test_keras_to_tflite_fp32_goes_through_the_tflite_converter(keras_cnn: dict[str, Any], cache: Path) -> None:
    got, outcome = outputs(keras_cnn["keras"], "tflite", keras_cnn["eval"], cache)
    meta = outcome.target.meta
    assert meta is not None and meta.route is not None
    assert meta.route["route"] == "Keras model → TFLiteConverter.from_keras_model"
    assert meta.route["tool"].startswith("tensorflow ") and meta.details["converter"] == "tf.lite.TFLiteConverter"
    assert set(meta.tool_versions) == {"tensorflow", "keras"}  # the converter and the Keras that loads the file
    (image,), (logits,) = meta.inputs, meta.outputs
    assert (image.name, image.source_name, image.permutation) == ("image", "image", None)  # NHWC on both sides
    assert (logits.name, logits.source_name) == ("output_0", "logits")  # Keras 3's signature name, paired by order
    assert np.max(np.abs(got - keras_cnn["expected"])) < 1e-4
    assert outcome.result.accuracy.top1 == 1.0

    hub, hub_outcome = outputs(keras_cnn["keras"], "tflite", keras_cnn["eval"], cache, route="hub")
    hub_meta = hub_outcome.target.meta
    assert hub_meta is not None and hub_meta.route is not None and hub_meta.route["route"] == "hub ONNX → onnx2tf"
    assert hub_meta.key != meta.key  # each route its own artifact
    assert np.max(np.abs(hub - got)) < 1e-4 and hub_outcome.result.accuracy.top1 == outcome.result.accuracy.top1


@pytest.mark.parametrize("precision, tolerance", [("fp16", 1e-2), ("int8", 0.1), ("int8-dynamic", 0.1)])
def test_keras_to_tflite_at_each_precision(precision: str, tolerance: float, keras_cnn: dict[str, Any],
                                           cache: Path) -> None:
    got, outcome = outputs(keras_cnn["keras"], "tflite", keras_cnn["eval"], cache, precision,
                           calibration=keras_cnn["calib"] if precision == "int8" else None)
    meta = outcome.target.meta
    assert meta is not None and meta.route is not None and meta.route["route"].startswith("Keras model")
    assert get("tflite").read_precision(outcome.target.main) == precision  # read back from the file
    expected = keras_cnn["expected"]
    assert np.linalg.norm(got - expected) / np.linalg.norm(expected) < tolerance
    if precision == "int8":  # onnx2tf's integer_quant: int8 activations, float32 I/O
        assert meta.details["per_channel"] is True and "full integer" in meta.details["quantizer"]
        assert meta.inputs[0].dtype == "float32"


def test_savedmodel_to_tflite_and_openvino_go_direct(keras_cnn: dict[str, Any], cache: Path) -> None:
    for fmt, route in (("tflite", "SavedModel → TFLiteConverter.from_saved_model"),
                       ("openvino", "SavedModel → openvino.convert_model")):
        got, outcome = outputs(keras_cnn["savedmodel"], fmt, keras_cnn["eval"], cache)
        meta = outcome.target.meta
        assert meta is not None and meta.route is not None and meta.route["route"] == route
        assert [t.source_name for t in meta.inputs] == ["image"]
        assert np.max(np.abs(got - keras_cnn["expected"])) < 1e-4


def test_savedmodel_to_openvino_int8_is_quantized_by_nncf(keras_cnn: dict[str, Any], cache: Path) -> None:
    hub = to_hub(keras_cnn["savedmodel"], cache)
    made = ensure(hub.onnx, "openvino", "int8", calibration=keras_cnn["calib"], root=cache)
    assert made.meta.route is not None and made.meta.route["route"] == "SavedModel → openvino.convert_model"
    assert made.meta.details["quantizer"].startswith("nncf.quantize") and made.meta.size_ratio is not None
    assert get("openvino").read_precision(made.main) == "int8"
    reference = ensure(hub.onnx, "openvino", "fp32", calibration=keras_cnn["calib"], root=cache).meta
    assert made.meta.reference_key == reference.key and reference.route == made.meta.route  # fp32 by the same route


def test_pt2_to_openvino_goes_direct_and_agrees_with_torch(torch_cnn: dict[str, Any], cache: Path) -> None:
    got, outcome = outputs(torch_cnn["pt2"], "openvino", torch_cnn["eval"], cache)
    meta = outcome.target.meta
    assert meta is not None and meta.route is not None
    assert meta.route["route"] == "torch.export program → openvino.convert_model"
    assert meta.route["tool"].startswith("openvino ") and set(meta.tool_versions) == {"openvino", "torch"}
    (image,) = meta.inputs
    assert image.name == image.source_name == "image" and image.shape == (None, 1, 8, 8)  # the hub ONNX's shape
    assert np.max(np.abs(got - torch_cnn["expected"])) < 1e-4


def test_an_nn_module_goes_direct_through_its_kept_program(torch_cnn: dict[str, Any], cache: Path) -> None:
    import torch

    hub = module_to_hub(torch_cnn["module"], (torch.rand(1, 1, 8, 8),), cache)
    assert (hub.onnx.parent / COPY / "Net.pt2").is_file()
    made = ensure(hub.onnx, "openvino", root=cache)
    assert made.meta.route is not None and made.meta.route["route"].startswith("nn.Module's torch.export program")


@pytest.mark.parametrize("recipe", ["prune:0.5", "int8:entropy"])
def test_a_recipe_the_route_cannot_honour_goes_through_the_hub(recipe: str, keras_cnn: dict[str, Any],
                                                              cache: Path) -> None:
    hub = to_hub(keras_cnn["savedmodel"], cache)
    assert choose(hub.onnx, "openvino", parse_recipe(recipe)) is None
    made = ensure(hub.onnx, "openvino", recipe=recipe, calibration=keras_cnn["calib"], root=cache)
    assert made.meta.route is not None and made.meta.route["route"] == "hub ONNX → openvino.convert_model"


def test_the_key_holds_the_route_and_the_source_content(keras_cnn: dict[str, Any], cache: Path) -> None:
    hub = to_hub(keras_cnn["savedmodel"], cache)
    direct = choose(hub.onnx, "openvino", parse_recipe("fp32"))
    assert direct is not None and direct.key_material() == {
        "route": "SavedModel → openvino.convert_model", "route_source_sha256": hub.source_sha256}
    assert choose(hub.onnx, "openvino", parse_recipe("fp32"), "hub") is None
    assert choose(hub.onnx, "onnx", parse_recipe("fp32")) is None  # no direct route to ONNX: it is the hub
    first, forced = ensure(hub.onnx, "openvino", root=cache), ensure(hub.onnx, "openvino", root=cache, route="hub")
    assert first.meta.key != forced.meta.key and forced.meta.route is not None
    assert forced.meta.route["route"].startswith("hub ONNX")
    assert ensure(hub.onnx, "openvino", root=cache).hit and ensure(hub.onnx, "openvino", root=cache, route="hub").hit


def test_a_quantization_aware_keras_model_converts_to_int8_with_its_own_ranges(tmp_path: Path, cache: Path) -> None:
    """tfmot's QAT model (tf_keras, a SavedModel) → TFLite int8 with no calibration set: its trained ranges."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf
    import tf_keras
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import tensorflow_model_optimization as tfmot

    tf_keras.utils.set_random_seed(0)
    x = tf_keras.Input((16,), name="features")
    model = tf_keras.Model(x, tf_keras.layers.Dense(4, name="scores")(tf_keras.layers.Dense(8, activation="relu")(x)))
    qat = tfmot.quantization.keras.quantize_model(model)
    qat.compile("adam", tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    data = np.random.default_rng(0).random((64, 16), dtype=np.float32)
    qat.fit(data, np.arange(64) % 4, epochs=1, verbose=0)  # a training step calibrates the fake-quant ranges
    tf.saved_model.save(qat, str(tmp_path / "qat"))
    hub = to_hub(tmp_path / "qat", cache)
    made = ensure(hub.onnx, "tflite", "int8", root=cache)  # no calibration: the route takes QAT's ranges
    assert made.meta.route is not None and made.meta.route["route"].startswith("SavedModel → TFLiteConverter")
    assert "quantization-aware" in made.meta.details["quantizer"] and made.meta.calibration_sha256 is None
    assert get("tflite").read_precision(made.main) == "int8"


def test_convert_prints_the_route_and_route_hub_forces_the_onnx(keras_cnn: dict[str, Any], cache: Path) -> None:
    status, out, err = run("convert", str(keras_cnn["keras"]), "--to", "tflite,openvino", "--cache-dir", str(cache))
    assert status == ExitStatus.OK, out + err
    assert "tflite fp32: Keras model → TFLiteConverter.from_keras_model (tensorflow " in out
    assert "openvino fp32: hub ONNX → openvino.convert_model" in out  # no direct Keras → OpenVINO route
    status, out, err = run("convert", str(keras_cnn["savedmodel"]), "--to", "openvino", "--route", "hub",
                           "--cache-dir", str(cache))
    assert status == ExitStatus.OK and "openvino fp32: hub ONNX → openvino.convert_model (openvino " in out, out + err
    status, _, err = run("convert", str(keras_cnn["keras"]), "--to", "tflite", "--route", "sideways",
                         "--cache-dir", str(cache))
    assert status == ExitStatus.USAGE and "unknown route 'sideways': choose one of auto, hub" in err


# --- bad inputs: one line each --------------------------------------------------------------------------------


def test_a_direct_conversion_that_fails_names_the_op_and_the_hub_route(tmp_path: Path) -> None:
    """tf2onnx exports MatrixDeterminant (ONNX Det); TFLite has no builtin kernel for it."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    class Det(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 3, 3], tf.float32, name="x")])
        def serve(self, x: Any) -> Any:
            return {"y": tf.linalg.det(x)}

    det = Det()
    tf.saved_model.save(det, str(tmp_path / "det"), signatures={"serving_default": det.serve})
    status, _, err = run("convert", str(tmp_path / "det"), "--to", "tflite", "--cache-dir", str(tmp_path / "c"))
    lines = err.strip().splitlines()
    assert status == ExitStatus.CONVERSION_FAILED and len(lines) == 1 and "Traceback" not in err, err
    assert "TFLiteConverter cannot convert det to fp32 (TensorFlow op MatrixDeterminant has no builtin" in lines[0]
    assert "(--route hub)" in lines[0]
    assert not list((tmp_path / "c").rglob("model.tflite"))  # nothing half-made in the cache


def test_a_route_whose_tool_is_missing_names_the_extra(keras_cnn: dict[str, Any], cache: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from edgebench.artifacts import routes

    hub = to_hub(keras_cnn["savedmodel"], cache)
    monkeypatch.setattr(routes, "_installed", lambda dist: None if dist == "openvino" else "1.0")
    with pytest.raises(EdgebenchError, match=r"needs openvino, which is not installed: pip install "
                                             r"'edgebench\[openvino\]', or convert through the ONNX \(--route hub\)"
                       ) as caught:
        ensure(hub.onnx, "openvino", root=cache)
    assert caught.value.status == ExitStatus.RUNTIME_MISSING
