"""Bad input for conversion and for bench on artifacts: one line, the fix, a distinct exit status."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from edgebench.cli import main
from edgebench.errors import ExitStatus

DIGITS = Path(__file__).resolve().parent.parent / "edgebench" / "bundled" / "demo"
ONNX, EVAL = DIGITS / "digits_cnn.onnx", DIGITS / "eval.npz"


def custom_op_model(path: Path) -> Path:
    """A valid ONNX whose only op (com.example.Frobnicate) no converter knows."""
    node = helper.make_node("Frobnicate", ["x"], ["y"], domain="com.example")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)])
    onnx.save(model, path)
    return path


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[ExitStatus, str]:
    status = main(list(args))
    err = capsys.readouterr().err.strip()
    return status, err


@pytest.mark.parametrize("fmt,op_text", [("openvino", "com.example.Frobnicate"), ("tflite", "op Frobnicate")])
def test_unconvertible_op_names_the_op(tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str,
                                       op_text: str) -> None:
    model = custom_op_model(tmp_path / "custom.onnx")
    status, err = cli(capsys, "convert", str(model), "--to", fmt, "--cache-dir", str(tmp_path / "c"))
    assert status == ExitStatus.CONVERSION_FAILED
    assert op_text in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert not any((tmp_path / "c").rglob("meta.json"))  # a failed conversion leaves no cache entry


@pytest.mark.parametrize("name,content,status", [
    ("bad.xml", b"<net><layers>", ExitStatus.INVALID_MODEL),
    ("bad.tflite", b"TFL3 this is not a flatbuffer", ExitStatus.INVALID_MODEL),
    ("bad.engine", b"\x00\x01 not an engine", ExitStatus.RUNTIME_MISSING),  # no TensorRT on this host
])
def test_corrupt_artifact_given_to_bench(tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str,
                                         content: bytes, status: ExitStatus) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    if name.endswith(".xml"):
        path.with_suffix(".bin").write_bytes(b"")
    got, err = cli(capsys, "bench", str(path), "--max-duration-s", "2")
    assert got == status, err
    assert path.name in err and len(err.splitlines()) == 1
    if name.endswith(".engine"):
        assert "pip install 'edgebench[tensorrt]'" in err and "--format tensorrt" in err


def test_xml_without_its_bin(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, err = cli(capsys, "convert", str(ONNX), "--to", "openvino", "--cache-dir", str(tmp_path / "c"),
                      "--out", str(tmp_path / "o"))
    assert status == ExitStatus.OK, err
    xml = tmp_path / "o" / "openvino-fp32" / "model.xml"
    (tmp_path / "o" / "openvino-fp32" / "meta.json").unlink()
    xml.with_suffix(".bin").unlink()
    status, err = cli(capsys, "bench", str(xml))
    assert status == ExitStatus.INVALID_MODEL, err
    assert "model.xml is not a readable OpenVINO IR" in err and "pass the .xml with its .bin beside it" in err


def test_tensorrt_absent_on_the_device(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip(reason="TensorRT is installed here; this checks the message when it is absent")
    status, err = cli(capsys, "bench", str(ONNX), "--format", "tensorrt", "--dataset", str(EVAL),
                      "--cache-dir", str(tmp_path / "c"), "--max-duration-s", "2")
    assert status == ExitStatus.RUNTIME_MISSING
    assert "TensorRT is not installed on local-cpu" in err and "pip install tensorrt" in err


def test_format_flag_on_an_artifact_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "m.tflite"
    model.write_bytes(b"x")
    status, err = cli(capsys, "bench", str(model), "--format", "openvino")
    assert status == ExitStatus.USAGE and "converts only from an .onnx model" in err


@pytest.mark.parametrize("args,text", [
    (["--to", "coreml"], "unknown format 'coreml'"),
    (["--to", "tensorrt", "--precision", "int8-dynamic"],
     "does not support precision 'int8-dynamic': choose one of fp32, fp16, int8"),
    (["--to", "openvino", "--precision", "int8"], "int8 needs a calibration set"),
])
def test_bad_format_or_precision(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                                 text: str) -> None:
    status, err = cli(capsys, "convert", str(ONNX), *args, "--cache-dir", str(tmp_path))
    assert status == ExitStatus.USAGE and text in err


def test_unknown_file_ending(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "model.mlmodel"  # (.pt is a source now: junk named .pt is "not a TorchScript archive", 4)
    path.write_bytes(np.zeros(4).tobytes())
    status, err = cli(capsys, "bench", str(path))
    assert status == ExitStatus.USAGE and "cannot tell the format of model.mlmodel" in err
