"""Limits (issue 14): values past what a device, a dtype or a recipe can take are refused up front with one
line and the documented status (2 on the command line, 5 for an input spec, 6 in a spec or profile); a
recipe step that would change nothing is refused rather than reported "preserved"; a runner never outlives
the edgebench that started it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgebench.cli import main
from edgebench.errors import ExitStatus
from edgebench.paths import demo_dir, runner_dir
from edgebench.runner.job import RunnerJob
from edgebench.runner.lifeline import PARENT_ENV
from edgebench.runner.runner_env import thread_limit
from tests.conftest import QUICK_TIMING

MODEL = str(demo_dir() / "digits_cnn.onnx")  # input 'input' [batch, 1, 8, 8]; fc1 holds 65511 distinct weights


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("edgebench: error: "), err
    assert "Traceback" not in err
    return err


# --- threads and runtime options ---------------------------------------------------------------------

@pytest.mark.parametrize("command", [["bench", MODEL], ["compare", MODEL, "--formats", "onnx"]])
def test_threads_past_the_cap_are_refused_before_any_work(command, capsys):
    assert main([*command, "--threads", "100000"]) == ExitStatus.USAGE
    assert "--threads 100000 is more than edgebench's limit of 1024" in one_line_error(capsys)


def test_the_runner_refuses_more_threads_than_4_per_cpu(capsys):
    too_many = thread_limit() + 1
    assert main(["bench", MODEL, "--threads", str(too_many), *QUICK_TIMING]) == ExitStatus.USAGE
    assert f"threads {too_many} is outside 0 (the runtime's default) to {thread_limit()}" in one_line_error(capsys)


@pytest.mark.parametrize("options,message", [
    (["inter_op_threads=-3"], "inter_op_threads -3 is outside 0"),
    (["inter_op_threads=100000"], "inter_op_threads 100000 is outside 0"),
    (["inter_op_threads=1", "inter_op_threads=2"], "--option inter_op_threads is given twice"),
    (["intra_op_num_threads=2"], "unknown --option 'intra_op_num_threads' for the onnxruntime backend: it accepts"),
])
def test_bad_runtime_options_are_refused(options, message, capsys):
    argv = [arg for option in options for arg in ("--option", option)]
    assert main(["bench", MODEL, *argv, *QUICK_TIMING]) == ExitStatus.USAGE
    assert message in one_line_error(capsys)


# --- input specs ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("spec,message", [
    (["--input-range", "input:5:1"], "bad --input-range 'input:5:1'"),
    (["--input-range", "input:0:inf"], "both finite"),
    (["--input-range", "input:-1e308:1e308"], "do not fit its float32"),
    (["--input-value", "input=nan"], "with a finite number"),
    (["--input-value", "input=1e39"], "do not fit its float32"),
    (["--shape", f"input:{2**31}x1x8x8"], "sizes above 0 and below 2^31"),
    (["--shape", "input:-5x1x8x8"], "sizes above 0"),
    (["--shape", "input:0x1x8x8"], "sizes above 0"),
    (["--shape", f"input:{2**31 - 1}x1x8x8"], "more than edgebench's limit of 2 GiB: lower --shape or --batch"),
    (["--batch", str(2**40)], "more than edgebench's limit of 2 GiB"),
], ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_input_specs_past_their_limits_exit_5(spec, message, capsys):
    assert main(["bench", MODEL, *spec, *QUICK_TIMING]) == ExitStatus.DATA_MISMATCH
    assert message in one_line_error(capsys)


@pytest.mark.parametrize("spec,message", [
    (["--input-range", "ids:0.2:0.7"], "the range must hold an integer"),
    (["--input-range", "ids:-1e30:5"], "does not fit its int64"),
])
def test_integer_ranges_must_fit_the_dtype(multi_input_onnx, spec, message, capsys):
    assert main(["bench", str(multi_input_onnx), "--shape", "ids:1x4", *spec, *QUICK_TIMING]) \
        == ExitStatus.DATA_MISMATCH
    assert message in one_line_error(capsys)


# --- recipes -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("recipe,message", [
    ("", "the recipe is empty"), (" ", "the recipe is empty"), ("+", "has an empty step"),
    ("fp32+", "has an empty step"), ("prune:0", "outside (0, 1)"),
    ("cluster:1000000", "cluster count K=1000000 in 'cluster:1000000' is above 65536"),
])
@pytest.mark.parametrize("command", ["compress", "convert", "bench"])
def test_empty_or_out_of_range_recipes_exit_2(command, recipe, message, tmp_path, capsys):
    extra = ["--to", "onnx"] if command == "convert" else []
    assert main([command, MODEL, *extra, "--recipe", recipe, "--cache-dir", str(tmp_path)]) == ExitStatus.USAGE
    assert message in one_line_error(capsys)
    assert not any(tmp_path.rglob("meta.json"))  # nothing was converted


@pytest.mark.parametrize("recipe", ["cluster:65511", "cluster:65536"])
def test_a_cluster_count_that_changes_no_layer_is_refused_not_preserved(recipe, tmp_path, capsys):
    assert main(["compress", MODEL, "--recipe", recipe, "--cache-dir", str(tmp_path)]) == ExitStatus.USAGE
    assert "would change nothing: every layer it touches holds at most" in one_line_error(capsys)
    assert not any(tmp_path.rglob("meta.json"))


# --- sweep specs and profiles ----------------------------------------------------------------------------

SPEC_FAULTS = [
    ("options: {threads: [-1]}", "options.threads [-1]: -1 is outside 0"),
    ("options: {threads: [100000]}", "100000 is outside 0 (the runtime's default) to 1024"),
    ("options: {threads: [2, 2]}", "list one or more distinct values"),
    ("options: {batch: [0]}", "options.batch [0]: 0 is outside 1 or more"),
    ("options: {batch: []}", "list one or more distinct values"),
    ("options: {inter_op_threads: [2]}", "'options.inter_op_threads.[key]'"),
    ("timing: {warmup_s: -1}", "field 'timing.warmup_s'"),
    ("timing: {min_iterations: 0}", "field 'timing.min_iterations'"),
    ("timing: {max_duration_s: -5}", "field 'timing.max_duration_s'"),
    ("cell_timeout_s: -1", "field 'cell_timeout_s'"),
    ("exclude: [{formt: onnx}]", "names unknown axis 'formt'"),
    ("include: [{}]", "names no axis"),
    ("recipes: ['']", "the recipe is empty"),
    ("recipes: ['fp32+']", "has an empty step"),
    ("recipes: ['cluster:1000000']", "is above 65536"),
]


@pytest.mark.parametrize("line,message", SPEC_FAULTS, ids=[line for line, _ in SPEC_FAULTS])
def test_spec_fields_out_of_range_exit_6_naming_the_field(line, message, tmp_path, capsys):
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"name: limits\nmodels: [{{name: d, path: {MODEL}}}]\n{line}\n")
    assert main(["sweep", str(spec), "--dry-run", "--store", str(tmp_path / "r.db")]) == ExitStatus.CONFIG
    assert message in one_line_error(capsys)


@pytest.mark.parametrize("model_line,message", [
    (f"shapes: {{input: [{2**31}, 1, 8, 8]}}", "below 2^31"),
    ("input_ranges: {input: [0, .inf]}", "finite low < high"),
    ("input_values: {input: .nan}", "must be a finite number"),
])
def test_spec_model_inputs_past_their_limits_exit_6(model_line, message, tmp_path, capsys):
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"name: limits\nmodels: [{{name: d, path: {MODEL}, {model_line}}}]\n")
    assert main(["sweep", str(spec), "--dry-run", "--store", str(tmp_path / "r.db")]) == ExitStatus.CONFIG
    assert message in one_line_error(capsys)


def test_a_profile_with_too_many_threads_exits_6(tmp_path, capsys):
    profile = tmp_path / "big.yaml"
    profile.write_text("name: big\nthreads: 100000\n")
    assert main(["bench", MODEL, "--device", str(profile), *QUICK_TIMING]) == ExitStatus.CONFIG
    assert "field 'threads'" in one_line_error(capsys)


# --- a runner never outlives its edgebench ----------------------------------------------------------------

def _runners(pid: int) -> list[int]:
    """The runner processes whose parent is ``pid`` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            command = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if parent == pid and b"edgebench_runner.py" in command:
            found.append(int(stat.parent.name))
    return found


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"  # a zombie has already died, waiting for its new parent to reap it


def _wait_for(check, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_killed_edgebench_leaves_no_runner_behind(tmp_path):
    """kill -9 of edgebench mid-measurement: its runner (timing for 60 s) is gone within seconds."""
    edgebench = subprocess.Popen(
        [sys.executable, "-m", "edgebench", "bench", MODEL, "--min-duration-s", "60", "--max-duration-s", "120",
         "--warmup-s", "0"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path)
    try:
        runners: list[int] = []
        assert _wait_for(lambda: bool(runners.extend(_runners(edgebench.pid)) or runners), 60), \
            "edgebench started no runner"
        runner = runners[0]
        time.sleep(1)  # past the runner's start: measuring
        edgebench.send_signal(signal.SIGKILL)
        edgebench.wait(timeout=10)
        assert _wait_for(lambda: _gone(runner), 10), f"runner {runner} still running after edgebench was killed"
    finally:
        if edgebench.poll() is None:
            edgebench.kill()
            edgebench.wait(timeout=10)


@pytest.mark.skipif(os.name != "posix", reason="a POSIX pid check")
def test_a_runner_whose_edgebench_is_already_gone_exits_at_once(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait(timeout=10)
    job = tmp_path / "job.json"
    job.write_text("{}")  # never read: the runner exits first
    proc = subprocess.run([sys.executable, str(runner_dir() / "edgebench_runner.py"), str(job)],
                          capture_output=True, text=True, timeout=60, env={**os.environ, PARENT_ENV: str(dead.pid)})
    assert (proc.returncode, proc.stdout) == (1, "")


@pytest.mark.parametrize("field,value,message", [("threads", -1, "threads -1 is outside 0"),
                                                 ("threads", 10**6, "threads 1000000 is outside 0"),
                                                 ("batch", 0, "job field 'batch' is 0")])
def test_the_runner_refuses_a_job_out_of_range_from_any_host(field, value, message, tmp_path):
    """The runner's own guard, for a job from another host or the Python API: one usage error, never a hang."""
    job = tmp_path / "job.json"
    job.write_text(json.dumps({**RunnerJob(backend="onnxruntime", artifact=MODEL, inputs_npz="x.npz").to_dict(),
                               field: value}))
    proc = subprocess.run([sys.executable, str(runner_dir() / "edgebench_runner.py"), str(job)],
                          capture_output=True, text=True, timeout=60)
    reply = json.loads(proc.stdout)
    assert (proc.returncode, reply["status"], reply["error"]["kind"]) == (1, "error", "usage")
    assert message in reply["error"]["message"]
