"""The artifact cache: content keys, hits, and two processes converting the same key at once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from edgebench.artifacts import cache as artifacts
from edgebench.artifacts.meta import ArtifactMeta, Preservation

DIGITS = Path(__file__).resolve().parent.parent / "edgebench" / "bundled" / "demo"
ONNX = DIGITS / "digits_cnn.onnx"
# meta.json files the cache wrote before ArtifactMeta (META_VERSION 4): digits_cnn as onnx
# prune:0.5+cluster:16+int8 (weights, preservation checked, ratios, the int8 scheme), openvino fp32, tflite fp16
METAS = sorted((Path(__file__).resolve().parent / "fixtures" / "meta").glob("*.json"))


def test_key_changes_with_every_input() -> None:
    base = dict(source_sha256="a" * 64, recipe="fp32", fmt="onnx", precision="fp32", versions={"onnx": "1"})
    key = artifacts.cache_key(**base)
    for change in ({"recipe": "prune:0.5"}, {"fmt": "openvino"}, {"precision": "fp16"},
                   {"versions": {"onnx": "2"}}, {"source_sha256": "b" * 64}):
        assert artifacts.cache_key(**{**base, **change}) != key
    assert artifacts.cache_key(**base, calibration_sha256="c") != key


def test_hit_returns_the_same_entry(tmp_path: Path) -> None:
    first = artifacts.ensure(ONNX, "onnx", root=tmp_path)
    second = artifacts.ensure(ONNX, "onnx", root=tmp_path)
    assert not first.hit and second.hit and first.path == second.path
    assert second.main.read_bytes() == ONNX.read_bytes()
    written = json.loads((first.path / "meta.json").read_text())
    assert second.meta == first.meta and first.meta.to_dict() == written


@pytest.mark.parametrize("path", METAS, ids=lambda p: p.stem)
def test_meta_json_round_trips(path: Path) -> None:
    written = json.loads(path.read_text())
    meta = ArtifactMeta.from_dict(written)
    assert meta.to_dict() == written
    assert meta.inputs[0].source_name == "input" and meta.tool_versions == written["tool_versions"]


def test_older_meta_json_still_reads() -> None:
    """Before META_VERSION 4 ``preservation`` held the check's sentence (a meta.json copied out with --out)."""
    written = json.loads((METAS[0].parent / "onnx-prune-cluster-int8.json").read_text())
    sentence = written.pop("preservation_note")
    meta = ArtifactMeta.from_dict({**written, "meta_version": 3, "preservation": sentence})
    assert meta.preservation is Preservation.CHECKED and meta.preservation_note == sentence
    assert meta.weight_steps["cluster:16"]["clusters_requested"] == 16 and meta.details["opset"] == 17


def test_two_processes_converting_the_same_key(tmp_path: Path) -> None:
    code = ("import sys, json; from pathlib import Path; from edgebench.artifacts import cache as artifacts; "
            "c = artifacts.ensure(Path(sys.argv[1]), 'openvino', 'fp32', root=Path(sys.argv[2])); "
            "print(json.dumps({'path': str(c.path), 'hit': c.hit}))")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(ONNX), str(tmp_path)], stdout=subprocess.PIPE,
                              text=True) for _ in range(2)]
    replies = [json.loads(p.communicate(timeout=120)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert replies[0]["path"] == replies[1]["path"]
    entries = [p for p in tmp_path.glob("*/*") if p.is_dir()]
    assert len(entries) == 1 and not entries[0].name.startswith(".")  # no half-built temp folder left
    meta = json.loads((entries[0] / "meta.json").read_text())
    assert (entries[0] / "model.xml").is_file() and (entries[0] / "model.bin").stat().st_size == meta["size_bytes"] - (
        entries[0] / "model.xml").stat().st_size


def test_onnx_offline_optimization_is_its_own_entry(tmp_path: Path) -> None:
    import onnxruntime as ort

    plain = artifacts.ensure(ONNX, "onnx", root=tmp_path)
    basic = artifacts.ensure(ONNX, "onnx", root=tmp_path, optimize="basic")
    assert basic.path != plain.path and basic.meta.details["optimize"] == "basic"
    session = ort.InferenceSession(str(basic.main), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input"]
