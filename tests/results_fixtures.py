"""Real Result records for the store, results and report tests: short real benchmark runs of the bundled
digits model (onnxruntime on this CPU), plus one real failure turned into an error cell the way a sweep
records it. Computed once per test session (cached), whichever module asks first."""

from __future__ import annotations

import functools
import shutil
from pathlib import Path

import pytest

from edgebench.pipeline.bench import BenchRequest, run_bench
from edgebench.config import TimingSpec
from edgebench.errors import EdgebenchError
from edgebench.result import DeviceInfo, ModelInfo, Result, ResultError

ROOT = Path(__file__).resolve().parent.parent
DIGITS = ROOT / "edgebench" / "bundled" / "demo"
SMALL_TIMING = TimingSpec(warmup_s=0.05, warmup_iterations=2, min_iterations=20, min_duration_s=0.2,
                          max_duration_s=5)


def bench_digits(threads: int, batch: int = 1) -> Result:
    return run_bench(BenchRequest(model=DIGITS / "digits_cnn.onnx", dataset=DIGITS / "eval.npz", threads=threads,
                                  batch=batch, timing=SMALL_TIMING, name="digits-cnn"))


def failed_cell(workdir: Path) -> Result:
    """A model file that is not ONNX, benchmarked for real; its EdgebenchError becomes the cell's error."""
    broken = workdir / "broken.onnx"
    broken.write_bytes(b"this is not an onnx model")
    try:
        run_bench(BenchRequest(model=broken, timing=SMALL_TIMING, name="broken", threads=1))
    except EdgebenchError as exc:
        return Result(model=ModelInfo(name="broken", recipe="fp32", format="onnx", path=str(broken)),
                      device=DeviceInfo(profile="local-cpu"), status="error", options={"threads": 1},
                      error=ResultError(kind=exc.kind, message=str(exc)))
    raise AssertionError("a file that is not ONNX was benchmarked without an error")


@functools.lru_cache(maxsize=1)
def _cached(tmp: str) -> tuple[Result, ...]:
    return (bench_digits(1), bench_digits(2), bench_digits(1, batch=4), failed_cell(Path(tmp)))


@pytest.fixture(scope="session")
def real_results(tmp_path_factory: pytest.TempPathFactory) -> list[Result]:
    """Three measured cells (threads 1 and 2 at batch 1, threads 1 at batch 4) and one error cell."""
    return list(_cached(str(tmp_path_factory.getbasetemp())))


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")
