"""The host's throttling verdict, and thermal rules applied by the runner in a real local bench."""

from __future__ import annotations

import yaml

from edgebench.pipeline.bench import BenchRequest, run_bench
from edgebench.cli import main
from edgebench.config import Thermal, TimingSpec
from edgebench.devices.thermal import throttle_reasons
from edgebench.errors import ExitStatus
from edgebench.paths import demo_dir

DIGITS = demo_dir()
FAST = TimingSpec(warmup_iterations=1, warmup_s=0.0, min_iterations=10, min_duration_s=0.05, max_duration_s=5)


def _reply(governor=None, before=None, after=None, zones=None, heat=None):
    return {"environment": {"governor": governor, "frequency_mhz": {"scaling_cur_freq": before} if before else {},
                            "frequency_mhz_after": {"scaling_cur_freq": after} if after else {},
                            "temperatures_c": zones or {}, "temperatures_c_after": {}},
            "thermal": heat or {}}


def test_temperature_rule_uses_the_sensor_when_named():
    rules = Thermal(sensor="/x", throttle_c=80)
    hot = {"sensor": "/x", "temperature_c_start": 70.0, "temperature_c_end": 81.0}
    assert throttle_reasons(_reply(heat=hot, zones={"z": 20.0}), rules) == [
        "temperature 81.0 °C reached throttle_c 80 °C"]
    cool = {"sensor": "/x", "temperature_c_start": 70.0, "temperature_c_end": 79.9}
    assert throttle_reasons(_reply(heat=cool, zones={"z": 95.0}), rules) == []
    assert throttle_reasons(_reply(zones={"z": 95.0}), Thermal(throttle_c=80))  # no sensor: hottest zone
    assert throttle_reasons(_reply(zones={"z": 95.0}), Thermal()) == []  # no limit, no verdict


def test_throttle_counters_and_clock_rules():
    assert "3 thermal-throttle events" in throttle_reasons(_reply(heat={"throttle_events": 3}), Thermal())[0]
    assert throttle_reasons(_reply(heat={"throttle_events": 0}), Thermal()) == []
    dropped = throttle_reasons(_reply("performance", 2400.0, 1800.0), Thermal())
    assert dropped == ["the CPU clock fell from 2400 to 1800 MHz under the performance governor"]
    assert throttle_reasons(_reply("performance", 2400.0, 2200.0), Thermal()) == []  # within 90 %
    assert throttle_reasons(_reply("schedutil", 2400.0, 600.0), Thermal()) == []  # clocks vary on purpose


def _profile(tmp_path, **thermal):
    path = tmp_path / "hot.yaml"
    path.write_text(yaml.safe_dump({"name": "hot-board", "connection": {"type": "local"}, "threads": 1,
                                    "thermal": thermal}))
    return path


def test_local_bench_waits_records_and_flags_throttling(tmp_path):
    sensor = tmp_path / "temp"
    sensor.write_text("85000\n")
    profile = _profile(tmp_path, sensor=str(sensor), max_start_c=60, cooldown_timeout_s=0.3, poll_s=0.1,
                       throttle_c=80)
    result = run_bench(BenchRequest(model=DIGITS / "digits_cnn.onnx", device=str(profile), timing=FAST))
    heat = result.environment["thermal"]
    # it waited its 0.3 s, then gave up and ran: load may stretch the polls, but a wait near the 180 s
    # default (or the job's 310 s timeout) would mean the profile's cooldown_timeout_s was not applied
    assert heat["cooldown_timed_out"] is True and 0.3 <= heat["waited_s"] < Thermal().cooldown_timeout_s / 3
    assert heat["temperature_c_start"] == 85.0 and heat["temperature_c_end"] == 85.0
    assert result.validity.throttled is True and "85.0 °C" in heat["throttle_reasons"][0]


def test_missing_sensor_is_a_config_error(tmp_path, capsys):
    profile = _profile(tmp_path, sensor=str(tmp_path / "no-such-sensor"), max_start_c=60)
    status = main(["bench", str(DIGITS / "digits_cnn.onnx"), "--device", str(profile), "--min-duration-s", "0.05"])
    err = capsys.readouterr().err
    assert status == ExitStatus.CONFIG and "fix thermal.sensor" in err and err.count("\n") == 1
