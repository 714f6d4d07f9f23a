"""`edgebench gate` and `edgebench ab` on real result files from real short runs of the digits model, a
really heavier variant (extra compute appended with onnx.helper) and a really perturbed one (noisy
weights, so top-1 really drops); plus every bad input the gate must refuse with exit 2."""

from __future__ import annotations

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
from edgebench.gate import compare, pool, run_gate
from edgebench.result import Result, read_results, write_results

ROOT = Path(__file__).resolve().parent.parent
DIGITS = ROOT / "examples" / "digits"
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


def _interleaved_pair(model: Path, d: Path, rounds: int = 3) -> tuple[Path, Path]:
    """Two results of the same model, each pooled from ``rounds`` runs taken A, A′, A, A′ …: a single run
    per side cries wolf on a loaded machine (docs/ci.md has the measured rates), pooled rounds do not."""
    sides: tuple[list[Result], list[Result]] = ([], [])
    for k in range(rounds):
        for side in (0, 1):
            sides[side].append(read_results(_bench(model, d / f"round-{side}-{k}.json", "0.25"))[0])
    paths = d / "base.json", d / "again.json"
    for side, path in enumerate(paths):
        write_results([pool(sides[side])], path)
    return paths


@pytest.fixture(scope="session")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("gate")
    heavy = _load_validation().heavier_model(DIGITS / "digits_cnn.onnx", d / "heavy.onnx", width=4096)
    base, again = _interleaved_pair(DIGITS / "digits_cnn.onnx", d)
    return {
        "base": base,
        "again": again,
        "heavy": _bench(heavy, d / "heavy.json", "0.3"),
        "perturbed": _bench(_perturbed(d / "perturbed.onnx"), d / "perturbed.json", "0.3"),
        "heavy_model": heavy,
    }


def gate(baseline: Path, candidate: Path, *extra: str) -> ExitStatus:
    return main(["gate", "--baseline", str(baseline), "--candidate", str(candidate), *extra])


def junit_cases(path: Path) -> dict[str, ET.Element]:
    suite = ET.parse(path).getroot().find("testsuite")
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert int(suite.get("tests")) == len(suite.findall("testcase")) == len(cases)
    assert int(suite.get("failures")) == sum(c.find("failure") is not None for c in cases.values())
    return cases


def test_aa_pair_passes_with_junit_and_markdown(runs, tmp_path, capsys):
    status = gate(runs["base"], runs["again"], "--junit", str(tmp_path / "j.xml"), "--md", str(tmp_path / "g.md"))
    out = capsys.readouterr().out
    assert status == ExitStatus.OK, out
    cases = junit_cases(tmp_path / "j.xml")
    assert {"latency_p50", "latency_p90", "latency_p99", "memory_peak", "accuracy_top1", "size"} <= set(cases)
    assert not any(c.find("failure") is not None for c in cases.values())
    md = (tmp_path / "g.md").read_text()
    assert md.startswith("### ✅ edgebench gate: PASS") and "| latency_p50 |" in md


def _strict(tmp_path: Path) -> str:
    """Rules under which an inconclusive latency verdict fails too: on a loaded machine one contended run
    can make a real 2× slowdown inconclusive (docs/ci.md), and these tests must not depend on the load."""
    rules = tmp_path / "strict.yaml"
    rules.write_text("inconclusive: fail\n")
    return str(rules)


def test_heavier_model_fails_on_latency_and_size(runs, tmp_path, capsys):
    assert gate(runs["base"], runs["heavy"], "--rules", _strict(tmp_path),
                "--junit", str(tmp_path / "j.xml")) == ExitStatus.REGRESSION
    cases = junit_cases(tmp_path / "j.xml")
    p50 = cases["latency_p50"].find("failure")
    assert p50 is not None and p50.get("type") == "regression"
    assert cases["size"].find("failure") is not None  # 64×4096 float32 weights more
    assert cases["accuracy_top1"].find("failure") is None  # the logits are untouched
    assert "regression" in capsys.readouterr().out


def test_faster_candidate_is_reported_as_an_improvement(runs, tmp_path):
    assert gate(runs["heavy"], runs["base"], "--junit", str(tmp_path / "j.xml")) == ExitStatus.OK
    cases = junit_cases(tmp_path / "j.xml")
    assert cases["latency_p50"].find("system-out").text.startswith("improved")


def test_perturbed_model_fails_on_accuracy(runs, tmp_path):
    base, bad = read_results(runs["base"])[0], read_results(runs["perturbed"])[0]
    drop = (base.accuracy["top1"] - bad.accuracy["top1"]) * 100
    assert drop > 0.5, f"the perturbation should cost top-1 points, measured {drop:.2f}"
    assert gate(runs["base"], runs["perturbed"], "--junit", str(tmp_path / "j.xml")) == ExitStatus.REGRESSION
    failure = junit_cases(tmp_path / "j.xml")["accuracy_top1"].find("failure")
    assert failure is not None and f"{-drop:+.2f} pt" in failure.text


def test_rules_override_thresholds_per_metric_and_device(runs, tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text("metrics:\n  size: {enabled: false}\n"
                     "devices:\n  local-cpu:\n    latency_p50: {threshold: 20.0}\n")
    assert gate(runs["base"], runs["heavy"], "--rules", str(rules), "--junit", str(tmp_path / "j.xml")) == 0
    cases = junit_cases(tmp_path / "j.xml")
    assert "size" not in cases and cases["latency_p50"].find("failure") is None
    rules.write_text("metrics:\n  accuracy_top1: {severity: warn}\n")
    assert gate(runs["base"], runs["perturbed"], "--rules", str(rules)) == ExitStatus.OK


def _edited(src: Path, dst: Path, **changes) -> Path:
    data = json.loads(src.read_text())
    data.update(changes)
    dst.write_text(json.dumps(data))
    return dst


def test_candidate_error_cell_fails_constructed_from_a_real_result(runs, tmp_path):
    err = _edited(runs["base"], tmp_path / "err.json", status="error",
                  error={"kind": "runtime_missing", "message": "openvino is not installed"})
    assert gate(runs["base"], err, "--junit", str(tmp_path / "j.xml")) == ExitStatus.REGRESSION
    failure = junit_cases(tmp_path / "j.xml")["status"].find("failure")
    assert failure is not None and "openvino is not installed" in failure.text


def test_unmatched_cells_are_listed_edited_options(runs, tmp_path, capsys):
    other = _edited(runs["again"], tmp_path / "other.json", options={"threads": 2, "batch": 1})
    both = tmp_path / "both.json"
    write_results(read_results(runs["base"]) + read_results(other), both)
    assert gate(both, runs["again"], "--md", str(tmp_path / "g.md")) == ExitStatus.OK
    md = (tmp_path / "g.md").read_text()
    assert "Baseline cells missing from the candidate" in md and "threads=2" in md
    rules = tmp_path / "rules.yaml"
    rules.write_text("missing: fail\n")
    assert gate(both, runs["again"], "--rules", str(rules)) == ExitStatus.REGRESSION
    assert gate(runs["again"], both) == ExitStatus.OK
    assert "new cell(s) without a baseline" in capsys.readouterr().out


def test_summary_is_appended_to_github_step_summary(runs, tmp_path, monkeypatch):
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    assert gate(runs["base"], runs["again"]) == ExitStatus.OK
    text = summary.read_text()
    assert text.startswith("earlier step\n") and "edgebench gate" in text


def test_pool_concatenates_samples_of_rounds(runs):
    a, b = read_results(runs["base"])[0], read_results(runs["again"])[0]
    pooled = pool([a, b])
    assert pooled.samples_ns == a.samples_ns + b.samples_ns and pooled.iterations == a.iterations + b.iterations
    assert pooled.memory_mb["peak"] == max(a.memory_mb["peak"], b.memory_mb["peak"])
    assert pooled.extra["rounds"] == 2 and pooled.extra["round_sizes"] == [a.iterations, b.iterations]


def test_ab_alternates_real_runs_and_catches_the_heavier_model(runs, tmp_path):
    out = tmp_path / "ab.json"
    status = main(["ab", "--baseline", str(DIGITS / "digits_cnn.onnx"), "--candidate", str(runs["heavy_model"]),
                   "--rounds", "2", "--threads", "1", "--min-duration-s", "0.15", *TIMING, "--rules", _strict(tmp_path),
                   "--junit", str(tmp_path / "j.xml"), "--json", str(out)])
    assert status == ExitStatus.REGRESSION
    a, b = read_results(out)
    assert a.extra["rounds"] == b.extra["rounds"] == 2 and a.iterations == len(a.samples_ns)
    assert junit_cases(tmp_path / "j.xml")["latency_p50"].find("failure") is not None


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
    assert gate(runs["base"], runs["again"], "--rules", str(rules)) == ExitStatus.USAGE
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
        _edited(runs["again"], path, schema_version=99)
    elif case == "duplicate cell":
        write_results(read_results(runs["again"]) * 2, path)
    return str(path)


@pytest.mark.parametrize("case", ["missing file", "store run id", "malformed JSON", "not a result",
                                  "schema version", "duplicate cell"])
def test_bad_result_inputs_exit_2_with_one_line(runs, tmp_path, capsys, case):
    assert gate(runs["base"], Path(_bad_candidate(runs, tmp_path, case))) == ExitStatus.USAGE
    err = capsys.readouterr().err.strip()
    assert err.startswith("edgebench: error:") and len(err.splitlines()) == 1


def test_mismatched_schema_versions_are_refused(runs):
    base = Result.from_dict(json.loads(runs["base"].read_text()))
    other = Result.from_dict(json.loads(runs["again"].read_text()))
    other.schema_version = 2  # a future file that a later from_dict would accept
    with pytest.raises(EdgebenchError, match="schema versions"):
        run_gate([base], [other], GateSpec())


def _synthetic(samples_us: np.ndarray) -> Result:
    """A result around synthetic samples (µs), to pin the latency verdict logic to known inputs."""
    ns = [int(s * 1000) for s in samples_us]
    return Result(model={"name": "m", "recipe": "fp32", "format": "onnx"}, device={"profile": "d"},
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
