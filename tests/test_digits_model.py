"""The committed digits model is real and good: top-1 on held-out data, dynamic batch."""

import numpy as np
import onnxruntime as ort


def test_committed_model_reaches_97_percent_top1(digits_onnx, digits_eval):
    data = np.load(digits_eval, allow_pickle=False)
    session = ort.InferenceSession(str(digits_onnx), providers=["CPUExecutionProvider"])
    logits = session.run(None, {"input": data["inputs"]})[0]
    assert logits.shape == (len(data["labels"]), 10)
    top1 = float(np.mean(logits.argmax(axis=1) == data["labels"]))
    assert top1 >= 0.97, top1


def test_eval_and_calibration_sets_have_the_documented_form(digits_eval):
    data = np.load(digits_eval, allow_pickle=False)
    assert data["inputs"].dtype == np.float32 and data["inputs"].shape[1:] == (1, 8, 8)
    assert data["labels"].dtype == np.int64 and set(np.unique(data["labels"])) == set(range(10))
    calib = np.load(digits_eval.parent / "calib.npz", allow_pickle=False)
    assert calib["inputs"].shape[1:] == (1, 8, 8) and 100 <= len(calib["inputs"]) <= 1000
