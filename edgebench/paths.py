"""Where edgebench's bundled folders (runners/, device_profiles/, examples/) live."""

from __future__ import annotations

from pathlib import Path

from edgebench.errors import EdgebenchError, ExitStatus

ROOT = Path(__file__).resolve().parent.parent


def bundled_dir(name: str) -> Path:
    """A top-level folder of the edgebench checkout (installed editable, as the Makefile does)."""
    return ROOT / name


def runner_dir() -> Path:
    path = bundled_dir("runners")
    if not (path / "edgebench_runner.py").is_file():
        raise EdgebenchError(f"the on-device runner is missing ({path}): install edgebench from its "
                             "checkout with 'pip install -e .'", ExitStatus.USAGE)
    return path
