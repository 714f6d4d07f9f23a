"""Benches and sweeps in one history, as users' CI keeps it: `bench --store` files a run of one cell, every
result records the user's commit and the converter and runtime that made and ran it, and results written
before those fields existed still load, store and round-trip."""

from __future__ import annotations

import gzip
import json
import subprocess
from pathlib import Path

import pytest
import yaml

from edgebench.cli import main
from edgebench.commits import user_commit
from edgebench.result import Result
from edgebench.store.db import SqliteStore
from tests.conftest import DIGITS, QUICK_TIMING

RECORDED = Path(__file__).resolve().parent / "fixtures" / "gate"
DIGITS_ONNX, EVAL = DIGITS / "digits_cnn.onnx", DIGITS / "eval.npz"


def test_bench_store_files_a_run_that_results_and_gate_read_beside_a_sweep(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GITHUB_SHA", "0123456789abcdef0123456789abcdef01234567")
    store, out = tmp_path / "r.db", tmp_path / "bench.json"
    assert main(["bench", str(DIGITS_ONNX), "--format", "openvino", "--dataset", str(EVAL), "--threads", "1",
                 "--store", str(store), "--json", str(out), "--cache-dir", str(tmp_path / "cache"),
                 *QUICK_TIMING]) == 0
    assert "stored as run 1 (bench-digits_cnn)" in capsys.readouterr().out
    provenance = json.loads(out.read_text())["provenance"]
    assert provenance["commit"] == "0123456789abcdef0123456789abcdef01234567"
    assert provenance["commit_source"] == "GITHUB_SHA"
    assert provenance["converter"]["openvino"]  # the versions in the artifact's meta.json
    assert provenance["runtime"]["name"].startswith("openvino") and provenance["runtime"]["version"]

    assert main(["results", "list", "--store", str(store)]) == 0
    assert "bench-digits_cnn" in capsys.readouterr().out
    assert main(["results", "show", "bench-digits_cnn", "--store", str(store)]) == 0
    shown = capsys.readouterr().out
    assert "digits_cnn" in shown and "openvino" in shown
    with SqliteStore(store, create=False) as db:
        (stored,) = db.results(1)
    assert stored.provenance is not None and stored.provenance.commit == provenance["commit"]

    # a sweep whose model is named as bench names the file (its stem) matches the bench's cell in the gate
    spec = tmp_path / "s.yaml"
    spec.write_text(yaml.safe_dump({
        "name": "nightly", "models": [{"name": "digits_cnn", "path": str(DIGITS_ONNX), "dataset": str(EVAL)}],
        "recipes": ["fp32"], "formats": ["openvino"], "devices": ["local-cpu"], "options": {"threads": [1]},
        "timing": {"warmup_s": 0.01, "warmup_iterations": 2, "min_iterations": 20, "min_duration_s": 0.05,
                   "max_duration_s": 5}}))
    assert main(["sweep", str(spec), "--store", str(store), "--cache-dir", str(tmp_path / "cache")]) == 0
    capsys.readouterr()
    junit = tmp_path / "gate.xml"
    main(["gate", "--baseline", "nightly", "--candidate", "bench-digits_cnn", "--store", str(store),
          "--junit", str(junit)])
    gated = capsys.readouterr().out
    assert "digits_cnn" in gated and "missing from the candidate" not in gated and "without a baseline" not in gated
    assert junit.read_text().count("<testcase") >= 5  # latency, memory, size, accuracy … of the one matched cell


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


def test_the_users_commit_comes_from_github_sha_else_git_head_else_none(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))  # no repository above tmp_path is found
    repo, outside = tmp_path / "repo", tmp_path / "outside"
    repo.mkdir()
    outside.mkdir()
    _git(repo, "init", "-q")
    (repo / "model.txt").write_text("v1")
    _git(repo, "add", "model.txt")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "one")
    head = _git(repo, "rev-parse", "HEAD")

    assert user_commit({"GITHUB_SHA": "feedbeef"}, repo) == ("feedbeef", "GITHUB_SHA")
    assert user_commit({}, repo) == (head, "git")
    assert user_commit({}, outside) is None
    _git(outside, "init", "-q")
    assert user_commit({}, outside) is None  # a repository without a commit yet
    assert user_commit({}, tmp_path / "missing") is None  # no such folder: no error either


def test_a_bench_in_a_git_working_directory_records_its_head(tmp_path, monkeypatch):
    monkeypatch.delenv("GITHUB_SHA", raising=False)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "--allow-empty", "-m", "x")
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "r.json"
    assert main(["bench", str(DIGITS_ONNX), "--json", str(out), *QUICK_TIMING]) == 0
    provenance = json.loads(out.read_text())["provenance"]
    assert provenance["commit"] == _git(tmp_path, "rev-parse", "HEAD") and provenance["commit_source"] == "git"
    assert "converter" not in provenance  # the model was measured as given: no converter made it
    assert provenance["runtime"]["version"]


@pytest.mark.parametrize("path", sorted(RECORDED.glob("*.json.gz"))[:3], ids=lambda p: p.name.split(".")[0])
def test_results_from_before_provenance_load_store_and_write_back_unchanged(path, tmp_path):
    with gzip.open(path, "rt") as f:
        text = f.read()
    old = Result.from_dict(json.loads(text), path.name)
    assert old.provenance is None
    with SqliteStore(tmp_path / "r.db") as store:
        run = store.create_run("old", {})
        store.add_result(run, old)
        store.finish_run(run)
    with SqliteStore(tmp_path / "r.db", create=False) as store:
        (again,) = store.results(run)
    assert json.dumps(again.to_dict(), separators=(",", ":")) == text
