"""Energy per inference (runner/power.py): each source read from a FAKE sensor laid out as its documented
interface — fake powercap and hwmon/iio trees in tmp folders, a fake ``vcgencmd`` script, a fake libnvidia-ml
compiled from C here — then the runner and ``edgebench bench`` end to end, the result record and the gate.
Where this machine has a readable RAPL counter, it is read for real too."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import pytest
import yaml

from edgebench.cli import main
from edgebench.config import GateSpec
from edgebench.errors import ExitStatus
from edgebench.pipeline.gate import compare
from edgebench.result import DeviceInfo, Energy, ModelInfo, Result, read_results
from edgebench.runner import power
from edgebench.runner.job import JobError, RunnerJob
from tests.conftest import DIGITS, QUICK_TIMING, ROOT

REAL_RAPL = Path("/sys/class/powercap/intel-rapl:0/energy_uj")


def fake_powercap(root: Path, zones: dict[str, tuple[str, int, int]]) -> Path:
    """A FAKE /sys/class/powercap: ``{"intel-rapl:0": (name, energy_uj, max_energy_range_uj)}``."""
    for zone, (name, energy, span) in zones.items():
        (root / zone).mkdir(parents=True)
        (root / zone / "name").write_text(name + "\n")
        (root / zone / "energy_uj").write_text(f"{energy}\n")
        (root / zone / "max_energy_range_uj").write_text(f"{span}\n")
    return root


def set_counter(path: Path, value: float) -> None:
    """Replace a fake counter file at once, as the kernel's read never sees half a number."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(f"{int(value)}\n")
    os.replace(tmp, path)


class FakeRaplCounter(threading.Thread):
    """Advances a FAKE energy_uj at ``watts`` (changeable) every few ms, wrapping at max_energy_range_uj."""

    def __init__(self, zone: Path, watts: float, span: int) -> None:
        super().__init__(daemon=True)
        self.path, self.watts, self.span = zone / "energy_uj", watts, span
        self.done = threading.Event()

    def run(self) -> None:
        energy, last = float(self.path.read_text()), time.monotonic()
        while not self.done.wait(0.002):
            now = time.monotonic()
            energy = (energy + self.watts * (now - last) * 1e6) % self.span
            last = now
            set_counter(self.path, energy)

    def __enter__(self) -> "FakeRaplCounter":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.join(5)


def test_fake_rapl_sums_the_packages_and_unwraps_each_counter(tmp_path):
    root = fake_powercap(tmp_path / "fake-powercap", {
        "intel-rapl:0": ("package-0", 900_000, 1_000_000), "intel-rapl:0:0": ("core", 10, 1_000_000),
        "intel-rapl:1": ("package-1", 100, 2_000_000), "intel-rapl:2": ("psys", 5, 1_000_000)})
    rapl = power.Rapl(str(root), [])
    assert [z.name for z in rapl.zones] == ["intel-rapl:0", "intel-rapl:1"]  # not the core subzone, not psys
    set_counter(root / "intel-rapl:0" / "energy_uj", 50_000)  # wrapped: +150 000 µJ
    set_counter(root / "intel-rapl:1" / "energy_uj", 200_100)  # +200 000 µJ
    assert rapl.read() == pytest.approx(0.35)
    set_counter(root / "intel-rapl:0" / "energy_uj", 60_000)
    assert rapl.read() == pytest.approx(0.36)
    assert [z.name for z in power.Rapl(str(root), ["core"]).zones] == ["intel-rapl:0:0"]
    with pytest.raises(power.PowerUnavailable, match=r"no RAPL zone named dram .*zones: core, package-0"):
        power.Rapl(str(root), ["dram"])
    with pytest.raises(power.PowerUnavailable, match="this machine exposes no RAPL"):
        power.Rapl(str(tmp_path / "empty"), [])


def test_root_only_rapl_counter_is_a_note_naming_the_permission():
    """Since Linux 5.10 energy_uj is mode 0400: read as an ordinary user (nobody) the note says how to fix it."""
    if os.geteuid() != 0:
        pytest.skip(reason="needs root to read as another user")
    folder = Path(tempfile.mkdtemp(prefix="edgebench-fake-powercap-"))
    try:
        folder.chmod(0o755)
        root = fake_powercap(folder / "powercap", {"intel-rapl:0": ("package-0", 1, 1_000_000)})
        (root / "intel-rapl:0" / "energy_uj").chmod(0o400)
        for p in (root, root / "intel-rapl:0"):
            p.chmod(0o755)
        # power.py is standard library only, as on a device: the system python3 loads it by its path
        python = shutil.which("python3", path="/usr/bin:/bin:/usr/local/bin")
        if python is None:
            pytest.skip(reason="no system python3 another user can run")
        code = ("import sys; sys.path.insert(0, sys.argv[1]); import power; "
                "print(power.open_meter({'source': 'rapl', 'path': sys.argv[2]})[1])")
        done = subprocess.run([python, "-c", code, str(ROOT / "edgebench" / "runner"), str(root)],
                              capture_output=True, text=True, timeout=60, user="nobody", cwd="/",
                              env={"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"})
        assert done.returncode == 0, done.stderr
        assert "is not readable by this user" in done.stdout and "root-only" in done.stdout
    finally:
        shutil.rmtree(folder)


def test_fake_ina3221_hwmon_and_iio_rails(tmp_path):
    hwmon = tmp_path / "fake-ina3221-hwmon"
    hwmon.mkdir()
    for name, value in {"name": "ina3221", "in1_label": "VDD_IN", "in1_input": 5000, "curr1_input": 1200,
                        "in2_label": "VDD_CPU_GPU_CV", "in2_input": 5000, "curr2_input": 400,
                        "in7_label": "sum of shunt voltages", "in7_input": 900}.items():
        (hwmon / name).write_text(f"{value}\n")
    assert power.Ina3221(str(hwmon), []).read() == pytest.approx(6.0)  # the input rail alone: 5 V × 1.2 A
    assert power.Ina3221(str(hwmon), ["VDD_CPU_GPU_CV"]).read() == pytest.approx(2.0)
    with pytest.raises(power.PowerUnavailable, match="no INA3221 rail named VDD_GPU"):
        power.Ina3221(str(hwmon), ["VDD_GPU"])
    iio = tmp_path / "fake-ina3221x-iio"
    iio.mkdir()
    for name, value in {"rail_name_0": "POM_5V_IN", "in_power0_input": 3500, "rail_name_1": "POM_5V_GPU",
                        "in_power1_input": 250}.items():
        (iio / name).write_text(f"{value}\n")
    assert power.Ina3221(str(iio), []).read() == pytest.approx(3.5)  # mW → W
    with pytest.raises(power.PowerUnavailable, match="not a Jetson"):
        power.Ina3221(str(tmp_path / "nothing"), [])


PMIC_REST = """\
     3V3_SYS_A current(1)=0.05000000A
     1V8_SYS_A current(2)=0.10000000A
     VDD_CORE_A current(7)=0.50000000A
     3V3_SYS_V volt(9)=3.30000000V
     1V8_SYS_V volt(10)=1.80000000V
     VDD_CORE_V volt(15)=0.80000000V
       EXT5V_V volt(24)=5.10000000V
        BATT_V volt(25)=0.00000000V
"""
PMIC_LOAD = PMIC_REST.replace("0.50000000A", "2.50000000A").replace("0.80000000V", "0.90000000V")
REST_W = 0.05 * 3.3 + 0.1 * 1.8 + 0.5 * 0.8  # 0.745 W; EXT5V and BATT have no current
LOAD_W = 0.05 * 3.3 + 0.1 * 1.8 + 2.5 * 0.9  # 2.595 W


def fake_vcgencmd(folder: Path) -> Path:
    """A FAKE ``vcgencmd``: ``pmic_read_adc`` prints adc-rest or adc-load, as the file ``state`` says."""
    folder.mkdir()
    (folder / "adc-rest").write_text(PMIC_REST)
    (folder / "adc-load").write_text(PMIC_LOAD)
    (folder / "state").write_text("rest")
    script = folder / "vcgencmd"
    script.write_text(textwrap.dedent("""\
        #!/bin/sh
        here=$(dirname "$0")
        [ "$1" = pmic_read_adc ] || { echo "error=1 error_msg=\\"Command not registered\\"" >&2; exit 255; }
        cat "$here/adc-$(cat "$here/state")"
        """))
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return script


def test_fake_vcgencmd_pmic_idle_window_and_energy(tmp_path, monkeypatch):
    script = fake_vcgencmd(tmp_path / "fake-bin")
    assert power.parse_pmic(PMIC_REST) == pytest.approx({"3V3_SYS": 0.165, "1V8_SYS": 0.18, "VDD_CORE": 0.4})
    monkeypatch.setenv("PATH", f"{script.parent}{os.pathsep}{os.environ['PATH']}")
    meter, note = power.open_meter({"source": "pmic", "interval_s": 0.05})  # found on PATH
    assert meter is not None and note is None
    meter.baseline(0.2)
    (script.parent / "state").write_text("load")
    meter.start()
    time.sleep(0.3)
    meter.stop()
    reply = meter.report(iterations=40)
    energy = reply["energy"]
    assert energy["source"] == "pmic" and energy["samples"] >= 2 and "energy_note" not in reply
    assert energy["idle_power_w"] == pytest.approx(REST_W) and energy["avg_power_w"] == pytest.approx(LOAD_W)
    assert energy["energy_mj_per_inference"] == pytest.approx(
        (LOAD_W - REST_W) * energy["window_s"] * 1e3 / 40, rel=1e-4)
    core = power.Pmic(str(script), ["VDD_CORE"])
    assert core.read() == pytest.approx(2.25)
    with pytest.raises(power.PowerUnavailable, match="no PMIC rail named VDD_GPU"):
        power.Pmic(str(script), ["VDD_GPU"])
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    assert "vcgencmd is not on this device's PATH" in (power.open_meter({"source": "pmic"})[1] or "")


def test_fake_rapl_meter_sees_the_load_step(tmp_path):
    """A counter advanced by a thread: 2 W at rest, 8 W in the window (bounds wide: the thread is scheduled)."""
    root = fake_powercap(tmp_path / "fake-powercap", {"intel-rapl:0": ("package-0", 0, 10**12)})
    with FakeRaplCounter(root / "intel-rapl:0", 2.0, 10**12) as counter:
        meter, _ = power.open_meter({"source": "rapl", "path": str(root), "interval_s": 0.1})
        assert meter is not None
        meter.baseline(0.4)
        counter.watts = 8.0
        meter.start()
        time.sleep(0.5)
        meter.stop()
    energy = meter.report(iterations=100)["energy"]
    assert 1.0 < energy["idle_power_w"] < 4.0 and 4.0 < energy["avg_power_w"] < 16.0
    assert energy["energy_mj_per_inference"] > 0 and energy["samples"] >= 2


NVML_C = r"""
#include <stdlib.h>
typedef void *nvmlDevice_t;
static unsigned long long energy_mj = 1000000;
int nvmlInit_v2(void) { return 0; }
int nvmlShutdown(void) { return 0; }
int nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device) {
    if (index > 0) return 2;  /* NVML_ERROR_INVALID_ARGUMENT */
    *device = (nvmlDevice_t)0x1;
    return 0;
}
int nvmlDeviceGetTotalEnergyConsumption(nvmlDevice_t device, unsigned long long *energy) {
    if (getenv("FAKE_NVML_NO_ENERGY")) return 3;  /* NVML_ERROR_NOT_SUPPORTED: before Volta */
    energy_mj += 250;
    *energy = energy_mj;
    return 0;
}
int nvmlDeviceGetPowerUsage(nvmlDevice_t device, unsigned int *milliwatts) { *milliwatts = 42500; return 0; }
const char *nvmlErrorString(int result) { return result == 2 ? "Invalid Argument" : "Not Supported"; }
"""


def test_fake_libnvidia_ml_energy_counter_and_power_fallback(tmp_path, monkeypatch):
    """A FAKE libnvidia-ml with NVML's documented prototypes, compiled here: the ctypes calls as NVML takes them."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip(reason="no C compiler for the fake libnvidia-ml")
    (tmp_path / "fake_nvml.c").write_text(NVML_C)
    library = tmp_path / "libnvidia-ml-fake.so"
    subprocess.run([compiler, "-shared", "-fPIC", "-o", str(library), str(tmp_path / "fake_nvml.c")], check=True,
                   timeout=60)
    gpu = power.Nvml(str(library), 0)
    assert gpu.counter is True
    first = gpu.read()
    assert gpu.read() - first == pytest.approx(0.25)  # 250 mJ a call, in joules
    gpu.close()
    monkeypatch.setenv("FAKE_NVML_NO_ENERGY", "1")
    older = power.Nvml(str(library), 0)
    assert older.counter is False and older.read() == pytest.approx(42.5)
    with pytest.raises(power.PowerUnavailable, match="nvmlDeviceGetHandleByIndex_v2 failed: Invalid Argument"):
        power.Nvml(str(library), 1)
    assert "NVML is not available here" in (power.open_meter({"source": "nvml", "path": str(tmp_path / "no.so")})[1]
                                            or "")


def _profile(tmp_path: Path, power_rules: dict[str, object]) -> Path:
    path = tmp_path / "board.yaml"
    path.write_text(yaml.safe_dump({"name": "fake-sensor-board", "connection": {"type": "local"}, "threads": 1,
                                    "power": power_rules}))
    return path


def test_bench_reads_a_fake_rapl_counter_end_to_end(tmp_path, capsys):
    root = fake_powercap(tmp_path / "fake-powercap", {"intel-rapl:0": ("package-0", 0, 10**12)})
    profile = _profile(tmp_path, {"source": "rapl", "path": str(root), "idle_s": 0.2, "interval_s": 0.1})
    with FakeRaplCounter(root / "intel-rapl:0", 5.0, 10**12):
        status = main(["bench", str(DIGITS / "digits_cnn.onnx"), "--device", str(profile), *QUICK_TIMING,
                       "--json", str(tmp_path / "r.json")])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert "mJ per inference from rapl" in " ".join(out.split())
    result = read_results(tmp_path / "r.json")[0]
    assert result.energy is not None and result.energy.source == "rapl"
    assert 2.0 < result.energy.avg_power_w < 12.0 and 2.0 < result.energy.idle_power_w < 12.0
    assert result.energy.energy_mj_per_inference >= 0 and result.energy.samples >= 2
    assert result.energy.window_s > 0
    assert json.loads((tmp_path / "r.json").read_text())["energy"] == result.energy.to_dict()


def test_bench_without_a_sensor_says_why_and_still_measures(tmp_path, capsys):
    profile = _profile(tmp_path, {"source": "rapl", "path": str(tmp_path / "fake-powercap-empty")})
    status = main(["bench", str(DIGITS / "digits_cnn.onnx"), "--device", str(profile), *QUICK_TIMING,
                   "--json", str(tmp_path / "r.json")])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert "energy: none (no RAPL zone under" in " ".join(out.split())
    data = json.loads((tmp_path / "r.json").read_text())
    assert "energy" not in data and "no RAPL zone" in data["energy_note"] and data["samples_ns"]


def test_unknown_power_source_is_a_profile_error(tmp_path, capsys):
    status = main(["bench", str(DIGITS / "digits_cnn.onnx"), "--device", str(_profile(tmp_path, {"source": "ups"})),
                   *QUICK_TIMING])
    err = capsys.readouterr().err
    assert status == ExitStatus.CONFIG and "power.source" in err and err.count("\n") == 1


def test_job_wire_format_is_unchanged_without_power():
    job = RunnerJob(backend="onnxruntime", artifact="m.onnx", inputs_npz="i.npz")
    assert "power" not in job.to_dict()
    rules = {"source": "pmic", "rails": ["VDD_CORE"], "idle_s": 1.0}
    assert RunnerJob.from_dict({**job.to_dict(), "power": rules}).power == rules
    with pytest.raises(JobError, match="names source 'ups'"):
        RunnerJob.from_dict({**job.to_dict(), "power": {"source": "ups"}})


def _result(energy: Energy | None) -> Result:
    return Result(model=ModelInfo(name="digits"), device=DeviceInfo(profile="pi"), energy=energy)


def test_gate_judges_energy_and_power_lower_is_better():
    base = _result(Energy("pmic", 3.0, 2.0, 1.0, 2.0, 5))
    worse = _result(Energy("pmic", 3.6, 2.0, 1.3, 2.0, 5))
    checks = {c.metric: c for c in compare(base, worse, GateSpec())}
    assert set(checks) == {"energy_mj_per_inference", "avg_power_w"}
    assert checks["energy_mj_per_inference"].verdict == "regression" and checks["energy_mj_per_inference"].unit == "mJ"
    assert not checks["energy_mj_per_inference"].failed  # warns by default
    strict = GateSpec.model_validate({"metrics": {"energy_mj_per_inference": {"severity": "fail"}}})
    assert [c.failed for c in compare(base, worse, strict) if c.metric == "energy_mj_per_inference"] == [True]
    assert [c.verdict for c in compare(worse, base, GateSpec())] == ["improved", "improved"]
    assert compare(_result(None), _result(None), GateSpec()) == []
    assert {c.verdict for c in compare(base, _result(None), GateSpec())} == {"missing"}


def test_result_round_trip_and_old_json_without_energy():
    result = _result(Energy("rapl", 12.5, 4.25, 0.8, 1.5, 3))
    result.energy_note = None
    again = Result.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again.energy == result.energy
    old = _result(None).to_dict()
    assert "energy" not in old and "energy_note" not in old and Result.from_dict(old).energy is None


@pytest.mark.skipif(not (REAL_RAPL.exists() and os.access(REAL_RAPL, os.R_OK)), reason="no readable RAPL here")
def test_real_rapl_counter_reads_a_plausible_power():
    meter, note = power.open_meter({"source": "rapl"})
    assert meter is not None, note
    meter.baseline(0.3)
    meter.start()
    sum(i * i for i in range(2_000_000))
    meter.stop()
    energy = meter.report(iterations=1)["energy"]
    assert 0 < energy["idle_power_w"] < 1000 and 0 < energy["avg_power_w"] < 1000
