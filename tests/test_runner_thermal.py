"""The runner's thermal rules with an injected clock and sleep; the sensor is a real file."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgebench.runner import thermal


class Room:
    """A clock that advances only when the runner sleeps; the board cools 5 °C per sleep."""

    def __init__(self, sensor: Path, start_c: float, cools_per_sleep: float = 5.0) -> None:
        self.sensor, self.now, self.cool = sensor, 0.0, cools_per_sleep
        self.temp = start_c
        self.sleeps: list[float] = []
        self._write()

    def _write(self) -> None:
        self.sensor.write_text(f"{int(self.temp * 1000)}\n")  # sysfs: milli-degrees C

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        self.temp -= self.cool
        self._write()


def test_waits_until_below_max_start(tmp_path):
    room = Room(tmp_path / "temp", 72.0)
    rules = {"sensor": str(room.sensor), "max_start_c": 60, "cooldown_timeout_s": 100, "poll_s": 2}
    state = thermal.cool_down(rules, clock=room.clock, sleep=room.sleep)
    assert room.sleeps == [2, 2, 2]  # 72 → 67 → 62 → 57
    assert state["temperature_c_initial"] == 72.0 and state["temperature_c_start"] == 57.0
    assert state["waited_s"] == 6 and state["cooldown_timed_out"] is False


def test_gives_up_at_the_timeout_and_says_so(tmp_path):
    room = Room(tmp_path / "temp", 90.0, cools_per_sleep=0.5)
    rules = {"sensor": str(room.sensor), "max_start_c": 60, "cooldown_timeout_s": 5, "poll_s": 2}
    state = thermal.cool_down(rules, clock=room.clock, sleep=room.sleep)
    assert room.sleeps == [2, 2, 1] and state["waited_s"] == 5 and state["cooldown_timed_out"] is True
    assert state["temperature_c_start"] == 88.5


def test_no_wait_when_cool_or_without_limit(tmp_path):
    room = Room(tmp_path / "temp", 45.0)
    for rules in ({"sensor": str(room.sensor), "max_start_c": 60}, {"sensor": str(room.sensor)}):
        state = thermal.cool_down(rules, clock=room.clock, sleep=room.sleep)
        assert room.sleeps == [] and state["waited_s"] == 0 and state["temperature_c_start"] == 45.0
    assert "sensor" not in thermal.cool_down({}, clock=room.clock, sleep=room.sleep)


def test_finish_reads_the_end_temperature(tmp_path):
    room = Room(tmp_path / "temp", 50.0)
    state = thermal.cool_down({"sensor": str(room.sensor)}, clock=room.clock, sleep=room.sleep)
    room.sensor.write_text("63500\n")
    assert thermal.finish(state)["temperature_c_end"] == 63.5


def test_unreadable_sensor_names_the_fix(tmp_path):
    with pytest.raises(thermal.SensorUnreadable, match="fix thermal.sensor"):
        thermal.cool_down({"sensor": str(tmp_path / "missing"), "max_start_c": 60})


@pytest.mark.parametrize("text, celsius", [("45000", 45.0), ("45.5", 45.5), ("-5000", -5.0)])
def test_reads_milli_degrees_and_degrees(tmp_path, text, celsius):
    (tmp_path / "t").write_text(text)
    assert thermal.read_celsius(str(tmp_path / "t")) == celsius
