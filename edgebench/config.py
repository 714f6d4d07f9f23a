"""Typed configuration (device profiles, timing rules) loaded from YAML with errors that name the
file, the field and the fix."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.paths import bundled_profiles_dir

M = TypeVar("M", bound=BaseModel)

# The most runtime threads edgebench asks for anywhere (--threads, a profile, a sweep spec): far above any
# edge device's cores; the runner also refuses more than 4 threads per CPU of the device it runs on.
MAX_THREADS = 1024


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Connection(Strict):
    """How edgebench reaches the device; SSH fields fall back to ~/.ssh/config, then to OpenSSH's defaults."""

    type: Literal["local", "ssh"] = Field("local", description="local: a subprocess here; ssh: a board over SSH")
    host: str | None = Field(None, description="host name, address, or an alias from ~/.ssh/config")
    port: int | None = Field(None, ge=1, le=65535, description="default: ~/.ssh/config, else 22")
    user: str | None = Field(None, description="default: ~/.ssh/config, else the local user")
    key_file: str | None = Field(None, description="private key; omitted: ~/.ssh/config IdentityFile, ssh-agent, "
                                                   "~/.ssh/id_*")
    ssh_config: str = Field("~/.ssh/config", description="OpenSSH client config read for aliases (HostName, User, "
                                                         "Port, IdentityFile, ProxyJump, ProxyCommand)")
    known_hosts: str = Field("~/.ssh/known_hosts", description="known_hosts file used to verify the host key")
    host_key_policy: Literal["strict", "accept-new"] = Field(
        "strict", description="strict: refuse unknown or changed keys; accept-new: record an unknown key in "
                              "known_hosts (a changed key is always refused)")
    password_env: str | None = Field(None, description="name of an environment variable holding a password "
                                                       "(never the password itself)")
    connect_timeout_s: float = Field(10.0, gt=0, description="TCP connect, banner and authentication timeout")
    command_timeout_s: float = Field(900.0, gt=0, description="upper bound for one remote command (a job's own "
                                                              "timeout is used when smaller)")
    keepalive_s: float = Field(15.0, ge=0, description="SSH keepalive interval; 0 turns it off")
    retries: int = Field(2, ge=0, le=10, description="reconnect-and-rerun attempts when the connection drops "
                                                     "mid-job (back-off 1 s, 2 s, 4 s …)")

    @model_validator(mode="after")
    def _ssh_needs_host(self) -> "Connection":
        if self.type == "ssh" and not self.host:
            raise ValueError("an ssh connection needs 'host' (a name, an address or a ~/.ssh/config alias)")
        return self


class Thermal(Strict):
    """Thermal rules applied by the runner on the device right before each job (see docs/devices.md)."""

    sensor: str | None = Field(None, description="file holding a temperature in milli-degrees C (sysfs), e.g. "
                                                 "/sys/class/thermal/thermal_zone0/temp")
    max_start_c: float | None = Field(None, description="before each job, wait until the sensor reads below this")
    cooldown_timeout_s: float = Field(180.0, ge=0, description="give up waiting after this long (the job runs "
                                                               "and the result records it started hot)")
    poll_s: float = Field(2.0, gt=0, description="how often the sensor is read while waiting")
    throttle_c: float | None = Field(None, description="a reading at or above this marks the result throttled")
    min_freq_ratio: float = Field(0.9, gt=0, le=1, description="with a fixed-clock governor (performance), a CPU "
                                                               "clock after the run below this fraction of the one "
                                                               "before marks the result throttled")


class Power(Strict):
    """Where the runner reads the device's power for energy per inference (docs/devices.md, "Energy per
    inference"): an idle baseline, then the timed window."""

    source: Literal["rapl", "ina3221", "pmic", "nvml"] = Field(
        ..., description="rapl: Intel/AMD RAPL (powercap sysfs); ina3221: Jetson power monitor; pmic: Raspberry Pi 5 "
                         "(vcgencmd pmic_read_adc); nvml: NVIDIA GPU (libnvidia-ml)")
    path: str | None = Field(None, description="rapl: the powercap folder (/sys/class/powercap); ina3221: the monitor's "
                                               "hwmon or iio folder (found under /sys/bus/i2c/drivers/ina3221*); "
                                               "pmic: the vcgencmd program; nvml: the library (libnvidia-ml.so.1)")
    rails: list[str] = Field(default_factory=list, description="what to sum: RAPL zone names (package-0, dram, psys), "
                                                               "INA3221 rail labels (VDD_IN), PMIC rails (VDD_CORE); "
                                                               "empty: the packages, the input rail, every PMIC rail")
    index: int = Field(0, ge=0, description="nvml: the GPU's index")
    idle_s: float = Field(0.5, ge=0.1, le=60, description="seconds of idle sampled right before the timed loop")
    interval_s: float | None = Field(None, gt=0, le=10, description="seconds between reads in the window; default: "
                                                                    "1 (counters), 0.5 (pmic), 0.1 (others)")


class TimingSpec(Strict):
    warmup_iterations: int = Field(5, ge=0)
    warmup_s: float = Field(0.5, ge=0)
    min_iterations: int = Field(50, ge=1)
    min_duration_s: float = Field(1.0, ge=0)
    max_duration_s: float = Field(60.0, gt=0)
    cv_threshold: float = Field(0.1, gt=0, description="a robust CV (1.4826·MAD/median) above this marks the result cv_ok: false")

    @model_validator(mode="after")
    def _max_covers_min(self) -> "TimingSpec":
        if self.max_duration_s < self.min_duration_s:
            raise ValueError(f"max_duration_s ({self.max_duration_s}) is below min_duration_s "
                             f"({self.min_duration_s})")
        return self


def _known_runtimes() -> list[str]:
    """The runner backends of the registered formats (imported when a profile is read, not with this module)."""
    from edgebench.formats import runtimes

    return runtimes()


def _runtimes_schema(schema: dict[str, Any]) -> None:
    """The JSON schema of ``runtimes`` lists the registered formats' runtimes."""
    schema["items"]["enum"] = _known_runtimes()


class DeviceProfile(Strict):
    """One device: how to reach it, what runs there, and the rules for measuring on it."""

    name: str = Field(..., description="the name used with --device")
    description: str = Field("", description="free text shown by `edgebench devices list`")
    connection: Connection = Field(Connection(), description="how to reach the device")
    python: str | None = Field(None, description="interpreter on the device (e.g. a venv's bin/python); local "
                                                 "default: this one, ssh default: python3")
    workdir: str = Field("~/.cache/edgebench", description="device folder for pushed files (blobs/, runner/, jobs/)")
    cleanup: Literal["job", "keep"] = Field("job", description="job: remove each job's folder on the device when "
                                                               "it ends; keep: leave it for debugging. Pushed "
                                                               "models and runners are always kept as a cache")
    runtimes: list[str] = Field(
        ["onnxruntime"], description="runtimes installed on the device (checked by `edgebench devices check`)",
        json_schema_extra=_runtimes_schema)
    accelerator: Literal["cpu", "gpu", "npu"] = Field("cpu", description="the device string passed to the runtime")
    threads: int = Field(0, ge=0, le=MAX_THREADS, description="0: the runtime's default")
    thermal: Thermal = Field(Thermal(), description="cool-down and throttling rules")
    cpus: list[int] | None = Field(None, min_length=1, description="pin the runner to these CPUs (e.g. [4, 5, 6, 7], "
                                                                   "the big cores); none: as the OS starts it")
    power: Power | None = Field(None, description="the power source read for energy per inference (none: no energy)")
    env: dict[str, str] = Field(default_factory=dict, description="environment for the runner (no secrets)")

    @field_validator("cpus")
    @classmethod
    def _cpus_distinct(cls, cpus: list[int] | None) -> list[int] | None:
        return check_cpus(cpus)

    @field_validator("runtimes")
    @classmethod
    def _runtimes_known(cls, runtimes: list[str]) -> list[str]:
        known = _known_runtimes()
        unknown = [r for r in runtimes if r not in known]
        if unknown:
            raise ValueError(f"unknown runtime {unknown[0]!r}: use one of {', '.join(known)}")
        return runtimes


def check_cpus(cpus: list[int] | None) -> list[int] | None:
    """CPU numbers for affinity: distinct, 0 or more (whether the device has them, its runner checks)."""
    if cpus is not None and (not cpus or min(cpus) < 0 or len(set(cpus)) < len(cpus)):
        raise ValueError(f"cpus {cpus}: list distinct CPU numbers, 0 or more")
    return cpus


def format_validation_error(source: str, exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "(top level)"
    if err["type"] == "extra_forbidden":
        return f"{source}: unknown field {where!r}: remove it or fix its spelling"
    if err["type"] == "missing":
        return f"{source}: field {where!r} is required: add it"
    got = err.get("input")
    got_text = f" (got {got!r})" if not isinstance(got, (dict, list)) else ""
    more = f" (+{len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return f"{source}: field {where!r}: {err['msg']}{got_text}: fix the value{more}"


def load_yaml(path: Path, what: str) -> Any:
    if path.is_dir():
        raise EdgebenchError(f"{what} {path} is a directory: pass the YAML file in it", ExitStatus.CONFIG)
    if not path.is_file():
        raise EdgebenchError(f"{what} not found: {path} — check the path", ExitStatus.NOT_FOUND)
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise EdgebenchError(f"{path}: not a UTF-8 text file (byte {exc.start}: {exc.reason}): save the {what} as "
                             "UTF-8 YAML", ExitStatus.CONFIG) from None
    except RecursionError:
        raise EdgebenchError(f"{path}: YAML nested too deeply: fix the {what}", ExitStatus.CONFIG) from None
    except OSError as exc:
        raise EdgebenchError(f"cannot read {what} {path} ({exc.strerror}): check its permissions",
                             ExitStatus.CONFIG) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        problem = " ".join(str(getattr(exc, "problem", None) or exc).split())
        raise EdgebenchError(f"{path}: invalid YAML{where} ({problem}): fix the syntax", ExitStatus.CONFIG) from None


def parse_model(model: type[M], data: Any, source: str) -> M:
    if not isinstance(data, dict):
        raise EdgebenchError(f"{source}: expected a mapping of fields, got {type(data).__name__}",
                             ExitStatus.CONFIG)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise EdgebenchError(format_validation_error(source, exc), ExitStatus.CONFIG) from None


def user_profiles_dir() -> Path:
    """The per-user profile folder (``~/.config/edgebench/profiles`` on Linux, platformdirs elsewhere)."""
    from platformdirs import user_config_dir

    return Path(user_config_dir("edgebench", appauthor=False)) / "profiles"


@dataclass(frozen=True)
class ProfileDir:
    """A folder profile names are looked up in, and where its place in the lookup comes from."""

    source: str  # "EDGEBENCH_PROFILES", "./device_profiles", "user config dir" or "bundled"
    path: Path

    def profiles(self) -> list[Path]:
        return sorted(self.path.glob("*.y*ml")) if self.path.is_dir() else []


@dataclass(frozen=True)
class FoundProfile:
    """A profile name, the file it resolves to, and the folders further down the lookup whose file of the same
    name it overrides."""

    name: str
    path: Path
    source: str
    overrides: list[ProfileDir]
    twins: list[Path] = field(default_factory=list)  # files of the same name in the same folder (x.yaml, x.yml)

    @property
    def ambiguity(self) -> str | None:
        """Why the name is ambiguous (two files of it in one folder), None when it is not."""
        if not self.twins:
            return None
        return (f"two profiles named {self.name!r} in {self.path.parent}: "
                f"{', '.join(p.name for p in [self.path, *self.twins])}: remove or rename one")


def profile_dirs() -> list[ProfileDir]:
    """Where profile names are looked up, first match wins: ``EDGEBENCH_PROFILES`` (folders separated by
    os.pathsep), ``./device_profiles``, the per-user folder, then the profiles bundled with edgebench."""
    dirs = [ProfileDir("EDGEBENCH_PROFILES", Path(d).expanduser())
            for d in os.environ.get("EDGEBENCH_PROFILES", "").split(os.pathsep) if d]
    dirs += [ProfileDir("./device_profiles", Path.cwd() / "device_profiles"),
             ProfileDir("user config dir", user_profiles_dir()), ProfileDir("bundled", bundled_profiles_dir())]
    unique: list[ProfileDir] = []
    for d in dirs:
        if d.path.resolve() not in [u.path.resolve() for u in unique]:
            unique.append(d)
    return unique


def find_profiles() -> list[FoundProfile]:
    """Every profile name found, sorted, with the file that wins and the ones it overrides."""
    by_name: dict[str, list[tuple[ProfileDir, Path]]] = {}
    for d in profile_dirs():
        for f in d.profiles():
            by_name.setdefault(f.stem, []).append((d, f))
    return [FoundProfile(name, hits[0][1], hits[0][0].source, [d for d, _ in hits[1:] if d != hits[0][0]],
                         [f for d, f in hits[1:] if d == hits[0][0]])
            for name, hits in sorted(by_name.items())]


def known_profiles() -> dict[str, Path]:
    """Each profile name and the file it resolves to."""
    return {p.name: p.path for p in find_profiles()}


def load_profile(name_or_path: str, base_dir: Path | None = None) -> DeviceProfile:
    """A profile by name (``local-cpu``) or by path to its YAML file; a relative path is relative to
    ``base_dir`` (a sweep spec's folder, as its model paths are), default the working directory."""
    looks_like_path = name_or_path.endswith((".yaml", ".yml")) or os.sep in name_or_path or "/" in name_or_path
    if looks_like_path:
        path = Path(name_or_path).expanduser()
        path = base_dir / path if base_dir is not None else path
    else:
        known = {p.name: p for p in find_profiles()}
        if name_or_path not in known:
            raise EdgebenchError(f"unknown device {name_or_path!r}: known devices are "
                                 f"{', '.join(known) or 'none'}; or pass a profile YAML path "
                                 "('edgebench devices list' shows the folders searched)", ExitStatus.CONFIG)
        ambiguity = known[name_or_path].ambiguity
        if ambiguity:
            raise EdgebenchError(f"device {name_or_path!r} is ambiguous: {ambiguity}", ExitStatus.CONFIG)
        path = known[name_or_path].path
    return parse_model(DeviceProfile, load_yaml(path, "device profile"), str(path))


class LayerSpec(Strict):
    """Which layers a recipe's prune/cluster steps touch (as --include / --exclude / --all-layers)."""

    include: list[str] = Field(default_factory=list, description="only layers whose node or weight name matches")
    exclude: list[str] = Field(default_factory=list, description="leave layers whose node or weight name matches")
    all_layers: bool = Field(False, description="also the first and last layers when they hold few weights")


class SweepModel(Strict):
    name: str = Field("", description="the model's name in results and reports; default (empty): the file's name "
                      "as bench names it (the stem, or the folder of a generic stem like model.onnx)")
    path: str = Field(..., description="the source model (.onnx, or a Keras, SavedModel or PyTorch model exported "
                      "to ONNX first: docs/sources.md), relative to the spec file")
    dataset: str | None = Field(None, description=".npz with one array per input (+ labels) for accuracy")
    calibration: str | None = Field(None, description=".npz of calibration inputs for int8 recipes")
    finetune: str | None = Field(None, description="labelled .npz (inputs + integer labels) the recipes with a "
                                 "finetune step train on (as --finetune)")
    teacher: str | None = Field(None, description="teacher ONNX of the recipes' distill step (default: the model)")
    train_config: str | None = Field(None, description="YAML of fine-tuning settings (as --train-config)")
    shapes: dict[str, list[int]] = Field(default_factory=dict, description="sizes for dynamic dimensions, input → "
                                         "shape (as --shape; conversions take them too); default: from the dataset")
    input_ranges: dict[str, tuple[float, float]] = Field(default_factory=dict, description="random-input ranges "
                                                         "[low, high) (as --input-range)")
    input_values: dict[str, float] = Field(default_factory=dict, description="fixed random-input values "
                                           "(as --input-value)")
    output: str | None = Field(None, description="output scored for top-1 (default: the first)")
    layers: LayerSpec = Field(default_factory=LayerSpec, description="layers the recipes' prune/cluster steps touch")

    @model_validator(mode="after")
    def _inputs_make_sense(self) -> "SweepModel":
        from edgebench.data.inputs import MAX_DIM

        for name, dims in self.shapes.items():
            if not dims or any(not 0 < d <= MAX_DIM for d in dims):
                raise ValueError(f"shapes.{name} must list sizes above 0 and below 2^31 (e.g. [1, 3, 224, 224]), "
                                 f"got {dims}")
        for name, (low, high) in self.input_ranges.items():
            if not low < high or not math.isfinite(high - low):
                raise ValueError(f"input_ranges.{name} must be [low, high) with finite low < high, got "
                                 f"[{low:g}, {high:g}]")
        for name, value in self.input_values.items():
            if not math.isfinite(value):
                raise ValueError(f"input_values.{name} must be a finite number, got {value}")
        return self


CELL_AXES = ("model", "recipe", "format", "device", "threads", "batch")  # what include/exclude filters match


class SweepSpec(Strict):
    name: str
    models: list[SweepModel] = Field(..., min_length=1)
    recipes: list[str] = Field(["fp32"], min_length=1, description="compression recipes, e.g. fp32, int8, prune:0.5+int8")
    formats: list[str] = Field(["onnx"], min_length=1, description="onnx, openvino, tflite, tensorrt")
    devices: list[str] = Field(["local-cpu"], min_length=1, description="profile names or profile YAML paths")
    options: dict[Literal["threads", "batch"], list[int]] = Field(
        default_factory=dict, description="option axes, e.g. {threads: [1, 4], batch: [1, 8]}")
    timing: TimingSpec = TimingSpec()
    include: list[dict[str, str]] = Field(default_factory=list, description="keep only cells matching one of these "
                                          "(axis → glob), e.g. [{format: tflite, device: rpi*}]")
    exclude: list[dict[str, str]] = Field(default_factory=list, description="drop cells matching one of these")
    cell_timeout_s: float = Field(900.0, gt=0, description="a cell running longer is stopped and recorded failed")
    mode: Literal["latency", "throughput"] = Field("latency", description="throughput: also requests in flight at "
                                                   "once after each cell's single-stream loop (inferences/s)")
    streams: int | None = Field(None, ge=1, description="throughput mode: model instances (default: the runtime's)")
    requests: int | None = Field(None, ge=1, description="throughput mode: requests in flight (default: the runtime's)")
    profile: bool = Field(False, description="also profile each cell per layer with its runtime's own profiler, "
                          "in a pass after the timed loop (Result.profile)")

    @field_validator("options")
    @classmethod
    def _option_values(cls, options: dict[str, list[int]]) -> dict[str, list[int]]:
        """Each axis lists distinct values in range: threads 0 (the runtime's default) to MAX_THREADS, batch ≥ 1."""
        low = {"threads": 0, "batch": 1}
        for axis, values in options.items():
            bad = [v for v in values if v < low[axis] or (axis == "threads" and v > MAX_THREADS)]
            want = f"0 (the runtime's default) to {MAX_THREADS}" if axis == "threads" else "1 or more"
            if bad:
                raise ValueError(f"options.{axis} {values}: {bad[0]} is outside {want}")
            if not values or len(set(values)) < len(values):
                raise ValueError(f"options.{axis} {values}: list one or more distinct values")
        return options

    @field_validator("include", "exclude")
    @classmethod
    def _filter_axes(cls, rules: list[dict[str, str]]) -> list[dict[str, str]]:
        """A filter naming an axis no cell has would silently match nothing (or everything)."""
        for rule in rules:
            unknown = sorted(set(rule) - set(CELL_AXES))
            if unknown or not rule:
                raise ValueError(f"filter {rule} names {'unknown axis ' + repr(unknown[0]) if unknown else 'no axis'}"
                                 f" (axes: {', '.join(CELL_AXES)})")
        return rules


# --- Gate rules ---------------------------------------------------------------------------------------

GATE_METRICS: dict[str, dict[str, Any]] = {
    # metric: its defaults. Latency: relative threshold AND significance AND the CI beyond the threshold.
    # Tail percentiles warn by default: between two single short runs on a shared machine they moved by
    # more than 5% in ~10% of A/A pairs (docs/ci.md); the paired `ab` command or longer runs tame them.
    "latency_p50": {"threshold": 0.05, "alpha": 0.002, "severity": "fail"},
    "latency_p90": {"threshold": 0.05, "alpha": 0.002, "severity": "warn"},
    "latency_p99": {"threshold": 0.05, "alpha": 0.002, "severity": "warn"},
    "memory_peak": {"threshold": 0.10, "severity": "fail"},
    "accuracy_top1": {"max_drop_points": 0.5, "severity": "fail"},
    "agreement_top1": {"max_drop_points": 0.5, "severity": "fail"},
    "size": {"threshold": 0.01, "severity": "fail"},
    # From the device's power sensor (a profile's power:): lower is better; a sensor's noise is not latency's,
    # so a change warns unless the rules make it fail.
    "energy_mj_per_inference": {"threshold": 0.10, "severity": "warn"},
    "avg_power_w": {"threshold": 0.10, "severity": "warn"},
}


class MetricRule(Strict):
    """One metric's rule; unset fields inherit (defaults ← ``metrics`` ← ``devices.<profile>``)."""

    enabled: bool | None = None
    severity: Literal["fail", "warn"] | None = Field(None, description="warn: report a regression, exit 0")
    threshold: float | None = Field(None, gt=0, description="relative change that counts, e.g. 0.05 = 5%")
    alpha: float | None = Field(None, gt=0, lt=1, description="Mann–Whitney U significance level (latency)")
    max_drop_points: float | None = Field(None, ge=0, description="accuracy drop in points (0–100 scale)")


class ResolvedRule(Strict):
    metric: str
    enabled: bool = True
    severity: Literal["fail", "warn"] = "fail"
    threshold: float | None = None
    alpha: float | None = None
    max_drop_points: float | None = None


class GateSpec(Strict):
    confidence: float = Field(0.95, gt=0, lt=1, description="level of the bootstrap CI of the ratio")
    resamples: int = Field(1000, ge=100, le=20000, description="bootstrap resamples")
    seed: int = 0
    inconclusive: Literal["warn", "fail"] | None = Field(
        None, description="a change the runs cannot resolve: warn, or fail; unset: fail in CI ($CI), else warn "
        "(resolved by the command with for_ci)")
    missing: Literal["warn", "fail"] = Field("warn", description="a baseline cell absent from the candidate")
    metrics: dict[str, MetricRule] = Field(default_factory=dict)
    devices: dict[str, dict[str, MetricRule]] = Field(default_factory=dict, description="per device profile")

    def for_ci(self, ci: bool) -> "GateSpec":
        """These rules with ``inconclusive`` decided: as the rules set it, else ``fail`` in CI and ``warn``
        elsewhere (a gate that cannot decide must not pass silently where nobody reads its warnings)."""
        if self.inconclusive is not None:
            return self
        return self.model_copy(update={"inconclusive": "fail" if ci else "warn"})

    def rule(self, metric: str, device: str | None) -> ResolvedRule:
        merged: dict[str, Any] = {"enabled": True, **GATE_METRICS[metric]}
        for layer in (self.metrics.get(metric), self.devices.get(device or "", {}).get(metric)):
            if layer is not None:
                merged.update(layer.model_dump(exclude_none=True))
        return ResolvedRule(metric=metric, **merged)


def load_gate_spec(path: Path | None) -> GateSpec:
    """Rules from YAML (None: the defaults). A metric name nobody knows is refused by name, since a typo
    would otherwise silently leave the intended rule at its default."""
    if path is None:
        return GateSpec()
    return gate_spec(load_yaml(path, "gate rules") or {}, str(path))


def gate_spec(data: Any, source: str) -> GateSpec:
    """Rules from a mapping (a parsed YAML file, or the Python API's ``rules=``); ``source`` names it in errors."""
    if isinstance(data, dict):
        sections = {"metrics": data.get("metrics")}
        if isinstance(data.get("devices"), dict):
            sections.update({f"devices.{d}": m for d, m in data["devices"].items()})
        for where, metrics in sections.items():
            unknown = [n for n in metrics if n not in GATE_METRICS] if isinstance(metrics, dict) else []
            if unknown:
                raise EdgebenchError(f"{source}: unknown metric {unknown[0]!r} in {where}: use one of "
                                     f"{', '.join(GATE_METRICS)}", ExitStatus.USAGE)
    return parse_model(GateSpec, data, source)
