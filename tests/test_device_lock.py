"""One measurement at a time per device across processes (devices/lock.py): real edgebench processes on one
gated local device (tests/sshd.py's Gate), the second waiting or refused with the holder's name."""

from __future__ import annotations

import threading


from edgebench.config import load_profile
from edgebench.devices.lock import device_lock
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.store.db import SqliteStore
from tests.conftest import DIGITS, QUICK_TIMING
from tests.sshd import gate_factory  # noqa: F401  (fixture)
from tests.test_sweep import _gated_cpu, _wait_for, write_spec
from tests.test_sweep_signals import _alive, _start, _sweep


def test_a_second_process_waits_for_the_device_or_is_refused_naming_the_holder(tmp_path, gate_factory):
    gate = gate_factory()
    profile = _gated_cpu(tmp_path, gate)
    spec = write_spec(tmp_path / "s.yaml", devices=[str(profile)])
    first = _sweep(tmp_path, spec, tmp_path / "a.db", tmp_path / "a.txt")
    gate.wait_started(1, alive=_alive(first))  # the first sweep measures on the device (its job held)

    refused = _start(tmp_path, "bench", str(DIGITS / "digits_cnn.onnx"), "--device", str(profile), *QUICK_TIMING,
                     stdout=tmp_path / "b.txt", extra_env={"EDGEBENCH_DEVICE_WAIT_S": "0"})
    _, err = refused.communicate(timeout=120)
    assert refused.returncode == ExitStatus.DEVICE, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"device gated-cpu is in use by pid {first.pid} (edgebench sweep {spec}" in err
    assert "--device-wait" in err and "EDGEBENCH_DEVICE_WAIT_S" in err

    waited = tmp_path / "c.err"
    waiting = _sweep(tmp_path, spec, tmp_path / "c.db", tmp_path / "c.txt", stderr=waited)
    _wait_for(lambda: "is in use by" in waited.read_text(), waiting, "wait for the device")
    assert f"device gated-cpu is in use by pid {first.pid} (edgebench sweep {spec}" in waited.read_text()
    assert not gate.started(2).exists()  # it waits: its job has not started
    gate.go(1)  # the first sweep's cell ends, it lets the device go, and only then the second one's job starts
    gate.wait_started(2, alive=_alive(waiting))
    gate.go(2)
    assert first.wait(120) == 0 and waiting.wait(120) == 0, waited.read_text()
    assert "device gated-cpu is free: measuring" in waited.read_text()
    for store in ("a.db", "c.db"):
        with SqliteStore(tmp_path / store) as db:
            assert [r.ok for r in db.results(1)] == [True]


def test_the_lock_is_reentrant_in_one_thread_and_free_after_use(tmp_path, monkeypatch, gate_factory):
    monkeypatch.setenv("EDGEBENCH_LOCK_DIR", str(tmp_path / "locks"))
    profile = load_profile(str(_gated_cpu(tmp_path, gate_factory())))
    with device_lock(profile, wait_s=0):
        with device_lock(profile, wait_s=0):  # a sweep's worker holds it; its job takes it again
            pass
        other: list[BaseException] = []
        thread = threading.Thread(target=lambda: _try(profile, other))
        thread.start()
        thread.join(60)
        assert isinstance(other[0], EdgebenchError) and other[0].status == ExitStatus.DEVICE  # another thread waits
    with device_lock(profile, wait_s=0):  # released: free again
        pass


def _try(profile, errors: list[BaseException]) -> None:
    try:
        with device_lock(profile, wait_s=0):
            pass
    except EdgebenchError as exc:
        errors.append(exc)
