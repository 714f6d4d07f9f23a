"""Throughput mode (`bench --mode throughput --streams --requests`) and CPU affinity (`--cpus`, a profile's
`cpus:`), through the real runner and runtimes on the digits model. Rates on a busy machine move, so these
check what load cannot: counts, the settings that ran, the record."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from edgebench.cli import main
from edgebench.errors import ExitStatus
from edgebench.result import DeviceInfo, Result, read_results
from edgebench.runner.job import JobError, RunnerJob
from edgebench.runner.runner_env import physical_cores
from tests.conftest import QUICK_TIMING

CPUS = sorted(os.sched_getaffinity(0))


def bench(tmp_path: Path, *args: str) -> tuple[ExitStatus, Result | None]:
    out = tmp_path / "result.json"
    status = main(["bench", *args, *QUICK_TIMING, "--json", str(out)])
    return status, (read_results(out)[0] if out.exists() else None)


def check_load(result: Result, streams: int, requests: int) -> dict:
    """The window's figures agree with each other and with the settings asked for."""
    load = result.throughput
    assert load is not None and (load.streams, load.requests) == (streams, requests)
    assert load.settings["completed"] >= 20  # QUICK_TIMING's min_iterations, completed inside the window
    assert load.inferences_per_s == pytest.approx(load.settings["completed"] / load.duration_s)
    assert 0 < load.latency_ms.min <= load.latency_ms.p50 <= load.latency_ms.p99 <= load.latency_ms.max
    assert load.settings["validity"]["min_iterations_met"]
    assert result.iterations >= 20 and result.latency_ms is not None  # the single-stream figures stay
    again = Result.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again.throughput == load
    return load.settings


def test_onnxruntime_sessions_per_stream(tmp_path: Path, digits_onnx: Path, recipe_cache: Path) -> None:
    status, result = bench(tmp_path, str(digits_onnx), "--mode", "throughput", "--streams", "2", "--requests", "2",
                           "--threads", "1")
    assert status == ExitStatus.OK and result is not None
    settings = check_load(result, 2, 2)
    assert (settings["sessions"], settings["threads_per_session"]) == (2, 1)


def test_onnxruntime_requests_share_sessions(tmp_path: Path, digits_onnx: Path) -> None:
    status, result = bench(tmp_path, str(digits_onnx), "--mode", "throughput", "--streams", "2", "--requests", "4")
    assert status == ExitStatus.OK and result is not None
    settings = check_load(result, 2, 4)
    assert (settings["sessions"], settings["threads_per_session"]) == (2, max(1, len(CPUS) // 2))
    assert result.extra["threads_used"] == physical_cores()  # the single-stream session's, left as it was


def test_openvino_async_queue(tmp_path: Path, digits_onnx: Path, recipe_cache: Path) -> None:
    status, result = bench(tmp_path, str(digits_onnx), "--format", "openvino", "--cache-dir", str(recipe_cache),
                           "--mode", "throughput", "--streams", "2", "--requests", "4", "--threads", "1")
    assert status == ExitStatus.OK and result is not None
    settings = check_load(result, 2, 4)
    assert settings["performance_hint"] == "THROUGHPUT" and settings["inference_num_threads"] == "2"


def test_tflite_interpreter_per_request(tmp_path: Path, digits_onnx: Path, recipe_cache: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    status, result = bench(tmp_path, str(digits_onnx), "--format", "tflite", "--cache-dir", str(recipe_cache),
                           "--mode", "throughput", "--requests", "2")
    assert status == ExitStatus.OK and result is not None
    assert check_load(result, 2, 2)["interpreters"] == 2
    status, _ = bench(tmp_path, str(digits_onnx), "--format", "tflite", "--cache-dir", str(recipe_cache),
                      "--mode", "throughput", "--streams", "1", "--requests", "2")
    err = capsys.readouterr().err.strip().splitlines()
    assert status == ExitStatus.USAGE and err[-1].startswith("edgebench: error: ") and "interpreter per request" in err[-1]


def test_cpus_pin_the_runner_and_are_recorded(tmp_path: Path, digits_onnx: Path) -> None:
    status, result = bench(tmp_path, str(digits_onnx), "--cpus", str(CPUS[-1]))
    assert status == ExitStatus.OK and result is not None
    assert result.device.cpus == (CPUS[-1],) and result.options["cpus"] == [CPUS[-1]]
    profile = tmp_path / "pinned.yaml"
    profile.write_text(f"name: pinned\ncpus: [{CPUS[0]}]\n")
    status, result = bench(tmp_path, str(digits_onnx), "--device", str(profile))
    assert status == ExitStatus.OK and result is not None and result.device.cpus == (CPUS[0],)


@pytest.mark.parametrize("args, want", [
    (["--cpus", str(max(CPUS) + 7)], ExitStatus.CONFIG),  # a CPU the device does not have: its runner says
    (["--cpus", "0,0"], ExitStatus.USAGE),
    (["--cpus", "one"], ExitStatus.USAGE),
    (["--requests", "2"], ExitStatus.USAGE),  # throughput settings without throughput mode
    (["--mode", "fast"], ExitStatus.USAGE),
])
def test_bad_settings_are_one_line(tmp_path: Path, digits_onnx: Path, capsys: pytest.CaptureFixture[str],
                                   args: list[str], want: ExitStatus) -> None:
    status, result = bench(tmp_path, str(digits_onnx), *args)
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("edgebench: error: ")]
    assert status == want and result is None and len(err) == 1, err
    assert "cpus" in err[0] or "mode" in err[0]


def test_profile_with_repeated_cpus_is_refused(tmp_path: Path, digits_onnx: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    profile = tmp_path / "bad.yaml"
    profile.write_text("name: bad\ncpus: [0, 0]\n")
    status, _ = bench(tmp_path, str(digits_onnx), "--device", str(profile))
    assert status == ExitStatus.CONFIG and "cpus" in capsys.readouterr().err


def test_job_wire_format_unchanged_in_latency_mode() -> None:
    plain = RunnerJob(backend="onnxruntime", artifact="m.onnx", inputs_npz="i.npz").to_dict()
    assert not {"mode", "streams", "requests", "cpus"} & set(plain)
    load = RunnerJob(backend="onnxruntime", artifact="m.onnx", inputs_npz="i.npz", mode="throughput", streams=2,
                     requests=4, cpus=(0,))
    assert RunnerJob.from_dict(load.to_dict()) == load
    for bad in ({"streams": 2}, {"mode": "fast"}, {"mode": "throughput", "requests": 0}, {"cpus": [0, 0]},
                {"cpus": [-1]}, {"cpus": []}):
        with pytest.raises(JobError):
            RunnerJob.from_dict({**plain, **bad})


def test_old_results_have_no_throughput_or_cpus() -> None:
    device = DeviceInfo(profile="x")
    assert "cpus" not in device.to_dict() and DeviceInfo.from_dict({"profile": "x", "cpus": [1, 3]}).cpus == (1, 3)
    old = Result.from_dict({"schema_version": 1, "model": {"name": "m", "recipe": "fp32", "format": "onnx"},
                            "device": {"profile": "x"}, "status": "ok"})
    assert old.throughput is None and old.device.cpus is None and "throughput" not in old.to_dict()


def test_sweep_spec_throughput(tmp_path: Path, digits_onnx: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"name: load\nmodels: [{{path: {digits_onnx}}}]\nmode: throughput\nstreams: 1\nrequests: 2\n"
                    "timing: {warmup_s: 0.01, warmup_iterations: 2, min_iterations: 20, min_duration_s: 0.05}\n")
    out = tmp_path / "sweep.json"
    assert main(["sweep", str(spec), "--store", str(tmp_path / "r.db"), "--json", str(out)]) == ExitStatus.OK
    [result] = read_results(out)
    assert check_load(result, 1, 2)["sessions"] == 1
    spec.write_text(spec.read_text().replace("mode: throughput", "mode: fast"))
    assert main(["sweep", str(spec), "--store", str(tmp_path / "r.db")]) == ExitStatus.CONFIG
