"""Build the framework source models edgebench's sources are tested on: the digits CNN in PyTorch and Keras,
and copies compressed in each framework's own tools (tfmot pruning, clustering and quantization-aware
training; torch.nn.utils.prune; torch.ao quantization-aware training).

Run from the repository root (seconds to a minute on one CPU core):

    python scripts/make_source_models.py --out DIR [--epochs N] [--only torch|keras]

Trains on the bundled digits data (``edgebench/bundled/demo``: train.npz, eval.npz, calib.npz, NCHW
[N,1,8,8]) and writes into DIR:

  digits_torch.pt2          torch.export program of the digits CNN (input ``input`` [N,1,8,8])
  digits_torch.pt           the same module as TorchScript
  digits_torch_pruned.pt2   torch.nn.utils.prune l1_unstructured 60% on every Conv2d/Linear weight, a short
                            fine-tune with the masks, prune.remove
  digits_torch_qat.pt2      torch.ao quantization-aware training (FX, qnnpack qconfig), its fake quantizers
                            then frozen into the quantized_decomposed ops and int8 weights PT2E's convert_pt2e
                            writes (prepare_pt2e/convert_pt2e themselves left torch.ao for torchao, which is not
                            installed); loading it needs ``import torch.ao.quantization.fx._decomposed`` first
  digits_keras.keras        the Keras 3 digits CNN (input ``image`` [N,8,8,1], NHWC)
  digits_keras_savedmodel/  the same model as a TensorFlow SavedModel (``model.export``)
  digits_pruned.h5          tfmot prune_low_magnitude (PolynomialDecay to 60%), fine-tuned, strip_pruning
  digits_clustered.h5       tfmot cluster_weights (16 clusters, k-means++), fine-tuned, strip_clustering
  digits_qat/               tfmot quantize_model (QAT), fine-tuned, as a SavedModel: the form tf2onnx turns
                            into a QDQ ONNX and the TFLiteConverter into an int8 model (an .h5 needs
                            tfmot's quantize_scope to load)
  eval_nhwc.npz, calib_nhwc.npz   the bundled sets in NHWC keyed by the Keras input name (``image``)
  eval.npz, calib.npz       the bundled NCHW sets, for the torch models
  models.json               each file: framework, compression, what it should keep, its top-1 on eval

The .h5 files are Keras 2 (tf_keras: tfmot works on it). Everything is seeded and runs on one thread, so a
rerun writes the same models. Each model's top-1 on the eval set, computed by its framework, is printed and
recorded; the script fails when a base model does not reach MIN_TOP1. Needs torch, tensorflow, tf_keras, keras
and tensorflow-model-optimization (the keras and pytorch extras).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

SEED = 0
DEMO = Path(__file__).resolve().parent.parent / "edgebench" / "bundled" / "demo"
KERAS_INPUT = "image"
PRUNE_SPARSITY = 0.6
CLUSTERS = 16
MIN_TOP1 = 0.9  # a base model below this did not train


def load_data() -> dict[str, np.ndarray]:
    """The bundled splits, NCHW float32."""
    train, ev, calib = (np.load(DEMO / f"{name}.npz") for name in ("train", "eval", "calib"))
    return {"x_train": train["inputs"], "y_train": train["labels"], "x_eval": ev["inputs"], "y_eval": ev["labels"],
            "x_calib": calib["inputs"]}


def top1(logits: np.ndarray, labels: np.ndarray) -> float:
    return float((np.asarray(logits).argmax(1) == labels).mean())


class Manifest:
    """models.json: one entry per file written, with what its compression should leave in every format."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.models: list[dict[str, Any]] = []

    def add(self, file: str, framework: str, top1_eval: float, compression: str | None = None,
            **expect: Any) -> None:
        entry = {"file": file, "framework": framework, "compression": compression, "top1": round(top1_eval, 4),
                 "eval": "eval_nhwc.npz" if framework == "keras" else "eval.npz",
                 "calibration": "calib_nhwc.npz" if framework == "keras" else "calib.npz", **expect}
        self.models.append(entry)
        print(f"{file:28s} {framework:6s} {compression or 'none':12s} top-1 {top1_eval:.4f}", flush=True)

    def write(self) -> None:
        existing = json.loads((self.out / "models.json").read_text()) if (self.out / "models.json").is_file() else {}
        done = {m["file"] for m in self.models}
        kept = [m for m in existing.get("models", []) if m["file"] not in done]
        (self.out / "models.json").write_text(json.dumps({"seed": SEED, "models": kept + self.models}, indent=1))


# ---------------------------------------------------------------------------------------------------- torch


def make_torch(epochs: int, data: dict[str, np.ndarray], out: Path, manifest: Manifest) -> None:
    import torch
    from torch import nn

    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    x_tr, y_tr = torch.from_numpy(data["x_train"]), torch.from_numpy(data["y_train"])
    x_ev = torch.from_numpy(data["x_eval"])

    def fit(model: nn.Module, n_epochs: int, lr: float = 2e-3) -> None:
        gen = torch.Generator().manual_seed(SEED)
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        model.train()
        for _ in range(n_epochs):
            order = torch.randperm(len(x_tr), generator=gen)
            for start in range(0, len(order), 32):
                idx = order[start:start + 32]
                opt.zero_grad()
                nn.functional.cross_entropy(model(x_tr[idx]), y_tr[idx]).backward()
                opt.step()
        model.eval()

    def evaluate(model: Callable[[Any], Any]) -> float:
        with torch.no_grad():
            return top1(model(x_ev).numpy(), data["y_eval"])

    example = (x_ev[:2],)  # a batch of 2: a batch of 1 would specialize the dynamic dimension
    model = torch_model()
    fit(model, epochs)
    base = evaluate(model)
    check_trained("digits_torch", base)
    dynamic = {"input": {0: torch.export.Dim("batch", min=1, max=4096)}}
    torch.export.save(torch.export.export(model, example, dynamic_shapes=dynamic), out / "digits_torch.pt2")
    manifest.add("digits_torch.pt2", "torch", base)
    torch.jit.save(torch.jit.trace(model, example), str(out / "digits_torch.pt"))
    manifest.add("digits_torch.pt", "torch", evaluate(torch.jit.load(str(out / "digits_torch.pt"))))

    import copy

    from torch.nn.utils import prune

    pruned = copy.deepcopy(model)
    layers = [m for m in pruned.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    for layer in layers:
        prune.l1_unstructured(layer, "weight", amount=PRUNE_SPARSITY)
    fit(pruned, max(1, epochs // 3), lr=5e-4)  # the masks hold the zeros while the rest recovers
    for layer in layers:
        prune.remove(layer, "weight")
    torch.export.save(torch.export.export(pruned, example, dynamic_shapes=dynamic), out / "digits_torch_pruned.pt2")
    manifest.add("digits_torch_pruned.pt2", "torch", evaluate(pruned), "prune", sparsity=PRUNE_SPARSITY)

    qat = torch_qat(model, example, lambda m: fit(m, max(1, epochs // 3), lr=5e-4))
    torch.export.save(torch.export.export(qat, example, dynamic_shapes=dynamic), out / "digits_torch_qat.pt2")
    manifest.add("digits_torch_qat.pt2", "torch", evaluate(qat), "qat", int8=True)


def torch_model() -> Any:
    """The digits CNN of scripts/train_digits.py, smaller: a chain of Conv2d/Linear layers."""
    from torch import nn

    return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.Flatten(),
                         nn.Linear(64 * 4 * 4, 64), nn.ReLU(), nn.Linear(64, 10))


def torch_qat(model: Any, example: tuple[Any, ...], fit: Callable[[Any], None]) -> Any:
    """torch.ao FX quantization-aware training (qnnpack's qconfig: int8 weights, uint8 activations),
    fine-tuned; then every fake quantizer replaced by torch.ao's decomposed quantize/dequantize ops at its
    trained scale and zero point (``frozen``), the weights stored as int8: the graph PT2E's ``convert_pt2e``
    writes, which torch.export keeps and torch.onnx writes as Q/DQ. (``convert_fx``'s quantized kernels
    reach no exporter, the trained fake quantizers' fused observer op mutates buffers the ONNX exporter cannot
    lower, and PT2E's own prepare/convert left torch.ao for torchao, which is not installed.)"""
    import copy
    import warnings

    from torch.ao.quantization import FakeQuantizeBase, get_default_qat_qconfig_mapping
    from torch.ao.quantization.quantize_fx import prepare_qat_fx

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization's deprecation notices
        prepared = prepare_qat_fx(copy.deepcopy(model).train(), get_default_qat_qconfig_mapping("qnnpack"), example)
        fit(prepared)
    prepared.eval()
    done: dict[tuple[int, str], Any] = {}
    for parent in list(prepared.modules()):
        for name, child in list(parent._modules.items()):  # every name: one quantizer may hold two (max pool's)
            if isinstance(child, FakeQuantizeBase):
                weight = parent.weight if name == "weight_fake_quant" else None
                key = (id(child), name)
                done[key] = done.get(key) or frozen(child, weight)
                setattr(parent, name, done[key])
    return prepared


def frozen(fq: Any, weight: Any = None) -> Any:
    """``fq``'s trained fake quantization as quantized_decomposed ops with constant qparams; for a weight's
    quantizer (``weight`` given) the int8 weight itself, dequantized where the layer reads it."""
    import torch
    from torch.ao.quantization.fx import _decomposed  # noqa: F401  (registers torch.ops.quantized_decomposed)

    ops = torch.ops.quantized_decomposed
    scale, zero_point = fq.calculate_qparams()
    if scale.numel() != 1:
        raise SystemExit("error: per-channel fake quantizers are not expected from the qnnpack qconfig")
    dtype = {torch.qint8: torch.int8, torch.quint8: torch.uint8}[fq.dtype]
    qparams = (float(scale.reshape(-1)[0]), int(zero_point.reshape(-1)[0]), int(fq.quant_min), int(fq.quant_max),
               dtype)

    class Frozen(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            if weight is not None:
                self.register_buffer("int8_weight", ops.quantize_per_tensor(weight.detach(), *qparams))

        def forward(self, x: Any) -> Any:
            if weight is not None:  # x is the float weight: the layer computes with its int8 copy
                return ops.dequantize_per_tensor(self.int8_weight, *qparams)
            return ops.dequantize_per_tensor(ops.quantize_per_tensor(x, *qparams), *qparams)

    return Frozen()


# ---------------------------------------------------------------------------------------------------- keras


def nhwc(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(x, (0, 2, 3, 1)))


def make_keras(epochs: int, data: dict[str, np.ndarray], out: Path, manifest: Manifest) -> None:
    os.environ["TF_USE_LEGACY_KERAS"] = "1"  # tfmot works on Keras 2 (tf_keras) only
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf
    import tf_keras
    import tensorflow_model_optimization as tfmot

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf_keras.utils.set_random_seed(SEED)
    tf.config.experimental.enable_op_determinism()
    x_tr, x_ev = nhwc(data["x_train"]), nhwc(data["x_eval"])
    y_tr, y_ev = data["y_train"], data["y_eval"]
    sets: dict[str, dict[str, Any]] = {"eval_nhwc.npz": {KERAS_INPUT: x_ev, "labels": y_ev},
                                       "calib_nhwc.npz": {KERAS_INPUT: nhwc(data["x_calib"])}}
    for name, arrays in sets.items():
        np.savez_compressed(out / name, **arrays)

    def fit(model: Any, n_epochs: int, lr: float = 2e-3, callbacks: list[Any] | None = None) -> None:
        model.compile(optimizer=tf_keras.optimizers.Adam(lr),
                      loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.fit(x_tr, y_tr, batch_size=32, epochs=n_epochs, shuffle=True, verbose=0, callbacks=callbacks or [])

    def evaluate(model: Any) -> float:
        return top1(model.predict(x_ev, batch_size=256, verbose=0), y_ev)

    base = tf_keras.Sequential(keras_layers(tf_keras))
    fit(base, epochs)
    check_trained("digits_keras", evaluate(base))

    import keras  # Keras 3, beside tf_keras: the same layers, the trained weights copied over

    k3 = keras.Sequential(keras_layers(keras))
    k3.set_weights(base.get_weights())
    k3_top1 = top1(k3.predict(x_ev, batch_size=256, verbose=0), y_ev)
    k3.save(out / "digits_keras.keras")
    manifest.add("digits_keras.keras", "keras", k3_top1)
    saved = out / "digits_keras_savedmodel"
    shutil.rmtree(saved, ignore_errors=True)
    k3.export(str(saved), verbose=False)
    manifest.add("digits_keras_savedmodel", "keras", k3_top1)

    few = max(1, epochs // 3)
    steps = int(np.ceil(len(x_tr) / 32)) * few
    schedule = tfmot.sparsity.keras.PolynomialDecay(initial_sparsity=0.0, final_sparsity=PRUNE_SPARSITY,
                                                    begin_step=0, end_step=max(1, steps - steps // 4), frequency=10)
    pruning = tfmot.sparsity.keras.prune_low_magnitude(clone(tf_keras, base), pruning_schedule=schedule)
    fit(pruning, few, lr=5e-4, callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    pruned = tfmot.sparsity.keras.strip_pruning(pruning)
    pruned.save(out / "digits_pruned.h5")
    manifest.add("digits_pruned.h5", "keras", evaluate(pruned), "prune", sparsity=PRUNE_SPARSITY)

    cluster = tfmot.clustering.keras
    clustering = cluster.cluster_weights(clone(tf_keras, base), number_of_clusters=CLUSTERS,
                                         cluster_centroids_init=cluster.CentroidInitialization.KMEANS_PLUS_PLUS)
    fit(clustering, few, lr=5e-4)
    clustered = cluster.strip_clustering(clustering)
    clustered.save(out / "digits_clustered.h5")
    manifest.add("digits_clustered.h5", "keras", evaluate(clustered), "cluster", clusters=CLUSTERS)

    qat = tfmot.quantization.keras.quantize_model(clone(tf_keras, base))
    fit(qat, few, lr=5e-4)
    folder = out / "digits_qat"
    shutil.rmtree(folder, ignore_errors=True)
    qat.save(str(folder), include_optimizer=False)  # tf_keras: a SavedModel folder with its serving signature
    manifest.add("digits_qat", "keras", evaluate(qat), "qat", int8=True)


def keras_layers(k: Any) -> list[Any]:
    """The digits CNN in NHWC, named input; ``k`` is ``keras`` (3) or ``tf_keras`` (2): the same layers."""
    return [k.Input((8, 8, 1), name=KERAS_INPUT), k.layers.Conv2D(16, 3, padding="same", activation="relu"),
            k.layers.Conv2D(32, 3, padding="same", activation="relu"), k.layers.MaxPooling2D(2),
            k.layers.Conv2D(64, 3, padding="same", activation="relu"), k.layers.Flatten(),
            k.layers.Dense(64, activation="relu"), k.layers.Dense(10)]


def clone(tf_keras: Any, model: Any) -> Any:
    copy = tf_keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def check_trained(name: str, value: float) -> None:
    if value < MIN_TOP1:
        raise SystemExit(f"error: {name} top-1 {value:.4f} < {MIN_TOP1}: training failed")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="output folder (created)")
    parser.add_argument("--epochs", type=int, default=6, help="base training epochs (compressed copies: a third)")
    parser.add_argument("--only", choices=("torch", "keras"), help="build one framework's models")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    data = load_data()
    for name in ("eval", "calib"):
        shutil.copyfile(DEMO / f"{name}.npz", args.out / f"{name}.npz")
    manifest = Manifest(args.out)
    t0 = time.perf_counter()
    if args.only in (None, "torch"):
        make_torch(args.epochs, data, args.out, manifest)
    if args.only in (None, "keras"):
        make_keras(args.epochs, data, args.out, manifest)
    manifest.write()
    print(f"wrote {len(manifest.models)} models and models.json to {args.out} in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
