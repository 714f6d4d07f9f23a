"""A format whose runtime this Python cannot import, met by `edgebench sweep`/`demo` on a local device: its cells
are skipped in the plan with the pip extra that installs it, before any conversion."""

from __future__ import annotations

import subprocess
import sys

from edgebench.paths import demo_dir
from tests.test_compare_cli import WITHOUT_OPENVINO

DEMO = demo_dir()

WITHOUT_TFLITE = WITHOUT_OPENVINO.replace('name == "openvino" or name.startswith("openvino.")',
                                          'name.split(".")[0] in ("ai_edge_litert", "tflite_runtime", "tensorflow")')


def test_a_sweep_skips_local_cells_whose_runtime_is_not_installed_naming_the_extra(tmp_path):
    # `pip install edgebench[onnx,openvino]` then `edgebench demo`: the tflite cells are skipped in the plan (no
    # conversion started for them), not converted and then failed one by one
    proc = subprocess.run([sys.executable, "-c", WITHOUT_TFLITE, "sweep", str(DEMO / "demo-sweep.yaml"), "--dry-run",
                           "--store", str(tmp_path / "r.db"), "--cache-dir", str(tmp_path / "cache")],
                          capture_output=True, text=True, timeout=300, env={"PATH": "/usr/bin:/bin", "COLUMNS": "250"})
    assert proc.returncode == 0, proc.stderr
    rows = [line for line in proc.stdout.splitlines() if "digits-cnn" in line and "local-cpu" in line]
    tflite = [line for line in rows if " tflite " in line]
    assert len(rows) == 12 and len(tflite) == 4
    assert all("skipped: tflite is not installed here: pip install 'edgebench[tflite]'" in line for line in tflite)
    assert not any("skipped" in line for line in rows if line not in tflite)
    conversions = proc.stdout.split("shared by every device")[1].split("└")[0]
    assert conversions.count("digits-cnn") == 7 and "tflite" not in conversions  # 8 cells, fp32 onnx needs none
