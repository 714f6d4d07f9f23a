"""The board pool (devices/leases.py) on a real PostgreSQL server: processes that lease one device never
overlap, a killed holder's lease is taken over at once, a frozen one's after its TTL (and it learns its result
is not trusted), ``devices status`` shows who holds what, and bad settings are one line each. Every process has
its own lock folder, as on separate hosts: only the lease keeps them apart."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
import yaml

from edgebench.cli import main
from edgebench.config import load_profile
from edgebench.devices.leases import PgLeases, lease_ttl_s, use_lease_pool
from edgebench.devices.lock import device_lock
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.postgres import holder_host
from tests.postgres import PASSWORD, pg_server, pg_url  # noqa: F401  (fixtures)
from tests.sshd import gate_factory  # noqa: F401  (fixture)
from tests.test_sweep import QUICK, write_spec

ROOT = Path(__file__).resolve().parents[1]
HOLDER = '''
import logging, os, sys, time
from pathlib import Path
logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(message)s")
from edgebench.config import load_profile
from edgebench.devices.leases import use_lease_pool
from edgebench.devices.lock import device_lock
from edgebench.errors import EdgebenchError

mode, url, profile, out = sys.argv[1], sys.argv[2], load_profile(sys.argv[3]), Path(sys.argv[4])
use_lease_pool(url, "lease-test")
if mode == "rounds":  # lease, record the critical section, let go; several times
    for _ in range(int(sys.argv[5])):
        with device_lock(profile, wait_s=120):
            start = time.time()
            time.sleep(0.3)
            end = time.time()
        with out.open("a") as f:
            f.write(f"{os.getpid()} {start!r} {end!r}\\n")
else:  # hold until OUT.go exists, then write how the release went
    try:
        with device_lock(profile, wait_s=120):
            Path(f"{out}.held").write_text(str(os.getpid()))
            while not Path(f"{out}.go").exists():
                time.sleep(0.05)
        out.write_text("released")
    except EdgebenchError as exc:
        out.write_text(str(exc))
        sys.exit(int(exc.status))
'''


@pytest.fixture(autouse=True)
def _no_pool(monkeypatch, tmp_path):
    """Each test starts and ends without a lease pool, with its own lock folder."""
    monkeypatch.setenv("EDGEBENCH_LOCK_DIR", str(tmp_path / "locks-test"))
    monkeypatch.delenv("EDGEBENCH_LEASE_TTL_S", raising=False)
    monkeypatch.delenv("EDGEBENCH_STORE", raising=False)
    use_lease_pool(None)
    yield
    use_lease_pool(None)


def _profile(tmp_path: Path, python: Path | None = None) -> Path:
    path = tmp_path / "lease-cpu.yaml"
    path.write_text(yaml.safe_dump({"name": "lease-cpu", "connection": {"type": "local"}, "runtimes": ["onnxruntime"],
                                    "threads": 0, **({"python": str(python)} if python else {})}))
    return path


def _holder(tmp_path: Path, name: str, *args: str, ttl_s: float | None = None) -> subprocess.Popen[str]:
    script = tmp_path / "holder.py"
    script.write_text(HOLDER)
    env = {**os.environ, "EDGEBENCH_LOCK_DIR": str(tmp_path / f"locks-{name}")}  # as if on its own host
    if ttl_s is not None:
        env["EDGEBENCH_LEASE_TTL_S"] = str(ttl_s)
    with open(tmp_path / f"{name}.err", "w") as err:
        return subprocess.Popen([sys.executable, str(script), *args], env=env, cwd=ROOT, stderr=err, text=True)


def _wait_file(path: Path, proc: subprocess.Popen[str], timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert proc.poll() is None, (path.parent / "err").read_text() if (path.parent / "err").exists() else proc.args
        assert time.monotonic() < deadline, f"{path} did not appear within {timeout_s:g} s"
        time.sleep(0.05)


def _log(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT pid, ended, waited_s, acquired_at, released_at FROM edgebench.device_lease_log "
                            "ORDER BY acquired_at").fetchall()


def test_two_processes_leasing_one_device_never_overlap(tmp_path, pg_url):
    profile = _profile(tmp_path)
    out = tmp_path / "sections.txt"
    procs = [_holder(tmp_path, name, "rounds", pg_url, str(profile), str(out), "4") for name in ("a", "b")]
    for proc, name in zip(procs, "ab"):
        assert proc.wait(180) == 0, (tmp_path / f"{name}.err").read_text()
    sections = sorted(tuple(map(float, line.split()[1:])) for line in out.read_text().splitlines())
    assert len(sections) == 8 and len({line.split()[0] for line in out.read_text().splitlines()}) == 2
    for (_, end), (start, _) in zip(sections, sections[1:]):
        assert end <= start, sections  # one critical section ends before the next one starts
    log = _log(pg_url)
    assert len(log) == 8 and {row[1] for row in log} == {"released"}
    for earlier, later in zip(log, log[1:]):
        assert earlier[4] <= later[3]  # the store's own record agrees: released before the next was acquired


def test_a_killed_holder_is_taken_over_at_once_naming_it(tmp_path, pg_url, caplog):
    profile = _profile(tmp_path)
    out = tmp_path / "held"
    holder = _holder(tmp_path, "a", "hold", pg_url, str(profile), str(out))
    _wait_file(Path(f"{out}.held"), holder)
    holder.send_signal(signal.SIGKILL)
    holder.wait(60)
    use_lease_pool(pg_url)  # the default TTL (60 s) is far past the wait: only "its process is gone" lets it in
    with caplog.at_level(logging.WARNING, logger="edgebench.devices"):
        with device_lock(load_profile(str(profile)), wait_s=45):
            pass
    assert f"took over the lease of pid {holder.pid} on {holder_host()}" in caplog.text
    assert "its process is gone" in caplog.text
    ended = {pid: how for pid, how, *_ in _log(pg_url)}
    assert ended == {holder.pid: "taken-over", os.getpid(): "released"}


def test_a_frozen_holder_loses_its_lease_after_the_ttl_and_its_result_is_not_trusted(tmp_path, pg_url, monkeypatch):
    profile = _profile(tmp_path)
    out = tmp_path / "held"
    holder = _holder(tmp_path, "a", "hold", pg_url, str(profile), str(out), ttl_s=2)
    _wait_file(Path(f"{out}.held"), holder)
    holder.send_signal(signal.SIGSTOP)
    try:
        monkeypatch.setenv("EDGEBENCH_LEASE_TTL_S", "2")
        use_lease_pool(pg_url)
        with device_lock(load_profile(str(profile)), wait_s=120):  # it waits for the frozen one's lease to expire
            Path(f"{out}.go").touch()
            holder.send_signal(signal.SIGCONT)
            assert holder.wait(120) == ExitStatus.DEVICE, (tmp_path / "a.err").read_text()
            with psycopg.connect(pg_url) as conn:  # the device is still this process's
                assert conn.execute("SELECT pid FROM edgebench.device_leases").fetchall() == [(os.getpid(),)]
    finally:
        holder.send_signal(signal.SIGCONT)
    said = out.read_text()
    assert said.startswith("the lease on device lease-cpu was lost during the measurement (it expired")
    assert f"pid {os.getpid()} on {holder_host()} took the device" in said and "its result is not trusted" in said
    ended = {pid: how for pid, how, *_ in _log(pg_url)}
    assert ended == {holder.pid: "expired", os.getpid(): "released"}


def test_devices_status_shows_the_lease_and_the_local_lock_never_the_password(tmp_path, pg_url, monkeypatch, capsys):
    profile = _profile(tmp_path)
    out = tmp_path / "held"
    holder = _holder(tmp_path, "a", "hold", pg_url, str(profile), str(out))
    try:
        _wait_file(Path(f"{out}.held"), holder)
        monkeypatch.setenv("EDGEBENCH_LOCK_DIR", str(tmp_path / "locks-a"))  # the holder's host
        assert main(["devices", "status", "--store", pg_url]) == 0
        shown = capsys.readouterr().out
    finally:
        Path(f"{out}.go").touch()
        assert holder.wait(60) == 0
    assert PASSWORD not in shown and "edgebench:***@127.0.0.1" in shown
    assert "device leases in" in shown and f"local {holder_host()} lease-cpu" in shown
    assert str(holder.pid) in shown and "lease-test" in shown and "held" in shown
    assert "device locks held on this host" in shown and "local lease-cpu" in shown
    assert main(["devices", "status", "--store", pg_url]) == 0  # released: nothing held, one line
    idle = capsys.readouterr().out
    assert idle.count("\n") == 1 and "no device is leased in" in idle and PASSWORD not in idle


@pytest.mark.parametrize("value", ["abc", "0", "-5", "nan", "inf"])
def test_a_bad_lease_ttl_is_one_line(monkeypatch, pg_url, value):
    monkeypatch.setenv("EDGEBENCH_LEASE_TTL_S", value)
    with pytest.raises(EdgebenchError) as err:
        use_lease_pool(pg_url)
    assert err.value.status == ExitStatus.USAGE and "EDGEBENCH_LEASE_TTL_S" in str(err.value)
    assert "\n" not in str(err.value)
    monkeypatch.setenv("EDGEBENCH_LEASE_TTL_S", "2.5")
    assert lease_ttl_s() == 2.5


def test_a_wrong_password_or_unreachable_store_is_one_line(pg_server, pg_url, capsys):
    wrong = pg_url.replace(PASSWORD, "not-the-password")
    for url in (wrong, f"postgresql://edgebench:{PASSWORD}@127.0.0.1:1/nowhere"):
        assert main(["devices", "status", "--store", url]) == ExitStatus.OUTPUT
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err and PASSWORD not in err
        with pytest.raises(EdgebenchError) as raised:
            use_lease_pool(url)
        assert raised.value.status == ExitStatus.OUTPUT and PASSWORD not in str(raised.value)
    assert "refused the credentials" in str(raised.value) or "cannot connect" in str(raised.value)


def test_a_busy_lease_refuses_past_the_wait_naming_the_holder(tmp_path, pg_url):
    profile = _profile(tmp_path)
    out = tmp_path / "held"
    holder = _holder(tmp_path, "a", "hold", pg_url, str(profile), str(out))
    try:
        _wait_file(Path(f"{out}.held"), holder)
        use_lease_pool(pg_url)
        with pytest.raises(EdgebenchError) as err:
            with device_lock(load_profile(str(profile)), wait_s=0):
                pass
    finally:
        Path(f"{out}.go").touch()
        assert holder.wait(60) == 0
    assert err.value.status == ExitStatus.DEVICE
    assert f"device lease-cpu is in use by pid {holder.pid} on {holder_host()} (holder.py hold" in str(err.value)
    assert "--device-wait" in str(err.value)


def test_a_lease_pool_keeps_its_schema_once_for_concurrent_first_users(pg_url):
    pools = [PgLeases(pg_url) for _ in range(3)]
    for pool in pools:  # idempotent: the tables exist after the first
        pool.prepare()
    with psycopg.connect(pg_url) as conn:
        tables = conn.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'edgebench' "
                              "ORDER BY 1").fetchall()
    assert [t for (t,) in tables if t.startswith("device_")] == ["device_lease_log", "device_leases"]


def _recording_python(tmp_path: Path, gate_python: Path) -> tuple[Path, Path]:
    """A board python that appends ``PID start|end TIME`` around each runner job (through the gate), so the test
    reads when jobs ran from a record the lease code never touches."""
    record = tmp_path / "jobs.txt"
    python = tmp_path / "recording-python"
    python.write_text(f"""#!/bin/sh
case "$1" in */edgebench_runner.py) ;; *) exec {gate_python} "$@" ;; esac
echo "$$ start $(date +%s.%N)" >> {record}
{gate_python} "$@"
rc=$?
echo "$$ end $(date +%s.%N)" >> {record}
exit $rc
""")
    python.chmod(0o755)
    return python, record


def test_two_sweeps_on_one_device_with_a_postgresql_store_take_turns(tmp_path, pg_url, gate_factory):
    gate = gate_factory()
    python, record = _recording_python(tmp_path, gate.python)
    spec = write_spec(tmp_path / "s.yaml", devices=[str(_profile(tmp_path, python))],
                      options={"threads": [1], "batch": [1, 2]}, timing=QUICK)

    def sweep(name: str) -> subprocess.Popen[str]:
        env = {**os.environ, "EDGEBENCH_LOCK_DIR": str(tmp_path / f"locks-{name}")}  # as if on its own host
        with open(tmp_path / f"{name}.out", "w") as out, open(tmp_path / f"{name}.err", "w") as err:
            return subprocess.Popen([sys.executable, "-m", "edgebench", "sweep", str(spec), "--store", pg_url,
                                     "--cache-dir", str(tmp_path / f"cache-{name}")],
                                    stdout=out, stderr=err, text=True, env=env, cwd=tmp_path)

    first = sweep("a")
    gate.wait_started(1, alive=lambda: first.poll() is None or pytest.fail((tmp_path / "a.err").read_text()))
    second = sweep("b")
    deadline = time.monotonic() + 120
    while "is in use by" not in (tmp_path / "b.err").read_text():  # it waits for the lease the first one holds
        assert second.poll() is None, (tmp_path / "b.err").read_text()
        assert time.monotonic() < deadline, "the second sweep did not wait for the device"
        time.sleep(0.05)
    assert f"device lease-cpu is in use by pid {first.pid} on {holder_host()}" in (tmp_path / "b.err").read_text()
    assert not gate.started(2).exists()
    gate.open()
    for proc, name in ((first, "a"), (second, "b")):
        assert proc.wait(180) == 0, (tmp_path / f"{name}.err").read_text()
    jobs: dict[str, dict[str, float]] = {}
    for line in record.read_text().splitlines():
        pid, what, when = line.split()
        jobs.setdefault(pid, {})[what] = float(when)
    spans = sorted((job["start"], job["end"]) for job in jobs.values())
    assert len(spans) == 4
    for (_, end), (start, _) in zip(spans, spans[1:]):
        assert end <= start, spans  # never two runner jobs on the device at once
    leased = {pid for pid, *_ in _log(pg_url)}
    assert leased == {first.pid, second.pid}


def test_a_job_whose_lease_was_taken_over_fails_and_the_next_job_waits_for_the_device_again(tmp_path, pg_server,
                                                                                              pg_url, monkeypatch):
    """A sweep worker holds the device across its jobs: a job during which the lease went to another holder
    raises the lost-lease error (its cell is an error), the next job leases the device again, the worker's own
    release says nothing more. A connection that merely broke, with nobody taking over, keeps the lease."""
    monkeypatch.setenv("EDGEBENCH_LEASE_TTL_S", "30")
    profile = load_profile(str(_profile(tmp_path)))
    use_lease_pool(pg_url)

    def my_backend() -> int:
        with psycopg.connect(pg_url) as conn:
            return conn.execute("SELECT backend_pid FROM edgebench.device_leases").fetchone()[0]

    with device_lock(profile, wait_s=0):  # the worker
        backend = my_backend()
        pg_server.admin(f"SELECT pg_terminate_backend({backend})")
        with device_lock(profile, wait_s=0):  # a job: the lease reconnects, nobody took it, it is still ours
            pass
        assert my_backend() != backend
        with pytest.raises(EdgebenchError) as lost:
            with device_lock(profile, wait_s=0):  # a job during which another host took the device
                pg_server.admin(f"SELECT pg_terminate_backend({my_backend()})")
                thief = PgLeases(pg_url, run="thief").acquire(profile, wait_s=30)  # its holder's process is gone
        assert lost.value.status == ExitStatus.DEVICE
        assert str(lost.value).startswith("the lease on device lease-cpu was lost during the measurement (it was "
                                          "taken over") and "not trusted" in str(lost.value)
        with pytest.raises(EdgebenchError) as busy:
            with device_lock(profile, wait_s=0):  # the next job: the device is the thief's now
                pass
        assert busy.value.status == ExitStatus.DEVICE and "is in use by" in str(busy.value)
        thief.release()
        with device_lock(profile, wait_s=0):  # leased again
            pass
    log = _log(pg_url)
    assert [row[1] for row in log] == ["taken-over", "released", "released"]


def test_compare_leases_its_device_from_the_team_pool(tmp_path, pg_url, monkeypatch):
    """With $EDGEBENCH_STORE a PostgreSQL URL, compare's measurements lease the device like bench's and ab's."""
    monkeypatch.setenv("EDGEBENCH_STORE", pg_url)
    digits = ROOT / "edgebench" / "bundled" / "demo"
    assert main(["compare", str(digits / "digits_cnn.onnx"), "--formats", "onnx", "--dataset",
                 str(digits / "eval.npz"), "--device", str(_profile(tmp_path)), "--cache-dir", str(tmp_path / "c")]) \
        in (0, 1)
    ended = [row[1] for row in _log(pg_url) if row[0] == os.getpid()]
    assert ended and set(ended) == {"released"}
