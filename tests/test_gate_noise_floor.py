"""Noise-aware verdicts for stored runs: the per-device noise floor learned from A/A history in a real SQLite
store (filled through the store's API with the recorded runs of tests/fixtures/gate, their samples scaled to
make each run's median land where a real history's would), the verdicts it turns inconclusive, the command
that would decide them, and an inconclusive verdict failing by default in CI ($CI) only."""

from __future__ import annotations

import dataclasses
import io
import shlex
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from edgebench import api
from edgebench.cli import main
from edgebench.config import GateSpec
from edgebench.environment import Environment
from edgebench.errors import ExitStatus
from edgebench.pipeline.gate import compare
from edgebench.pipeline.noise import NoiseFloor, store_floors
from edgebench.pipeline.stats import summarize_ns
from edgebench.result import DeviceInfo, Result
from edgebench.store.db import SqliteStore
from tests.test_gate_recorded import as_file, recorded

# Each run's p50 relative to the first: consecutive |Δ| 2.0%, 3.0%, 11.1%, 4.8%, 4.0%, 2.0% → 6 A/A pairs,
# the median (nearest rank) 3.0%, the 95th percentile (of 6: the largest) 11.1%.
HISTORY = (1.00, 1.02, 0.99, 1.10, 1.05, 1.01, 1.03)


def scaled(result: Result, factor: float, **model: object) -> Result:
    """The same run with every sample ``factor`` times as long (data for a run whose median landed elsewhere)."""
    samples = [round(s * factor) for s in result.samples_ns]
    return dataclasses.replace(result, samples_ns=samples, latency_ms=summarize_ns(samples),
                               model=dataclasses.replace(result.model, **model))


def on_board(result: Result) -> Result:
    return dataclasses.replace(result, device=DeviceInfo(profile="board", host="b", accelerator="cpu"))


def add_run(db: SqliteStore, name: str, results: list[Result]) -> int:
    run = db.create_run(name, {"name": name})
    for r in results:
        db.add_result(run, r)
    db.finish_run(run)
    return run


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Seven nightly runs of the unchanged digits model on local-cpu (and three on a board), one of them also
    holding a changed artifact of the same cell's model (not an A/A pair), then a baseline and a candidate of a
    changed model 8% slower."""
    d = tmp_path_factory.mktemp("noise")
    base_model, cand_model = d / "main model.onnx", d / "candidate.onnx"
    base_model.write_bytes(b"model A")
    cand_model.write_bytes(b"model B")
    quiet = recorded("quiet-b")
    with SqliteStore(d / "history.db") as db:
        for k, factor in enumerate(HISTORY):
            cells = [scaled(quiet, factor)] + ([on_board(scaled(quiet, factor))] if k < 3 else [])
            add_run(db, f"nightly-{k}", cells)
        add_run(db, "experiment", [scaled(quiet, 1.5, source_sha256="changed")])
        base = add_run(db, "main", [scaled(quiet, 1.0, source_sha256="main", path=str(base_model))])
        cand = add_run(db, "pr", [scaled(quiet, 1.08, source_sha256="pr", path=str(cand_model))])
    return {"store": d / "history.db", "base": str(base), "cand": str(cand), "base_model": base_model,
            "cand_model": cand_model}


def test_the_floor_is_the_95th_percentile_of_aa_changes_per_device(history):
    floors = store_floors(history["store"])
    local = floors["local-cpu"]
    assert local.pairs == 6  # the changed artifacts of "experiment", "main" and "pr" pair with nothing
    assert local.median == pytest.approx(1.02 / 0.99 - 1, abs=2e-4)  # 3.0%
    assert local.floor == pytest.approx(1.10 / 0.99 - 1, abs=2e-4)  # 11.1%
    assert local.describe() == "noise floor (A/A between runs): 11.1% from 6 pairs"
    assert floors["board"] == NoiseFloor("board", 2, floors["board"].median, None)
    assert floors["board"].describe() == "not enough A/A history: 2 pairs (5 needed)"
    assert NoiseFloor("other", 0).describe() == "no A/A history"
    assert api.noise(store=history["store"]) == floors


def test_a_change_within_the_floor_is_inconclusive_when_stored_runs_are_gated(history):
    """+8% on quiet samples convicts between two files; between stored runs on a device whose runs disagree
    by up to 11.1% with nothing changed, it cannot be resolved."""
    with SqliteStore(history["store"], read_only=True) as db:
        base, cand = db.results(int(history["base"]))[0], db.results(int(history["cand"]))[0]
    assert {c.metric: c.verdict for c in compare(base, cand, GateSpec())}["latency_p50"] == "regression"
    report = api.gate(history["base"], history["cand"], store=history["store"], ci=False)
    p50 = next(c for c in report.checks if c.metric == "latency_p50")
    assert p50.verdict == "inconclusive" and not p50.failed
    assert p50.message == ("this device's noise floor between stored runs is 11.1% (from 6 A/A pairs): changes "
                           "below it cannot be resolved from stored runs; use ab")
    assert report.noise_floors == [store_floors(history["store"])["local-cpu"]]
    assert api.gate(history["base"], history["cand"], store=history["store"], ci=True).failed
    # a threshold above the floor: the floor says nothing, the verdict stands
    wide = api.gate(history["base"], history["cand"], store=history["store"], ci=True,
                    rules={"metrics": {"latency_p50": {"threshold": 0.12}}})
    assert next(c for c in wide.checks if c.metric == "latency_p50").message == ""
    # files are not stored runs: no floor
    files = api.gate([base], [cand], store=history["store"], ci=True)
    assert files.noise_floors == []
    assert next(c for c in files.checks if c.metric == "latency_p50").verdict == "regression"


def run_cli(args: list[str], environ: dict[str, str]) -> tuple[int, str]:
    out = io.StringIO()
    status = main(args, Environment(stdout=out, stderr=io.StringIO(), environ=environ))
    return status, out.getvalue()


def test_the_gate_of_stored_runs_shows_the_floor_and_the_command_in_every_output(history, tmp_path):
    args = ["gate", "--baseline", history["base"], "--candidate", history["cand"], "--store", str(history["store"]),
            "--md", str(tmp_path / "g.md"), "--junit", str(tmp_path / "j.xml")]
    status, out = run_cli(args, {"CI": "true"})
    command = (f"edgebench ab --baseline {shlex.quote(str(history['base_model']))} --candidate "
               f"{history['cand_model']} --device local-cpu --threads 1 --batch 1 --name digits")
    assert status == ExitStatus.REGRESSION, out
    assert "noise floor on local-cpu: noise floor (A/A between runs): 11.1% from 6 pairs" in out
    assert "to decide digits/fp32/onnx@local-cpu batch=1 threads=1 (latency_p50" in out and command in out
    md = (tmp_path / "g.md").read_text()
    assert "- local-cpu: noise floor (A/A between runs): 11.1% from 6 pairs" in md
    assert "```sh\n# digits/fp32/onnx@local-cpu batch=1 threads=1 (latency_p50" in md and f"\n{command}\n```" in md
    failure = ET.parse(tmp_path / "j.xml").getroot().find(".//testcase[@name='latency_p50']/failure")
    assert failure.get("type") == "inconclusive" and failure.text.endswith(f"; to decide: {command}")
    assert run_cli(args, {})[0] == ExitStatus.OK


def test_the_report_and_results_noise_show_each_devices_floor(history, tmp_path):
    status, _ = run_cli(["report", "nightly-2", "--store", str(history["store"]), "--md", str(tmp_path / "r.md"),
                         "--html", str(tmp_path / "r.html")], {})
    assert status == ExitStatus.OK
    md, html = (tmp_path / "r.md").read_text(), (tmp_path / "r.html").read_text()
    assert "Noise floor (A/A between runs): 11.1% from 6 pairs." in md
    assert "Not enough A/A history: 2 pairs (5 needed)." in md
    assert "noise floor (A/A between runs): 11.1% from 6 pairs" in html
    status, out = run_cli(["results", "noise", "--store", str(history["store"])], {})
    assert status == ExitStatus.OK
    rows = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]] for line in out.splitlines()
            if line.count("│") == 5 and "device" not in line}
    assert rows == {"local-cpu": ["6", "3.0%", "11.1%"], "board": ["2", "2.0%", "— (fewer than 5 pairs)"]}


def test_a_store_without_aa_pairs_says_so(tmp_path):
    with SqliteStore(tmp_path / "s.db") as db:
        add_run(db, "once", [recorded("quiet-b")])
    run_cli(["report", "once", "--store", str(tmp_path / "s.db"), "--md", str(tmp_path / "r.md")], {})
    assert "No A/A history." in (tmp_path / "r.md").read_text()
    status, out = run_cli(["results", "noise", "--store", str(tmp_path / "s.db")], {})
    assert status == ExitStatus.OK and "holds no A/A pairs yet" in out


# --- an inconclusive verdict fails in CI by default ------------------------------------------------------


@pytest.fixture
def loaded_pair(tmp_path: Path) -> dict[str, Path]:
    """quiet-b against steady (the same model, the candidate measured under load: p50 inconclusive), with
    the models' files on this machine."""
    models = {side: tmp_path / f"{side} model.onnx" for side in ("base", "cand")}
    for path in models.values():
        path.write_bytes(b"model")
    return {"base": as_file(scaled(recorded("quiet-b"), 1.0, path=str(models["base"])), tmp_path / "base.json"),
            "cand": as_file(scaled(recorded("steady"), 1.0, path=str(models["cand"])), tmp_path / "cand.json"),
            **{f"{side}_model": path for side, path in models.items()}}


def test_inconclusive_fails_under_ci_with_the_command_that_decides_it(loaded_pair, tmp_path):
    args = ["gate", "--baseline", str(loaded_pair["base"]), "--candidate", str(loaded_pair["cand"])]
    status, out = run_cli(args, {"CI": "true"})
    assert status == ExitStatus.REGRESSION, out
    command = shlex.join(["edgebench", "ab", "--baseline", str(loaded_pair["base_model"]), "--candidate",
                          str(loaded_pair["cand_model"]), "--device", "local-cpu", "--threads", "1", "--batch", "1",
                          "--name", "digits"])
    assert "inconclusive" in out and f"(latency_p50, latency_p90, latency_p99): {command}" in out
    assert "noise floor" not in out  # files, not stored runs
    for environ in ({}, {"CI": "false"}, {"CI": "0"}):
        assert run_cli(args, environ)[0] == ExitStatus.OK
    rules = tmp_path / "rules.yaml"
    rules.write_text("inconclusive: warn\n")
    assert run_cli(args + ["--rules", str(rules)], {"CI": "true"})[0] == ExitStatus.OK
    rules.write_text("inconclusive: fail\n")
    assert run_cli(args + ["--rules", str(rules)], {})[0] == ExitStatus.REGRESSION


def test_without_the_models_files_the_message_says_what_would_decide_it(loaded_pair):
    loaded_pair["cand_model"].unlink()
    status, out = run_cli(["gate", "--baseline", str(loaded_pair["base"]), "--candidate", str(loaded_pair["cand"])],
                          {"CI": "true"})
    assert status == ExitStatus.REGRESSION
    assert (f"the candidate's model {loaded_pair['cand_model']} does not exist on this machine: 'edgebench gate "
            "--remeasure' decides it where both artifacts are at hand") in out
    checks = compare(recorded("quiet-b"), recorded("steady"), GateSpec())  # recorded without a model path
    assert next(c for c in checks if c.metric == "latency_p50").settle == (
        "the baseline's model path is unknown; the candidate's model path is unknown: 'edgebench gate --remeasure' "
        "decides it where both artifacts are at hand")


def test_an_improvement_within_the_floor_is_inconclusive_but_never_fails(history):
    report = api.gate(history["cand"], history["base"], store=history["store"], ci=True)
    p50 = next(c for c in report.checks if c.metric == "latency_p50")
    assert p50.verdict == "inconclusive" and p50.ratio < 1 and not p50.failed
