"""Where edgebench's bundled files live: the on-device runner inside the package, and the folders of the
checkout (device_profiles/, examples/, docs/)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from edgebench.errors import EdgebenchError, ExitStatus

ROOT = Path(__file__).resolve().parent.parent


def bundled_dir(name: str) -> Path:
    """A top-level folder of the edgebench checkout (installed editable, as the Makefile does)."""
    return ROOT / name


def runner_dir() -> Path:
    """The on-device runner (the package ``edgebench.runner``): a folder of plain files the transports run as
    they are, locally or pushed to a board."""
    path = Path(str(files("edgebench.runner")))
    if not (path / "edgebench_runner.py").is_file():
        raise EdgebenchError(f"the on-device runner is not a folder of files ({path}): install edgebench "
                             "unzipped (pip install)", ExitStatus.USAGE)
    return path
