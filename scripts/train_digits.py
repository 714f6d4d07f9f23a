"""Train the bundled example model: a small CNN on scikit-learn's 8x8 digits.

Run from the repository root:

    python scripts/train_digits.py [--out DIR] [--epochs N]

Needs torch==2.13.0 (CPU build), scikit-learn, numpy, onnx and onnxruntime.
Always pin torch (``pip install torch==2.13.0``): an unpinned install pulls
gigabytes of CUDA libraries.

Writes to DIR (default: this script's folder):
  digits_cnn.onnx  float32 model, input ``input`` [batch,1,8,8] -> ``logits`` [batch,10]
  eval.npz         held-out 25% split: ``inputs`` [N,1,8,8] float32, ``labels`` [N] int64
  calib.npz        300 training samples for calibration: ``inputs`` [300,1,8,8] float32
  train.npz        the 75% training split, for fine-tuning (``--finetune``): ``inputs``, ``labels``

``--data-only`` writes train.npz alone (the split is seeded: the same samples the model was trained on).

The data set ships with scikit-learn (no download), and seeds, a single thread
and deterministic algorithms make reruns reproduce the same model. The ONNX
model is checked in onnxruntime; the script exits non-zero if its held-out
top-1 accuracy is below 0.97.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections import OrderedDict
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

SEED = 0
MIN_TOP1 = 0.97
CALIB_PER_CLASS = 30  # 10 classes -> 300 calibration samples


def build_model() -> nn.Sequential:
    """A plain chain of Conv2d/Linear layers, so conv filters can be pruned structurally."""
    return nn.Sequential(
        OrderedDict(
            conv1=nn.Conv2d(1, 16, 3, padding=1),
            relu1=nn.ReLU(),
            conv2=nn.Conv2d(16, 32, 3, padding=1),
            relu2=nn.ReLU(),
            pool=nn.MaxPool2d(2),
            conv3=nn.Conv2d(32, 64, 3, padding=1),
            relu3=nn.ReLU(),
            flatten=nn.Flatten(),
            fc1=nn.Linear(64 * 4 * 4, 64),
            relu4=nn.ReLU(),
            fc2=nn.Linear(64, 10),
        )
    )


def load_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Stratified 75/25 split; images scaled to [0, 1] as float32 NCHW."""
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None, :, :]
    y = digits.target.astype(np.int64)
    x_tr, x_ev, y_tr, y_ev = train_test_split(x, y, test_size=0.25, stratify=y, random_state=SEED)
    return x_tr, x_ev, y_tr, y_ev


def shift(batch: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Augment: translate each image by up to one pixel, filling with zeros."""
    padded = nn.functional.pad(batch, (1, 1, 1, 1))
    offsets = torch.randint(0, 3, (batch.shape[0], 2), generator=gen)
    return torch.stack([p[:, i : i + 8, j : j + 8] for p, (i, j) in zip(padded, offsets.tolist())])


def train(model: nn.Module, x: np.ndarray, y: np.ndarray, epochs: int, batch_size: int = 64) -> None:
    gen = torch.Generator().manual_seed(SEED)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(len(xt), generator=gen)
        total = 0.0
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            opt.zero_grad()
            loss = loss_fn(model(shift(xt[idx], gen)), yt[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        sched.step()
        if (epoch + 1) % 10 == 0 or epoch + 1 == epochs:
            print(f"epoch {epoch + 1:3d}/{epochs}  loss {total / len(xt):.4f}")
    model.eval()


def pick_calibration(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """CALIB_PER_CLASS random training samples of each class, in a seeded order."""
    rng = np.random.default_rng(SEED)
    idx = np.concatenate([rng.choice(np.flatnonzero(y == c), CALIB_PER_CLASS, replace=False) for c in range(10)])
    return x[rng.permutation(idx)]


def export_onnx(model: nn.Module, path: Path) -> None:
    """Legacy (TorchScript) exporter: a plain Conv/Relu/MaxPool/Flatten/Gemm graph, weights inline."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the legacy exporter is chosen on purpose
        torch.onnx.export(
            model,
            (torch.zeros(1, 1, 8, 8),),
            str(path),
            dynamo=False,
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
            opset_version=17,
        )
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "edgebench" / "bundled" / "demo",
                        help="output folder (default: the demo data bundled in the package)")
    parser.add_argument("--epochs", type=int, default=60, help="training epochs")
    parser.add_argument("--data-only", action="store_true", help="write train.npz only, keep the model")
    args = parser.parse_args()
    if args.data_only:
        x_tr, _, y_tr, _ = load_split()
        np.savez_compressed(args.out / "train.npz", inputs=x_tr, labels=y_tr)
        print(f"wrote {args.out / 'train.npz'} ({len(y_tr)} samples)")
        return 0

    torch.manual_seed(SEED)
    np.random.seed(SEED)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)

    x_tr, x_ev, y_tr, y_ev = load_split()
    model = build_model()
    train(model, x_tr, y_tr, args.epochs)

    args.out.mkdir(parents=True, exist_ok=True)
    onnx_path = args.out / "digits_cnn.onnx"
    export_onnx(model, onnx_path)
    np.savez_compressed(args.out / "eval.npz", inputs=x_ev, labels=y_ev)
    np.savez_compressed(args.out / "calib.npz", inputs=pick_calibration(x_tr, y_tr))
    np.savez_compressed(args.out / "train.npz", inputs=x_tr, labels=y_tr)

    with torch.no_grad():
        torch_logits = model(torch.from_numpy(x_ev)).numpy()
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    (ort_logits,) = session.run(["logits"], {"input": x_ev})
    max_diff = float(np.abs(ort_logits - torch_logits).max())
    same_top1 = bool((ort_logits.argmax(1) == torch_logits.argmax(1)).all())
    top1 = float((ort_logits.argmax(1) == y_ev).mean())
    print(f"onnxruntime vs torch: max |diff| {max_diff:.2e}, same top-1: {same_top1}")
    print(f"held-out top-1 (onnxruntime, {len(y_ev)} samples): {top1:.4f}")
    print(f"wrote {onnx_path} ({onnx_path.stat().st_size} bytes), eval.npz, calib.npz")
    if not same_top1 or max_diff > 1e-3:
        print("error: ONNX model disagrees with the torch model", file=sys.stderr)
        return 1
    if top1 < MIN_TOP1:
        print(f"error: top-1 {top1:.4f} < {MIN_TOP1}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
