"""`edgebench gate` and `edgebench ab` on real result files from real short runs of the digits model, a
really heavier variant (extra compute appended with onnx.helper) and a really perturbed one (noisy
weights, so top-1 really drops); plus every bad input the gate must refuse with exit 2. The latency
statistics are tested on recorded runs in test_gate_recorded.py."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from edgebench.cli import main
from edgebench.config import GateSpec
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.pipeline.gate import compare, run_gate
from edgebench.pipeline.sequential import min_rounds
from edgebench.result import DeviceInfo, ModelInfo, Result, read_results, write_results
from tests.test_gate_recorded import _edited, junit_cases

ROOT = Path(__file__).resolve().parent.parent
DIGITS = ROOT / "edgebench" / "bundled" / "demo"
TIMING = ["--warmup-s", "0.05", "--warmup-iterations", "2", "--min-iterations", "50", "--max-duration-s", "5"]


def _load_validation():
    spec = importlib.util.spec_from_file_location("gate_validation", ROOT / "benchmarks" / "gate_validation.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _perturbed(dst: Path) -> Path:
    """digits with seeded noise on the last layer's weights: same compute, fewer right answers."""
    model = onnx.load(str(DIGITS / "digits_cnn.onnx"))
    for init in model.graph.initializer:
        if init.name == "fc2.weight":
            w = numpy_helper.to_array(init)
            noisy = w + np.random.default_rng(0).normal(0, 1.5 * w.std(), w.shape).astype(w.dtype)
            init.CopyFrom(numpy_helper.from_array(noisy, init.name))
    onnx.save(model, str(dst))
    return dst


def _bench(model: Path, out: Path, duration: str) -> Path:
    status = main(["bench", str(model), "--dataset", str(DIGITS / "eval.npz"), "--threads", "1",
                   "--min-duration-s", duration, *TIMING, "--json", str(out)])
    assert status == ExitStatus.OK
    # every run is one cell 'digits' so the gate matches them across files
    data = json.loads(out.read_text())
    assert data["model"]["name"] == model.stem
    data["model"]["name"] = "digits"
    out.write_text(json.dumps(data))
    return out


# Live runs on a shared machine: a verdict on latency depends on the load (tests/test_gate_recorded.py
# tests the statistics on recorded runs). These tests assert only what load cannot change: sizes, accuracy,
# that the files are well formed, and that a model doing 40× the work is never called faster.
HEAVY_WIDTH = 65536  # the extra branch: 64×65536 MACs, ~40× the digits model's own compute


@pytest.fixture(scope="session")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("gate")
    heavy = _load_validation().heavier_model(DIGITS / "digits_cnn.onnx", d / "heavy.onnx", width=HEAVY_WIDTH)
    return {
        "base": _bench(DIGITS / "digits_cnn.onnx", d / "base.json", "0.2"),
        "heavy": _bench(heavy, d / "heavy.json", "0.2"),
        "perturbed": _bench(_perturbed(d / "perturbed.onnx"), d / "perturbed.json", "0.2"),
        "heavy_model": heavy,
    }


def gate(baseline: Path, candidate: Path, *extra: str) -> ExitStatus:
    return main(["gate", "--baseline", str(baseline), "--candidate", str(candidate), *extra])


def _verdict(case: ET.Element) -> str:
    return case.find("system-out").text.split()[0] if case.find("failure") is None else case.find("failure").get("type")


def test_heavier_model_fails_on_size_and_is_never_called_faster(runs, tmp_path, capsys):
    assert gate(runs["base"], runs["heavy"], "--junit", str(tmp_path / "j.xml")) == ExitStatus.REGRESSION
    cases = junit_cases(tmp_path / "j.xml")
    size = cases["size"].find("failure")
    assert size is not None and size.get("type") == "regression"  # 64×65536 float32 weights more
    assert cases["accuracy_top1"].find("failure") is None  # the logits are untouched
    for metric in ("latency_p50", "latency_p90"):
        assert _verdict(cases[metric]) in ("regression", "inconclusive"), cases[metric].find("system-out").text
    base, heavy = read_results(runs["base"])[0], read_results(runs["heavy"])[0]
    assert heavy.latency_ms.p50 > base.latency_ms.p50
    assert "regression" in capsys.readouterr().out


def test_perturbed_model_fails_on_accuracy(runs, tmp_path):
    base, bad = read_results(runs["base"])[0], read_results(runs["perturbed"])[0]
    assert base.accuracy.samples == bad.accuracy.samples == 450
    right = round(base.accuracy.top1 * 450), round(bad.accuracy.top1 * 450)
    assert right[0] - right[1] >= 3, f"the perturbation should cost top-1 answers: {right}"
    assert gate(runs["base"], runs["perturbed"], "--junit", str(tmp_path / "j.xml")) == ExitStatus.REGRESSION
    failure = junit_cases(tmp_path / "j.xml")["accuracy_top1"].find("failure")
    drop = (right[1] - right[0]) / 450 * 100
    assert failure is not None and failure.get("type") == "regression" and f"{drop:+.2f} pt" in failure.text


def test_accuracy_severity_warn_passes_the_perturbed_model(runs, tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text("metrics:\n  accuracy_top1: {severity: warn}\n"
                     "  latency_p50: {enabled: false}\n  memory_peak: {enabled: false}\n")
    assert gate(runs["base"], runs["perturbed"], "--rules", str(rules), "--junit", str(tmp_path / "j.xml")) == 0
    cases = junit_cases(tmp_path / "j.xml")
    assert "latency_p50" not in cases and cases["accuracy_top1"].find("system-out").text.startswith("regression")


def test_ab_convicts_a_40x_heavier_model_at_the_first_round_that_can(runs, tmp_path):
    """Every paired round of a model doing 40× the work is far past +5%, whatever the load (both models share
    the process and the moment), so the sequential test decides at the fewest rounds it can ever decide at."""
    out = tmp_path / "ab.json"
    status = main(["ab", "--baseline", str(DIGITS / "digits_cnn.onnx"), "--candidate", str(runs["heavy_model"]),
                   "--threads", "1", "--min-duration-s", "0.05", *TIMING,
                   "--junit", str(tmp_path / "j.xml"), "--json", str(out)])
    assert status == ExitStatus.REGRESSION
    a, b = read_results(out)
    rounds = min_rounds(GateSpec().rule("latency_p50", "local-cpu").alpha)
    assert a.extra["ab"]["round_pairs"] == rounds and a.extra["ab"]["stopped"] == "verdict"
    assert min(a.extra["ab"]["ratios"]["latency_p50"]) > 1.05 and a.extra["rounds"] == rounds
    assert a.iterations == len(a.samples_ns) == sum(a.extra["round_sizes"])
    cases = junit_cases(tmp_path / "j.xml")
    assert cases["size"].find("failure") is not None
    assert cases["latency_p50"].find("failure").get("type") == "regression"


def test_ab_stops_at_its_round_budget_without_a_verdict(tmp_path):
    out = tmp_path / "ab.json"
    model = str(DIGITS / "digits_cnn.onnx")
    status = main(["ab", "-b", model, "-c", model, "--max-rounds", "2", "--threads", "1", "--min-duration-s", "0.05",
                   *TIMING, "--rules", str(_warn_rules(tmp_path)), "--json", str(out), "--junit", str(tmp_path / "j.xml")])
    assert status == ExitStatus.OK  # inconclusive warns under these rules
    a, _ = read_results(out)
    assert a.extra["ab"]["round_pairs"] == 2 and a.extra["ab"]["stopped"] == "rounds"
    text = junit_cases(tmp_path / "j.xml")["latency_p50"].find("system-out").text
    assert text.startswith("inconclusive") and "--max-rounds 22" in text


def _warn_rules(tmp_path: Path) -> Path:
    rules = tmp_path / "warn.yaml"
    rules.write_text("inconclusive: warn\n")
    return rules


def test_ab_errors_keep_their_status_and_bad_rules_exit_2(tmp_path, capsys):
    """A failed measurement is not the gate's input: a missing model is exit 3, as in bench; only the
    gate's own input (the rules) is exit 2."""
    model = str(DIGITS / "digits_cnn.onnx")
    assert main(["ab", "--baseline", str(tmp_path / "nope.onnx"), "--candidate", model]) == ExitStatus.NOT_FOUND
    assert "model file not found" in capsys.readouterr().err
    rules = tmp_path / "rules.yaml"
    rules.write_text("metrics: [\n")
    assert main(["ab", "--baseline", model, "--candidate", model, "--rules", str(rules)]) == ExitStatus.USAGE
    assert "invalid YAML" in capsys.readouterr().err

def test_heavier_model_keeps_the_logits(runs):
    ort = pytest.importorskip("onnxruntime")
    x = np.load(DIGITS / "eval.npz")["inputs"][:16]
    ref = ort.InferenceSession(str(DIGITS / "digits_cnn.onnx")).run(["logits"], {"input": x})[0]
    heavy = ort.InferenceSession(str(runs["heavy_model"])).run(None, {"input": x})
    assert np.array_equal(ref, heavy[0]) and heavy[1].shape == (16,)


BAD_RULES = {
    "unknown metric": ("metrics:\n  latency_p95: {threshold: 0.1}\n", "unknown metric 'latency_p95'"),
    "unknown device metric": ("devices:\n  rpi:\n    flops: {threshold: 0.1}\n", "unknown metric 'flops'"),
    "bad value": ("metrics:\n  latency_p50: {threshold: -1}\n", "threshold"),
    "bad yaml": ("metrics: [\n", "invalid YAML"),
    "unknown field": ("alpha_typo: 1\n", "unknown field 'alpha_typo'"),
}


@pytest.mark.parametrize("case", list(BAD_RULES))
def test_bad_rules_exit_2_with_one_line(runs, tmp_path, capsys, case):
    text, expected = BAD_RULES[case]
    rules = tmp_path / "rules.yaml"
    rules.write_text(text)
    assert gate(runs["base"], runs["base"], "--rules", str(rules)) == ExitStatus.USAGE
    err = capsys.readouterr().err.strip()
    assert expected in err and len(err.splitlines()) == 1


def _bad_candidate(runs: dict[str, Path], tmp: Path, case: str) -> str:
    path = tmp / "bad.json"
    if case == "missing file":
        return str(tmp / "nope.json")
    if case == "store run id":
        return "run-42"
    if case == "malformed JSON":
        path.write_text("{not json")
    elif case == "not a result":
        path.write_text("[1, 2]")
    elif case == "schema version":
        _edited(runs["base"], path, schema_version=99)
    elif case == "duplicate cell":
        write_results(read_results(runs["base"]) * 2, path)
    return str(path)


@pytest.mark.parametrize("case", ["missing file", "store run id", "malformed JSON", "not a result",
                                  "schema version", "duplicate cell"])
def test_bad_result_inputs_exit_2_with_one_line(runs, tmp_path, capsys, monkeypatch, case):
    monkeypatch.chdir(tmp_path)  # the default store is ./.edgebench/results.db: never the checkout's own
    assert gate(runs["base"], Path(_bad_candidate(runs, tmp_path, case))) == ExitStatus.USAGE
    err = capsys.readouterr().err.strip()
    assert err.startswith("edgebench: error:") and len(err.splitlines()) == 1


def test_mismatched_schema_versions_are_refused(runs):
    base = Result.from_dict(json.loads(runs["base"].read_text()))
    other = Result.from_dict(json.loads(runs["base"].read_text()))
    other.schema_version = 2  # a future file that a later from_dict would accept
    with pytest.raises(EdgebenchError, match="schema versions"):
        run_gate([base], [other], GateSpec())


def _synthetic(samples_us: np.ndarray) -> Result:
    """A result around synthetic samples (µs), to pin the latency verdict logic to known inputs."""
    ns = [int(s * 1000) for s in samples_us]
    return Result(model=ModelInfo(name="m", recipe="fp32", format="onnx"), device=DeviceInfo(profile="d"),
                  samples_ns=ns, iterations=len(ns))


@pytest.mark.parametrize("candidate, verdict", [
    ("10% slower, stable", "regression"),
    ("10% slower, drifting 20% within the run", "inconclusive"),
    ("3% slower", "pass"),
    ("10% faster", "improved"),
])
def test_latency_verdicts_on_synthetic_samples(candidate, verdict):
    rng = np.random.default_rng(0)
    base = rng.lognormal(np.log(20), 0.05, 4000)
    cand = {"10% slower, stable": rng.lognormal(np.log(22), 0.05, 4000),
            "10% slower, drifting 20% within the run": np.concatenate(
                [rng.lognormal(np.log(20), 0.05, 2000), rng.lognormal(np.log(24), 0.05, 2000)]),
            "3% slower": rng.lognormal(np.log(20.6), 0.05, 4000),
            "10% faster": rng.lognormal(np.log(18), 0.05, 4000)}[candidate]
    check = next(c for c in compare(_synthetic(base), _synthetic(cand), GateSpec()) if c.metric == "latency_p50")
    assert check.verdict == verdict, check
    assert check.failed == (verdict == "regression")


def test_remeasure_settles_an_inconclusive_stored_verdict_with_ab(runs, tmp_path, capsys):
    """Recorded runs: a quiet baseline and a loaded candidate, inconclusive from the files alone. With the
    models' files at hand, --remeasure measures the cell again with the sequential A/B — here the candidate's
    file is the 40× heavier model, whose every paired round is far past the threshold whatever the load, so
    the new verdict is exact: a regression, proven at the fewest rounds."""
    from tests.test_gate_recorded import recorded

    base, cand = recorded("quiet-b"), recorded("steady")
    base.model = dataclasses.replace(base.model, path=str(DIGITS / "digits_cnn.onnx"))
    cand.model = dataclasses.replace(cand.model, path=str(runs["heavy_model"]))
    files = [tmp_path / "b.json", tmp_path / "c.json"]
    write_results([base], files[0])
    write_results([cand], files[1])
    rules = tmp_path / "rules.yaml"
    rules.write_text("inconclusive: warn\nmetrics:\n  size: {enabled: false}\n  memory_peak: {enabled: false}\n"
                     "  accuracy_top1: {enabled: false}\n")
    assert gate(*files, "--rules", str(rules)) == ExitStatus.OK  # inconclusive, a warning
    assert "inconclusive" in capsys.readouterr().out
    status = gate(*files, "--rules", str(rules), "--remeasure", "--junit", str(tmp_path / "j.xml"))
    assert status == ExitStatus.REGRESSION
    failure = junit_cases(tmp_path / "j.xml")["latency_p50"].find("failure")
    assert failure.get("type") == "regression" and "measured again (ab): 12 round pair(s)" in failure.text


def test_remeasure_says_why_a_cell_cannot_be_measured_again(tmp_path):
    from tests.test_gate_recorded import recorded

    files = [tmp_path / "b.json", tmp_path / "c.json"]
    write_results([recorded("quiet-b")], files[0])
    write_results([recorded("steady")], files[1])
    status = main(["gate", "-b", str(files[0]), "-c", str(files[1]), "--remeasure", "--junit", str(tmp_path / "j.xml")])
    assert status in (ExitStatus.OK, ExitStatus.REGRESSION)  # as without --remeasure ($CI decides)
    text = ET.tostring(junit_cases(tmp_path / "j.xml")["latency_p50"], encoding="unicode")
    assert ("not measured again: the baseline's model path is unknown, the candidate's model path is unknown"
            in text)
