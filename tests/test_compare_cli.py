"""`edgebench compare` as a user meets it: top-1 figures as percentages, and a format whose runtime this
Python cannot import reported as a missing runtime (exit 7, naming the extra), not as a failed check."""

from __future__ import annotations

import subprocess
import sys

from edgebench.cli import main
from edgebench.errors import ExitStatus
from edgebench.paths import demo_dir

DEMO = demo_dir()
# A Python where `import openvino` fails as it does where it is not installed (the venv has it).
WITHOUT_OPENVINO = """
import sys
from importlib.abc import MetaPathFinder

class NoOpenVino(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "openvino" or name.startswith("openvino."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NoOpenVino())
from edgebench.cli import main
sys.exit(int(main(sys.argv[1:])))
"""


def test_compare_shows_top1_and_agreement_as_percentages(capsys):
    assert main(["compare", str(DEMO / "digits_cnn.onnx"), "--formats", "onnx", "--dataset",
                 str(DEMO / "eval.npz")]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("│ onnx"))
    assert "98.9%" in row and "100.0%" in row  # top-1 on eval.npz (445/450), agreement of the reference with itself
    assert "0.9889" not in row and "top-1 agreement ≥ 99%" in out


def test_compare_without_the_formats_runtime_exits_7_naming_the_extra(tmp_path):
    proc = subprocess.run([sys.executable, "-c", WITHOUT_OPENVINO, "compare", str(DEMO / "digits_cnn.onnx"),
                           "--formats", "onnx,openvino", "--dataset", str(DEMO / "eval.npz"),
                           "--cache-dir", str(tmp_path / "cache")],
                          capture_output=True, text=True, timeout=300, env={"PATH": "/usr/bin:/bin", "COLUMNS": "200"})
    assert proc.returncode == ExitStatus.RUNTIME_MISSING, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("edgebench: error:")]
    assert len(errors) == 1 and "agreement" not in errors[0], proc.stderr
    assert errors[0].startswith("edgebench: error: openvino: ") and "pip install 'edgebench[openvino]'" in errors[0]
    assert "not run" in proc.stdout and "FAIL" not in proc.stdout  # the table: no verdict on openvino

