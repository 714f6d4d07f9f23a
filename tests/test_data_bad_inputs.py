"""Bad datasets and calibration sets are refused before anything runs (exit 5, one line naming the array and
the fix), in every command that takes them: labels that are no class indices of the model's scores, NaN or
Inf inputs, files that are no .npz, object arrays (never unpickled) and zip bombs (shapes read from the .npy
headers, nothing inflated)."""

from __future__ import annotations

import io
import pickle
import resource
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.lib import format as npy

from edgebench.cli import main
from edgebench.data.inputs import plan_dataset
from edgebench.data.npz import read_headers
from edgebench.data.source import load_onnx_info
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.paths import demo_dir
from tests.conftest import QUICK_TIMING

MODEL = demo_dir() / "digits_cnn.onnx"  # input 'input' [batch, 1, 8, 8] float32, output 'logits' [batch, 10]
SAMPLES = 12


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("edgebench: error: ") and "Traceback" not in err, err
    return err


def images(n: int = SAMPLES) -> np.ndarray:
    return np.random.default_rng(0).random((n, 1, 8, 8), dtype=np.float32)


def save(path: Path, **arrays: Any) -> Path:
    np.savez(path, **arrays)
    return path


def spec(tmp_path: Path, recipes: list[str], **model: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump({
        "name": "bad-data", "models": [{"name": "digits", "path": str(MODEL), **model}], "recipes": recipes,
        "formats": ["onnx"], "devices": ["local-cpu"], "options": {"threads": [1]},
        "timing": {"warmup_s": 0.01, "warmup_iterations": 2, "min_iterations": 20, "min_duration_s": 0.05,
                   "max_duration_s": 5}}))
    return path


def artifacts(cache: Path) -> list[Path]:
    return sorted(cache.rglob("meta.json")) if cache.exists() else []


# --- labels: one integer class index per sample, within the classes of the scored output ------------------

BAD_LABELS = [
    (np.full(SAMPLES, 10), "label 10 of sample 0 is outside the 10 classes of output 'logits' (0 to 9"),
    (np.r_[np.zeros(SAMPLES - 1, np.int64), 1000], "label 1000 of sample 11 is outside the 10 classes"),
    (np.r_[3, -1, np.zeros(SAMPLES - 2, np.int64)], "label -1 of sample 1 is negative"),
    (np.full(SAMPLES, 0.5, np.float32), "labels are float32, not integer class indices: save them as integers"),
    (np.zeros((SAMPLES, 10), np.int64), "labels have the shape [12, 10]: save one integer class index per sample"),
]


@pytest.mark.parametrize("labels,message", BAD_LABELS, ids=["10", "1000", "negative", "float", "2-D"])
def test_labels_that_name_no_class_are_refused_before_anything_runs(tmp_path, capsys, labels, message):
    data = save(tmp_path / "eval.npz", inputs=images(), labels=labels)
    cache = tmp_path / "cache"
    runs = {
        "bench": ["bench", str(MODEL), "--dataset", str(data), *QUICK_TIMING],
        "bench --format": ["bench", str(MODEL), "--format", "onnx", "--precision", "fp16", "--dataset", str(data),
                           "--cache-dir", str(cache), *QUICK_TIMING],
        "compare": ["compare", str(MODEL), "--formats", "onnx", "--dataset", str(data), "--cache-dir", str(cache)],
        "sweep": ["sweep", str(spec(tmp_path, ["fp16"], dataset=str(data))), "--store", str(tmp_path / "r.db"),
                  "--cache-dir", str(cache)],
    }
    for argv in runs.values():
        assert main(argv) == ExitStatus.DATA_MISMATCH, argv
        err = one_line_error(capsys)
        assert message in err and str(data.name) in err, err
    assert artifacts(cache) == []  # nothing was converted either


def test_labels_past_a_class_count_only_the_run_shows_are_refused_after_it(tmp_path, capsys):
    """A model whose class axis is dynamic says its class count only in its outputs: checked on them."""
    import onnx
    from onnx import TensorProto, helper

    scores = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["batch", "classes"]) for n in ("x", "y")]
    model = tmp_path / "softmax.onnx"
    graph = helper.make_graph([helper.make_node("Softmax", ["x"], ["y"], axis=1)], "g", scores[:1], scores[1:])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), model)
    x = np.random.default_rng(0).random((6, 5), dtype=np.float32)
    assert main(["bench", str(model), "--dataset", str(save(tmp_path / "d.npz", x=x, labels=np.arange(6))),
                 *QUICK_TIMING]) == ExitStatus.DATA_MISMATCH
    assert "dataset: label 5 is past the 5 class scores of output 'y' (classes 0 to 4)" in one_line_error(capsys)
    assert main(["bench", str(model), "--dataset", str(save(tmp_path / "d.npz", x=x, labels=np.arange(6) % 5)),
                 *QUICK_TIMING]) == ExitStatus.OK


def test_labels_of_the_right_kind_still_score_top1(tmp_path, capsys):
    data = save(tmp_path / "eval.npz", inputs=images(), labels=np.arange(SAMPLES, dtype=np.uint8) % 10)
    out = tmp_path / "r.json"
    assert main(["bench", str(MODEL), "--dataset", str(data), "--json", str(out), *QUICK_TIMING]) == 0
    assert "top1" in out.read_text()


# --- NaN and Inf: meaningless accuracy, broken calibration --------------------------------------------------

def with_nonfinite(value: float, every: bool = False) -> np.ndarray:
    x = images()
    if every:
        x[:] = value
    else:
        x[3, 0, 4, 4] = value
    return x


@pytest.mark.parametrize("fmt", ["onnx", "openvino", "tflite"])
def test_calibration_with_nan_or_inf_is_refused_before_converting(tmp_path, capsys, fmt):
    cache = tmp_path / "cache"
    for name, x in (("nan", with_nonfinite(np.nan)), ("inf", with_nonfinite(-np.inf)),
                    ("all-nan", with_nonfinite(np.nan, every=True))):
        calib = save(tmp_path / f"{name}.npz", inputs=x)
        assert main(["convert", str(MODEL), "--to", fmt, "--precision", "int8", "--calibration", str(calib),
                     "--cache-dir", str(cache)]) == ExitStatus.DATA_MISMATCH
        err = one_line_error(capsys)
        assert f"calibration set {calib}: array 'input' holds NaN or Inf values" in err
        assert "replace or drop those samples" in err
    assert artifacts(cache) == []


def test_calibration_with_nan_is_refused_by_compress_bench_compare_and_sweep(tmp_path, capsys):
    calib = save(tmp_path / "calib.npz", inputs=with_nonfinite(np.nan))
    cache = tmp_path / "cache"
    for argv in (["compress", str(MODEL), "-r", "prune:0.5+int8", "--calibration", str(calib), "--to", "onnx"],
                 ["bench", str(MODEL), "--format", "onnx", "--precision", "int8", "--calibration", str(calib),
                  *QUICK_TIMING],
                 ["compare", str(MODEL), "--formats", "openvino", "--precision", "int8", "--calibration", str(calib)],
                 ["sweep", str(spec(tmp_path, ["int8"], calibration=str(calib))), "--store", str(tmp_path / "r.db")]):
        assert main([*argv, "--cache-dir", str(cache)]) == ExitStatus.DATA_MISMATCH, argv
        assert "calibration set" in (err := one_line_error(capsys)) and "NaN or Inf" in err, err
    assert artifacts(cache) == []


@pytest.mark.parametrize("value,every,count", [(np.nan, True, "12 of 12 samples (every sample)"),
                                               (np.inf, False, "1 of 12 samples, first sample 3")])
def test_eval_data_with_nan_or_inf_is_refused(tmp_path, capsys, value, every, count):
    data = save(tmp_path / "eval.npz", inputs=with_nonfinite(value, every), labels=np.zeros(SAMPLES, np.int64))
    for argv in (["bench", str(MODEL), "--dataset", str(data), *QUICK_TIMING],
                 ["compare", str(MODEL), "--formats", "onnx", "--dataset", str(data)],
                 ["sweep", str(spec(tmp_path, ["fp32"], dataset=str(data))), "--store", str(tmp_path / "r.db")]):
        assert main([*argv, "--cache-dir", str(tmp_path / "cache")]) == ExitStatus.DATA_MISMATCH, argv
        err = one_line_error(capsys)
        assert f"dataset {data}: array 'input' holds NaN or Inf values in {count}" in err, err


# --- files that are not what they claim ----------------------------------------------------------------------

class Touch:
    """Unpickling this creates ``path``: proof, if the file appears, that edgebench unpickled data."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (Path.touch, (self.path,))


def npy_bytes(header: dict[str, Any], body: bytes = b"") -> bytes:
    buf = io.BytesIO()
    npy.write_array_header_1_0(buf, header)
    return buf.getvalue() + body


def test_files_that_are_no_plain_npz_are_named_for_what_they_are(tmp_path, capsys):
    text = tmp_path / "text.npz"
    text.write_text("hello")
    single = tmp_path / "single.npz"
    with open(single, "wb") as f:
        np.save(f, images())
    pickled = tmp_path / "pickled.npz"
    with zipfile.ZipFile(pickled, "w") as z:
        z.writestr("inputs.npy", npy_bytes({"descr": "|O", "fortran_order": False, "shape": (1,)},
                                           pickle.dumps(np.array([Touch(tmp_path / "pwned")], dtype=object))))
    cut = tmp_path / "cut.npz"
    cut.write_bytes(save(tmp_path / "whole.npz", inputs=images()).read_bytes()[:3000])
    short = tmp_path / "short.npz"  # the header promises 12 samples, the data holds 2
    with zipfile.ZipFile(short, "w") as z:
        z.writestr("inputs.npy", npy_bytes({"descr": "<f4", "fortran_order": False, "shape": (SAMPLES, 1, 8, 8)},
                                           images(2).tobytes()))
    huge = tmp_path / "huge.npz"  # 2**44 samples declared (16 PB): refused from the header, nothing allocated
    with zipfile.ZipFile(huge, "w") as z:
        z.writestr("inputs.npy", npy_bytes({"descr": "<f4", "fortran_order": False, "shape": (2**44, 1, 8, 8)}))
    stray = tmp_path / "stray.npz"
    with zipfile.ZipFile(stray, "w") as z:
        z.writestr("inputs.npy", npy_bytes({"descr": "<f4", "fortran_order": False, "shape": (1, 1, 8, 8)},
                                           bytes(256)))
        z.writestr("notes.txt", "hello")
    cases = [(text, "is not an .npz archive (no zip inside its 5 bytes): save it with numpy.savez("),
             (single, "is a single .npy array, not an .npz archive: save it with numpy.savez("),
             (pickled, "holds object arrays ('inputs' is object, which would need unpickling"),
             (cut, "is a damaged .npz (cut short"),
             (short, "array 'input' is cut short (EOF"),
             (huge, "declares 4503.6 TB of arrays ('input': [17592186044416, 1, 8, 8] float32), more than the 1024 "
                    "MiB a set may hold"),
             (stray, "holds 'notes.txt', which is not a .npy array")]
    for path, message in cases:
        for argv in (["bench", str(MODEL), "--dataset", str(path), *QUICK_TIMING],
                     ["convert", str(MODEL), "--to", "onnx", "--precision", "int8", "--calibration", str(path),
                      "--cache-dir", str(tmp_path / "cache")]):
            assert main(argv) == ExitStatus.DATA_MISMATCH, argv
            err = one_line_error(capsys)
            assert message in err and str(path) in err, err
    assert not (tmp_path / "pwned").exists()


# --- zip bombs: shapes come from the headers, nothing is inflated -----------------------------------------

def write_bomb(path: Path, key: str, shape: tuple[int, ...]) -> int:
    """An .npz whose one float32 array of ``shape`` is all zeros, deflated to about 1/1000 of its size: one
    MiB of zeros deflated once and repeated (each copy a self-contained run of deflate blocks). Returns
    the size the member inflates to."""
    head = npy_bytes({"descr": "<f4", "fortran_order": False, "shape": shape})
    mib, data_bytes = 1 << 20, int(np.prod(shape)) * 4
    assert data_bytes % mib == 0
    first = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = zlib.compressobj(9, zlib.DEFLATED, -15)
    zeros = bytes(mib)
    stream = (first.compress(head) + first.flush(zlib.Z_FULL_FLUSH)
              + (block.compress(zeros) + block.flush(zlib.Z_FULL_FLUSH)) * (data_bytes // mib)
              + zlib.compressobj(9, zlib.DEFLATED, -15).flush(zlib.Z_FINISH))
    crc = zlib.crc32(head)
    for _ in range(data_bytes // mib):
        crc = zlib.crc32(zeros, crc)
    name, size = f"{key}.npy".encode(), len(head) + data_bytes
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0x21, crc, len(stream), size, len(name), 0) + name
    central = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0x21, crc, len(stream), size,
                          len(name), 0, 0, 0, 0, 0, 0) + name
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(central), len(local) + len(stream), 0)
    path.write_bytes(local + stream + central + end)
    return size


def peak_rss_reset() -> bool:
    """Reset this process's peak RSS (VmHWM) so a later peak measures only what follows (Linux)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc/self/status")


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


@pytest.fixture(scope="module")
def bombs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two 1 MB .npz of float32 zeros that inflate to 1.1 GB: one shaped [N, 1, 8, 9], a column too many for
    the model; one that fits it, [N, 1, 8, 8], but holds more than the 1024 MiB a set may."""
    folder = tmp_path_factory.mktemp("bombs")
    misfit, fits = folder / "misfit.npz", folder / "fits.npz"
    for path, shape in ((misfit, (117 * 2**15, 1, 8, 9)), (fits, (33 * 2**17, 1, 8, 8))):  # whole MiBs of data
        inflated = write_bomb(path, "inputs", shape)
        assert inflated > 1.1e9 and path.stat().st_size < 1.2e6
        with zipfile.ZipFile(path) as z:
            assert z.getinfo("inputs.npy").file_size == inflated
        assert read_headers(path)["inputs"].nbytes > 1.1e9
    return misfit, fits


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads peak RSS from /proc")
def test_a_zip_bomb_is_refused_from_its_header_without_inflating(tmp_path, capsys, bombs):
    misfit, fits = bombs
    cache = tmp_path / "cache"

    def runs(bomb: Path) -> list[list[str]]:
        return [["bench", str(MODEL), "--dataset", str(bomb), *QUICK_TIMING],
                ["convert", str(MODEL), "--to", "openvino", "--precision", "int8", "--calibration", str(bomb),
                 "--cache-dir", str(cache)],
                ["compare", str(MODEL), "--formats", "onnx", "--dataset", str(bomb), "--cache-dir", str(cache)],
                ["sweep", str(spec(tmp_path, ["int8"], dataset=str(bomb), calibration=str(bomb))),
                 "--store", str(tmp_path / "r.db"), "--cache-dir", str(cache)]]

    assert main(runs(misfit)[0]) == ExitStatus.DATA_MISMATCH  # imports and first loads, before measuring
    capsys.readouterr()
    for bomb, message in ((misfit, "array 'input' has samples of shape [1, 8, 9] but the model's input 'input' "
                                   "takes [1, 8, 8] per sample"),
                          (fits, "declares 1.1 GB of arrays ('input': [4325376, 1, 8, 8] float32), more than the "
                                 "1024 MiB a set may hold (the host and the device hold it all in memory): save fewer "
                                 "samples (a few hundred is plenty), or raise the limit with EDGEBENCH_MAX_DATA_MB")):
        for argv in runs(bomb):
            exact = peak_rss_reset()
            before = rss_bytes() if exact else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
            cpu = resource.getrusage(resource.RUSAGE_SELF)
            assert main(argv) == ExitStatus.DATA_MISMATCH, argv
            used = resource.getrusage(resource.RUSAGE_SELF)
            grew = (peak_rss_bytes() if exact else used.ru_maxrss * 1024) - before
            err = one_line_error(capsys)
            assert message in err, err
            assert grew < 200e6, f"{argv[0]}: peak RSS grew {grew / 1e6:.0f} MB reading a 1 MB file"
            # CPU seconds, not wall time: inflating 1.1 GB costs about a second of CPU however busy the machine
            spent = used.ru_utime + used.ru_stime - cpu.ru_utime - cpu.ru_stime
            assert spent < 0.6, f"{argv[0]}: {spent:.2f} s of CPU to refuse the bomb"
    assert artifacts(cache) == []


def test_the_size_limit_is_set_by_an_environment_variable(tmp_path, capsys, monkeypatch):
    data = save(tmp_path / "eval.npz", inputs=images(5000))  # 1.3 MB
    argv = ["bench", str(MODEL), "--dataset", str(data), *QUICK_TIMING]
    monkeypatch.setenv("EDGEBENCH_MAX_DATA_MB", "1")
    assert main(argv) == ExitStatus.DATA_MISMATCH
    assert "declares 1.3 MB of arrays ('input': [5000, 1, 8, 8] float32), more than the 1 MiB" in one_line_error(capsys)
    monkeypatch.setenv("EDGEBENCH_MAX_DATA_MB", "lots")
    assert main(argv) == ExitStatus.CONFIG
    assert "$EDGEBENCH_MAX_DATA_MB='lots' is not a size in MiB: set a whole number" in one_line_error(capsys)
    monkeypatch.setenv("EDGEBENCH_MAX_DATA_MB", "2")
    assert main(argv) == ExitStatus.OK


# --- property: however an .npz is mangled, the answer is a dataset or one refusal with status 5 -------------

def valid_npz() -> bytes:
    buf = io.BytesIO()
    np.savez(buf, inputs=images(4), labels=np.arange(4))
    return buf.getvalue()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 255)), max_size=4),
       cut_at=st.one_of(st.none(), st.integers(0, 2000)))
def test_mangled_npz_files_give_a_dataset_or_one_refusal(tmp_path, cuts, cut_at):
    blob = bytearray(valid_npz())
    for at, value in cuts:
        blob[at % len(blob)] = value
    path = tmp_path / "mangled.npz"
    path.write_bytes(bytes(blob[:cut_at] if cut_at is not None else blob))
    info = load_onnx_info(MODEL)
    try:
        _, data = plan_dataset(path, info.inputs, outputs=info.outputs)
    except EdgebenchError as exc:
        assert exc.status == ExitStatus.DATA_MISMATCH and "\n" not in str(exc) and str(path) in str(exc), str(exc)
    else:
        assert data.arrays["input"].shape[1:] == (1, 8, 8)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(labels=hnp.arrays(st.sampled_from([np.int8, np.int64, np.uint16, np.float32, np.bool_]),
                         hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=6)),
       x=hnp.arrays(np.float32, st.tuples(st.integers(0, 6), st.just(1), st.just(8), st.just(8))))
def test_any_labels_and_inputs_give_a_dataset_or_one_refusal(tmp_path, labels, x):
    path = save(tmp_path / "d.npz", inputs=x, labels=labels)
    info = load_onnx_info(MODEL)
    try:
        _, data = plan_dataset(path, info.inputs, outputs=info.outputs)
    except EdgebenchError as exc:
        assert exc.status == ExitStatus.DATA_MISMATCH and "\n" not in str(exc), str(exc)
    else:  # what is accepted is sound: finite inputs, one class index in [0, 10) per sample
        assert np.isfinite(data.arrays["input"]).all() and len(x) > 0
        assert data.labels is not None and data.labels.shape == (len(x),) and data.labels.dtype.kind in "iu"
        assert ((data.labels >= 0) & (data.labels < 10)).all()
