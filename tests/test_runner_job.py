"""The runner job schema (edgebench/runner/job.py) and the backend lifecycle, in process."""

from __future__ import annotations

import json
from typing import Any

import pytest

from edgebench.runner.backends.base import BadOption, BaseBackend, RuntimeMissing
from edgebench.runner.job import INPUT_ROTATION, SCHEMA_VERSION, JobError, RunnerJob
from edgebench.runner.timing import TimingRules

TIMING: dict[str, Any] = {"warmup_iterations": 2, "warmup_s": 0.01, "min_iterations": 30, "min_duration_s": 0.05,
          "max_duration_s": 5.0}
# job.json as the host wrote it before the schema was a class: the wire format SSH boards and fixtures use
WIRE = {"schema_version": 1, "backend": "openvino", "device": "CPU", "device_name": "local-cpu", "threads": 2,
        "backend_options": {"precision": "fp16"}, "timing": TIMING, "batch": 4, "per_sample_inputs": ["sr"],
        "rotation": 64, "capture_outputs": True, "thermal": {"sensor": None, "max_start_c": None},
        "artifact": "/w/blobs/ab/model.xml", "artifact_weights": "/w/blobs/cd/model.bin",
        "inputs_npz": "/w/blobs/ef/inputs.npz", "outputs_npz": "/w/jobs/1/outputs.npz"}


def test_the_wire_format_round_trips_unchanged() -> None:
    job = RunnerJob.from_dict(json.loads(json.dumps(WIRE)))
    assert job.timing == TimingRules(**TIMING) and job.per_sample_inputs == ("sr",) and job.rotation == INPUT_ROTATION
    assert job.to_dict() == WIRE
    assert RunnerJob.from_dict(job.to_dict()) == job


def test_the_host_job_leaves_unset_fields_out_until_the_transport_places_the_files() -> None:
    job = RunnerJob(backend="onnxruntime", rotation=INPUT_ROTATION)
    wire = job.to_dict()
    assert wire["schema_version"] == SCHEMA_VERSION and wire["rotation"] == 64
    assert "artifact_weights" not in wire and "outputs_npz" not in wire
    with pytest.raises(JobError, match="^the job names no artifact$"):
        RunnerJob.from_dict(wire)
    placed = job.placed({"artifact": "/w/m.onnx", "inputs_npz": "/w/i.npz"}, "/w/o.npz")
    assert RunnerJob.from_dict(placed.to_dict()) == placed and placed.outputs_npz is None  # captures nothing


def test_a_minimal_job_takes_the_runner_defaults() -> None:
    job = RunnerJob.from_dict({"schema_version": 1, "backend": "tflite", "artifact": "m.tflite", "inputs_npz": "i.npz",
                               "threads": None, "batch": None})
    assert (job.device, job.threads, job.batch, job.rotation, job.capture_outputs) == ("CPU", 0, 1, None, False)
    assert job.timing == TimingRules() and job.backend_options == {} and job.thermal == {}


@pytest.mark.parametrize("change, message", [
    ({"schema_version": 99}, "job schema_version 99 is not 1: push the runner that matches this edgebench"),
    ({"schema_version": None}, "job schema_version None is not 1"),
    ({"warmup": 3}, "unknown job field 'warmup' for this runner"),
    ({"backend": ""}, "the job names no backend"),
    ({"threads": "4"}, "job field 'threads' is '4', not an integer"),
    ({"batch": True}, "job field 'batch' is True, not an integer"),
    ({"backend_options": ["x"]}, "job field 'backend_options' is ['x'], not an object"),
    ({"rotation": 0}, "job field 'rotation' is 0: at least 1 distinct feed"),
    ({"outputs_npz": None}, "the job captures outputs but names no outputs_npz"),
])
def test_a_bad_job_is_refused_in_one_line(change: dict[str, Any], message: str) -> None:
    with pytest.raises(JobError) as err:
        RunnerJob.from_dict({**WIRE, **change})
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_a_job_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(JobError, match="not a JSON object"):
        RunnerJob.from_dict([WIRE])


class _Toy(BaseBackend):
    runtime_name = "toy"
    pip_package = "toy-runtime"
    option_types = {"level": int}

    def import_runtime(self) -> None:
        import json as runtime

        self.runtime = runtime

    def check_options(self) -> None:
        if self.backend_options.get("level", 1) not in (1, 2):
            raise BadOption(f"level {self.backend_options['level']!r} is not 1 or 2")

    def load_impl(self, artifact: str) -> None:
        self.loaded = artifact


class _Absent(_Toy):
    def import_runtime(self) -> None:
        import edgebench_no_such_runtime  # type: ignore[import-not-found]  # noqa: F401


def _backend(cls: type[BaseBackend], **options: Any) -> BaseBackend:
    return cls(RunnerJob(backend="toy", device_name="board", backend_options=options))


def test_open_imports_the_runtime_then_checks_the_options_once() -> None:
    backend = _backend(_Toy, level=2)
    with pytest.raises(RuntimeError, match="load\\(\\) before open\\(\\)"):
        backend.load("m")
    backend.open()
    backend.load("m")
    assert getattr(backend, "loaded") == "m"


def test_open_refuses_an_unknown_option_and_a_bad_value() -> None:
    with pytest.raises(BadOption, match=r"^toy takes no colour, speed \(it takes level\)$"):
        _backend(_Toy, speed=1, colour="red").open()
    with pytest.raises(BadOption, match="^level 3 is not 1 or 2$"):
        _backend(_Toy, level=3).open()


def test_open_names_what_to_install_when_the_runtime_is_absent() -> None:
    with pytest.raises(RuntimeMissing, match=r"^toy is not installed on board \(.*\): pip install toy-runtime$"):
        _backend(_Absent, speed=1).open()  # the runtime first: an option is judged by the runtime that reads it
