"""Where edgebench's bundled files live, inside the installed package (found with importlib.resources, so a
wheel works as well as a checkout): the on-device runner, the bundled device profiles and the demo's data."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from edgebench.errors import EdgebenchError, ExitStatus


def _package_dir(package: str, probe: str) -> Path:
    path = Path(str(files(package)))
    if not (path / probe).is_file():
        raise EdgebenchError(f"edgebench's bundled files are not a folder of files ({path}): install edgebench "
                             "unzipped, as pip does", ExitStatus.USAGE)
    return path


def runner_dir() -> Path:
    """The on-device runner (the package ``edgebench.runner``): a folder of plain files the transports run as
    they are, locally or pushed to a board."""
    return _package_dir("edgebench.runner", "edgebench_runner.py")


def bundled_profiles_dir() -> Path:
    """The device profiles that ship with edgebench (``local-cpu``, the example boards)."""
    return _package_dir("edgebench.bundled", "profiles/local-cpu.yaml") / "profiles"


def demo_dir() -> Path:
    """The demo: the digits CNN (``digits_cnn.onnx``), its labelled ``eval.npz``, ``calib.npz``, its labelled
    training split ``train.npz`` (for ``--finetune``) and the sweep spec ``demo-sweep.yaml``."""
    return _package_dir("edgebench.bundled", "demo/demo-sweep.yaml") / "demo"
