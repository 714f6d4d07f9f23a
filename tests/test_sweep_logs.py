"""`edgebench sweep` in a CI log: plain progress lines when stdout is no terminal (rich bars in one), no
runtime chatter, and an exit status that says cells failed unless --allow-failures."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from edgebench.cli import main
from edgebench.environment import Environment
from edgebench.errors import ExitStatus
from tests.conftest import DIGITS

QUICK = {"warmup_s": 0.01, "warmup_iterations": 2, "min_iterations": 20, "min_duration_s": 0.05, "max_duration_s": 5}


def write_spec(path: Path, **over: object) -> Path:
    spec = {"name": "logs", "models": [{"name": "digits", "path": str(DIGITS / "digits_cnn.onnx"),
                                        "dataset": str(DIGITS / "eval.npz")}],
            "recipes": ["fp32"], "formats": ["onnx"], "devices": ["local-cpu"], "options": {"threads": [1]},
            "timing": QUICK, **over}
    path.write_text(yaml.safe_dump(spec))
    return path


def run(args: list[str], environ: dict[str, str] | None = None) -> tuple[ExitStatus, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(args, Environment(stdout=out, stderr=err, environ=environ or {}))
    return status, out.getvalue(), err.getvalue()


def test_failed_cells_exit_11_unless_allowed_and_the_log_says_what_happened(tmp_path):
    # int8 without a calibration set: that conversion fails, its cell is stored with the error, fp32 is measured
    spec = write_spec(tmp_path / "s.yaml", recipes=["fp32", "int8"])
    args = ["sweep", str(spec), "--store", str(tmp_path / "r.db"), "--cache-dir", str(tmp_path / "cache")]
    status, out, err = run(args)
    assert status == ExitStatus.CELLS_FAILED == 11
    assert "1 of 2 cells failed" in err and "--allow-failures" in err and "--resume 1" in err
    lines = out.splitlines()
    assert "conversion started: digits int8 onnx" in lines
    assert any(ln.startswith("conversion failed: digits int8 onnx (") and "calibration" in ln for ln in lines)
    assert any(ln.startswith("cell started: digits fp32 onnx @ local-cpu") for ln in lines)
    done = [ln for ln in lines if ln.startswith("cell 1/2 ") or ln.startswith("cell 2/2 ")]
    assert len(done) == 2
    assert any(ln.startswith("cell ") and " done: digits fp32 onnx @ local-cpu [batch=1,threads=1] p50 " in ln and
               ln.endswith(" s)") for ln in done)
    assert any(" failed: digits int8 onnx @ local-cpu " in ln and "conversion failed" in ln for ln in done)
    assert "\x1b[" not in out and "all cells" not in out  # no control codes, no progress bars in a log

    status, out, err = run([*args, "--allow-failures"])
    assert status == ExitStatus.OK, err
    assert "1 failed" in out and err == ""


def test_a_terminal_keeps_the_progress_bars(tmp_path):
    spec = write_spec(tmp_path / "s.yaml")
    status, out, _ = run(["sweep", str(spec), "--store", str(tmp_path / "r.db"), "--cache-dir",
                          str(tmp_path / "cache")], environ={"FORCE_COLOR": "1"})  # rich: a terminal
    assert status == ExitStatus.OK
    assert "all cells" in out and "cell 1/1 done" not in out


@pytest.mark.slow
def test_a_tflite_sweep_log_holds_edgebench_lines_only(tmp_path):
    """A real conversion to TFLite (onnx2tf and TensorFlow in a child process, LiteRT read in this one) with
    stdout and stderr to pipes, as in CI: none of TensorFlow's, absl's or LiteRT's own lines get through."""
    spec = write_spec(tmp_path / "s.yaml", formats=["tflite"])
    proc = subprocess.run([sys.executable, "-m", "edgebench", "sweep", str(spec), "--store", str(tmp_path / "r.db"),
                           "--cache-dir", str(tmp_path / "cache")], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "conversion finished: digits fp32 tflite (" in proc.stdout
    assert "cell 1/1 done: digits fp32 tflite" in proc.stdout
    text = proc.stdout + proc.stderr
    for chatter in ("I tensorflow", "W tensorflow", "absl", "XNNPACK", "INFO:", "WARNING:", "oneDNN"):
        assert chatter not in text, chatter
    assert proc.stderr == ""
