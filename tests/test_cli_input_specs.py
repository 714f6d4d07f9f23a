"""A --shape, --input-range or --input-value that is malformed or does not fit the model exits 5 (README's
"a dataset or input spec that does not fit the model") with one line naming the fix, in every command
that takes them; typer's own usage errors stay 2."""

from __future__ import annotations

import pytest

from edgebench.cli import main
from edgebench.errors import ExitStatus
from edgebench.paths import demo_dir
from tests.conftest import QUICK_TIMING

MODEL = str(demo_dir() / "digits_cnn.onnx")  # input 'input' [batch, 1, 8, 8]

BAD_SPECS = [
    (["--shape", "input:1xAx8x8"], "bad --shape 'input:1xAx8x8': write NAME:DxDx…"),
    (["--shape", "input"], "bad --shape 'input': write NAME:DxDx…"),
    (["--shape", "input:0x1x8x8"], "sizes above 0"),
    (["--shape", "image:1x1x8x8"], "the model has no input 'image'"),
    (["--shape", "input:1x3x8x8"], "--shape input:1x3x8x8 does not fit the model's [batch, 1, 8, 8]: give 4 sizes"),
    (["--shape", "input:1x8x8"], "keep the fixed dimensions (e.g. --shape input:1x1x8x8)"),
    (["--input-range", "input:1:0"], "bad --input-range 'input:1:0': write NAME:LOW:HIGH with LOW < HIGH"),
    (["--input-range", "input:a:b"], "bad --input-range 'input:a:b'"),
    (["--input-range", "image:0:1"], "the model has no input 'image'"),
    (["--input-value", "input"], "bad --input-value 'input': write NAME=VALUE"),
    (["--input-value", "image=3"], "the model has no input 'image'"),
]


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("edgebench: error: "), err
    return err


@pytest.mark.parametrize("spec,message", BAD_SPECS, ids=[" ".join(s) for s, _ in BAD_SPECS])
def test_bench_refuses_a_bad_input_spec_with_status_5(spec, message, capsys):
    assert main(["bench", MODEL, *spec, *QUICK_TIMING]) == ExitStatus.DATA_MISMATCH
    assert message in one_line_error(capsys)


@pytest.mark.parametrize("command", [["convert", MODEL, "--to", "onnx"], ["compress", MODEL, "-r", "prune:0.5"],
                                     ["compare", MODEL, "--formats", "onnx"]])
def test_every_command_taking_shape_refuses_a_bad_one_with_status_5(command, tmp_path, capsys):
    for shape, message in (("input:1x1x8", "does not fit the model's"), ("input:1x1x8xe", "bad --shape")):
        assert main([*command, "--shape", shape, "--cache-dir", str(tmp_path)]) == ExitStatus.DATA_MISMATCH
        assert message in one_line_error(capsys)


def test_typers_own_usage_errors_stay_2(capsys):
    assert main(["bench", MODEL, "--shape"]) == ExitStatus.USAGE
    assert "requires an argument" in capsys.readouterr().err
    assert main(["bench", MODEL, "--batch", "zero"]) == ExitStatus.USAGE
