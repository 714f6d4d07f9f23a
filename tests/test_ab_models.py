"""``edgebench ab``'s paired rounds on third-party models and across formats: two models in one runner
process with their own named inputs (silero_vad: a recurrent state and an int64 scalar rate, from its
dataset), and an ONNX model paired with its OpenVINO IR (two runtimes in one process). What is
asserted does not depend on load: the rounds ran, each side kept its own inputs, samples and runtime."""

from __future__ import annotations

import json
from pathlib import Path

from edgebench import api
from edgebench.cli import main
from edgebench.errors import ExitStatus
from tests.corpus import corpus

ROOT = Path(__file__).resolve().parent.parent
DIGITS = ROOT / "edgebench" / "bundled" / "demo"
QUICK = ["--warmup-s", "0.02", "--warmup-iterations", "2", "--min-iterations", "20", "--min-duration-s", "0.05",
         "--max-rounds", "2"]


def ab(tmp_path: Path, a: Path, b: Path, *extra: str, rules_text: str = "") -> list[dict]:
    rules = tmp_path / "rules.yaml"
    rules.write_text("inconclusive: warn\n" + rules_text)  # two rounds cannot decide: the verdict is not tested
    out = tmp_path / "ab.json"
    status = main(["ab", "-b", str(a), "-c", str(b), "--threads", "1", *QUICK, "--rules", str(rules),
                   "--json", str(out), *extra])
    assert status == ExitStatus.OK
    results = json.loads(out.read_text())
    for r in results:
        assert r["extra"]["ab"]["round_pairs"] == 2 and r["extra"]["ab"]["stopped"] == "rounds"
        assert r["extra"]["round_sizes"] and sum(r["extra"]["round_sizes"]) == len(r["samples_ns"]) > 0
    return results


def test_a_model_with_state_and_a_scalar_rate_pairs_with_itself(tmp_path):
    vad = corpus("silero_vad")
    a, b = ab(tmp_path, vad.path, vad.path, "--dataset", str(vad.data))
    assert a["extra"]["input_shapes"] == b["extra"]["input_shapes"] == {"input": [1, 576], "sr": [], "state": [2, 1, 128]}
    assert a["accuracy"]["samples"] == 16  # from the run alone: the paired rounds capture nothing
    assert len(a["extra"]["ab"]["ratios"]["latency_p50"]) == 2


def test_onnx_and_its_openvino_ir_run_side_by_side(tmp_path):
    ir = next(x for x in api.convert(DIGITS / "digits_cnn.onnx", "openvino", cache_dir=tmp_path / "cache")).main
    # OpenVINO really takes more memory and its IR more bytes: not what this test is about
    a, b = ab(tmp_path, DIGITS / "digits_cnn.onnx", ir,
              rules_text="metrics:\n  memory_peak: {enabled: false}\n  size: {enabled: false}\n")
    assert (a["runtime"]["name"], b["runtime"]["name"]) == ("onnxruntime", "openvino")
    assert (a["model"]["format"], b["model"]["format"]) == ("onnx", "openvino")
