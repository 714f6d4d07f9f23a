"""The SSH transport against a real OpenSSH server on 127.0.0.1 (tests/sshd.py)."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import onnxruntime
import pytest

from edgebench.pipeline.bench import BenchRequest, run_bench
from edgebench.cli import main
from edgebench.config import TimingSpec, load_profile
from edgebench.devices.ssh import SSHTransport
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.paths import demo_dir
from edgebench.runner.job import RunnerJob
from edgebench.runner.timing import TimingRules
from tests.sshd import Gate, SshdBoard, closed_port, gate_factory, ssh_board, sshd_factory  # noqa: F401

DIGITS = demo_dir()
FAST = TimingSpec(warmup_iterations=1, warmup_s=0.0, min_iterations=10, min_duration_s=0.05, max_duration_s=5)


@pytest.fixture(autouse=True)
def _no_agent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)  # only the fixture's keys may authenticate


def _job(min_duration_s: float = 0.05) -> RunnerJob:
    timing = TimingRules(**{**FAST.model_dump(exclude={"cv_threshold"}), "min_duration_s": min_duration_s})
    return RunnerJob(backend="onnxruntime", device="CPU", threads=1, timing=timing, batch=1, rotation=8,
                     capture_outputs=True)


def _files(tmp_path: Path) -> dict[str, Path]:
    inputs = tmp_path / "inputs.npz"
    with np.load(DIGITS / "eval.npz") as data:
        np.savez(inputs, input=data["inputs"][:64])
    return {"artifact": DIGITS / "digits_cnn.onnx", "inputs_npz": inputs}


def test_bench_over_ssh_matches_local_and_second_run_uploads_nothing(sshd_factory, tmp_path):
    board = sshd_factory()
    req = dict(model=DIGITS / "digits_cnn.onnx", dataset=DIGITS / "eval.npz", threads=1, timing=FAST)
    remote = run_bench(BenchRequest(device=str(board.profile()), **req))
    local = run_bench(BenchRequest(device="local-cpu", **req))
    assert remote.ok and remote.accuracy.top1 == local.accuracy.top1 > 0.95
    assert remote.device.profile == "board" and remote.runtime["name"] == "onnxruntime"

    profile = load_profile(str(board.profile()))
    files = _files(tmp_path)
    with SSHTransport(profile) as first:
        first.run_job(_job(), files, tmp_path / "out1", 60)
    assert (first.stats.files_uploaded, first.stats.runner_pushes, first.stats.cache_hits) == (1, 0, 1)  # new inputs
    with SSHTransport(profile) as second:
        reply = second.run_job(_job(), files, tmp_path / "out2", 60)
        second.run_job(_job(), files, tmp_path / "out3", 60)  # same connection, reused
    assert second.stats.files_uploaded == 0 and second.stats.bytes_uploaded == 0
    assert second.stats.cache_hits == 4 and second.stats.runner_pushes == 0 and second.stats.connects == 1
    assert np.load(tmp_path / "out2" / "outputs.npz")["logits"].shape == (64, 10)
    assert reply["runtime"]["version"] == onnxruntime.__version__
    assert list((board.workdir / "jobs").iterdir()) == []  # cleanup policy "job"
    assert not [p for p in board.workdir.rglob("*") if ".part-" in p.name]


def test_corrupted_blob_is_pushed_again(ssh_board, tmp_path):
    profile = load_profile(str(ssh_board.profile()))
    files = _files(tmp_path)
    with SSHTransport(profile) as t:
        t.run_job(_job(), files, tmp_path / "a", 60)
    blob = next(ssh_board.workdir.glob("blobs/*/digits_cnn.onnx"))
    blob.write_bytes(b"broken")
    with SSHTransport(profile) as t:
        t.run_job(_job(), files, tmp_path / "b", 60)
    assert t.stats.files_uploaded == 1 and blob.read_bytes() == (DIGITS / "digits_cnn.onnx").read_bytes()


def test_quoted_workdir_with_space_and_quote(ssh_board, tmp_path):
    odd = tmp_path / "dev ice's $HOME dir"
    profile = load_profile(str(ssh_board.profile(workdir=str(odd))))
    with SSHTransport(profile) as t:
        t.run_job(_job(), _files(tmp_path), tmp_path / "out", 60)
    assert list(odd.glob("blobs/*/digits_cnn.onnx")) and (tmp_path / "out" / "outputs.npz").is_file()


def _error(profile_path: Path, tmp_path: Path) -> EdgebenchError:
    with pytest.raises(EdgebenchError) as info:
        with SSHTransport(load_profile(str(profile_path))) as t:
            t.run_job(_job(), _files(tmp_path), tmp_path / "out", 60)
    return info.value


def test_changed_host_key_is_refused(ssh_board, tmp_path):
    other = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{ssh_board.port} {' '.join(other.with_suffix('.pub').read_text().split()[:2])}\n")
    for policy in ("strict", "accept-new"):
        err = _error(ssh_board.profile(connection={"known_hosts": str(known), "host_key_policy": policy}), tmp_path)
        assert err.status == ExitStatus.DEVICE and "host key CHANGED" in str(err) and "ssh-keygen -R" in str(err)


def test_unknown_host_refused_by_default_and_accept_new_records_it(ssh_board, tmp_path):
    known = tmp_path / "kh" / "known_hosts"
    err = _error(ssh_board.profile(connection={"known_hosts": str(known)}), tmp_path)
    assert "unknown host key SHA256:" in str(err) and "accept-new" in str(err) and not known.exists()
    profile = ssh_board.profile(connection={"known_hosts": str(known), "host_key_policy": "accept-new"})
    with SSHTransport(load_profile(str(profile))) as t:
        t.run_job(_job(), _files(tmp_path), tmp_path / "out", 60)
    assert ssh_board.host_pub.split()[1] in known.read_text()
    strict = ssh_board.profile(connection={"known_hosts": str(known), "host_key_policy": "strict"})
    with SSHTransport(load_profile(str(strict))) as t:  # the recorded key is now trusted
        t.run_job(_job(), _files(tmp_path), tmp_path / "out2", 60)


def test_wrong_client_key_is_an_auth_error(ssh_board, tmp_path):
    wrong = tmp_path / "wrong_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(wrong)], check=True)
    err = _error(ssh_board.profile(connection={"key_file": str(wrong)}), tmp_path)
    assert err.status == ExitStatus.DEVICE and "authentication failed" in str(err) and "authorized_keys" in str(err)
    missing = _error(ssh_board.profile(connection={"key_file": str(tmp_path / "nope")}), tmp_path)
    assert missing.status == ExitStatus.CONFIG and "key_file" in str(missing)


def test_closed_port_fails_fast_and_clearly(tmp_path):
    with closed_port() as port:
        board = SshdBoard(tmp_path / "closed", port=port)  # never started: its port refuses connections
        # the longest a transport could wait here: a 60 s connect timeout, then 10 retries with back-off
        profile = load_profile(str(board.profile(connection={"connect_timeout_s": 60, "retries": 10})))
        files = _files(tmp_path)
        t = SSHTransport(profile)
        start = time.monotonic()
        with pytest.raises(EdgebenchError) as info:
            with t:
                t.run_job(_job(), files, tmp_path / "out", 60)
        elapsed = time.monotonic() - start
    err = info.value
    assert err.status == ExitStatus.DEVICE and "cannot connect" in str(err) and "sshd runs" in str(err)
    assert t.stats.connects == 0 and t.stats.retries == 0  # one refused attempt, no back-off and retry
    assert elapsed < 30  # not even half the connect timeout: nothing waited for it (a refusal takes ms)


def test_password_env_must_be_set(ssh_board, tmp_path, monkeypatch):
    monkeypatch.delenv("EDGEBENCH_TEST_PW", raising=False)
    err = _error(ssh_board.profile(connection={"password_env": "EDGEBENCH_TEST_PW"}), tmp_path)
    assert err.status == ExitStatus.CONFIG and "$EDGEBENCH_TEST_PW" in str(err)


def test_missing_python_and_missing_numpy_name_the_fix(ssh_board, tmp_path):
    err = _error(ssh_board.profile(python="/nonexistent/bin/python"), tmp_path)
    assert err.status == ExitStatus.CONFIG and "fix 'python'" in str(err)
    system = "/usr/bin/python3"
    if subprocess.run([system, "-c", "import numpy"], capture_output=True).returncode == 0:
        pytest.skip(reason=f"{system} has numpy here, so it cannot play a board without it")
    err = _error(ssh_board.profile(python=system), tmp_path)
    assert err.status == ExitStatus.RUNTIME_MISSING
    assert "board" in str(err) and system in str(err) and "pip install numpy" in str(err)


def test_alias_and_proxyjump_from_ssh_config(ssh_board, tmp_path):
    config = tmp_path / "ssh_config"
    config.write_text(f"Host jumpbox\n  HostName 127.0.0.1\n  Port {ssh_board.port}\n  IdentityFile {ssh_board.client_key}\n"
                      f"Host myboard\n  HostName 127.0.0.1\n  Port {ssh_board.port}\n  ProxyJump jumpbox\n")
    profile = ssh_board.profile(connection={"host": "myboard", "port": None, "ssh_config": str(config)})
    with SSHTransport(load_profile(str(profile))) as t:
        t.run_job(_job(), _files(tmp_path), tmp_path / "out", 60)
        assert len(t._session.jumps) == 1 and t._session.target.port == ssh_board.port
    assert (tmp_path / "out" / "outputs.npz").is_file()


def _kill_when_running(board: SshdBoard, gate: Gate, restart: bool) -> tuple[threading.Thread, list[float]]:
    """Kill the board's sshd while the job's runner is provably in flight (held at the gate, so it cannot
    have finished); then job 1, orphaned by the kill, ends without running, and the re-run (job 2) may go."""
    killed_at: list[float] = []

    def watch() -> None:
        gate.wait_started(1)
        killed_at.append(time.monotonic())
        board.kill()
        if restart:
            time.sleep(0.3)  # a moment down; the transport's back-off, not this pause, decides when it retries
            board.start()
        gate.drop(1)
        gate.go(2)
    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread, killed_at


def test_sshd_killed_mid_run_retries_then_succeeds(sshd_factory, gate_factory, tmp_path):
    board, gate = sshd_factory(), gate_factory()
    # 10 retries: back-offs of 1, 2, 4 … 30 s give the restart minutes, however slow the machine
    profile = load_profile(str(board.profile(python=str(gate.python), connection={"retries": 10})))
    watcher, _ = _kill_when_running(board, gate, restart=True)
    with SSHTransport(profile) as t:
        reply = t.run_job(_job(), _files(tmp_path), tmp_path / "out", 300)
    watcher.join()
    assert reply["status"] == "ok" and t.stats.retries >= 1 and t.stats.connects >= 2
    assert gate.started(2).exists()  # the job ran again on the new connection
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["outputs.npz"]
    assert list((board.workdir / "jobs").iterdir()) == []
    assert not [p for p in board.workdir.rglob("*") if ".part-" in p.name]


def test_sshd_killed_for_good_fails_cleanly(sshd_factory, gate_factory, tmp_path):
    board, gate = sshd_factory(), gate_factory()
    profile = load_profile(str(board.profile(python=str(gate.python), connection={"retries": 1})))
    watcher, killed_at = _kill_when_running(board, gate, restart=False)
    with pytest.raises(EdgebenchError) as info:
        with SSHTransport(profile) as t:
            t.run_job(_job(), _files(tmp_path), tmp_path / "out", 300)
    failed_at = time.monotonic()
    watcher.join()
    assert info.value.status == ExitStatus.DEVICE and "failed 2 times" in str(info.value)
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []
    # what it must do after the kill: see the drop, back off 1 s, be refused once; a transport that missed
    # the drop would wait out the job's 300 s timeout for an answer that cannot come
    assert failed_at - killed_at[0] < 60


def test_devices_check_over_ssh_reports_onnxruntime(ssh_board, capsys):
    status = main(["devices", "check", str(ssh_board.profile()), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert status == ExitStatus.OK and report["reachable"]
    assert report["runtimes"]["onnxruntime"] == {"ok": True, "version": onnxruntime.__version__,
                                                 "providers": onnxruntime.get_available_providers()}
    assert report["missing"] == [] and report["cores"] >= 1 and report["memory_mb"]["total"] > 0


def test_devices_check_unreachable_is_one_line(tmp_path, capsys):
    with closed_port() as port:
        status = main(["devices", "check", str(SshdBoard(tmp_path / "off", port=port).profile())])
    assert status == ExitStatus.DEVICE and "cannot connect" in capsys.readouterr().err


def test_a_paired_ab_round_runs_on_a_board(ssh_board, tmp_path):
    """ab's paired rounds over SSH: the partner's model and inputs are placed on the board beside A's and both
    run in one remote runner process."""
    out = tmp_path / "ab.json"
    rules = tmp_path / "rules.yaml"
    rules.write_text("inconclusive: warn\n")
    status = main(["ab", "-b", str(DIGITS / "digits_cnn.onnx"), "-c", str(DIGITS / "digits_cnn.onnx"),
                   "--device", str(ssh_board.profile()), "--threads", "1", "--max-rounds", "1", "--warmup-s", "0",
                   "--min-iterations", "10", "--min-duration-s", "0.05", "--rules", str(rules), "--json", str(out)])
    assert status == ExitStatus.OK
    a, b = json.loads(out.read_text())
    assert a["device"]["profile"] == b["device"]["profile"] == "board"
    assert a["extra"]["ab"]["round_pairs"] == 1 and len(a["extra"]["round_sizes"]) == 1
    assert len(b["samples_ns"]) >= 10 and list((ssh_board.workdir / "jobs").iterdir()) == []
