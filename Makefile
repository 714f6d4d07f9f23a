# The two commands a fresh clone needs: `make demo` and `make test`. Each creates .venv when missing.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# onnx2tf pins an older TensorFlow; installed without deps beside tensorflow-cpu (extra tflite-convert).
NODEPS := onnx2tf==1.29.24 onnx-graphsurgeon sng4onnx sne4onnx tf-keras==2.21.0
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml Makefile | cksum | cut -d" " -f1)

.PHONY: demo test test-stress install system-deps clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(STAMP): $(PY) pyproject.toml Makefile
	$(PIP) install --quiet -e '.[all,dev]'
	$(PIP) install --quiet --no-deps $(NODEPS)
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

# System packages the tests need (OpenSSH server for the SSH fixtures); installed only when missing.
system-deps:
	@bash scripts/system-deps.sh

demo: install
	$(VENV)/bin/edgebench demo

test: install system-deps
	$(PY) -m pytest -q

# Not in CI: the whole suite N times while a busy loop holds one core; lists every test that failed.
N ?= 3
HOG ?= steady
test-stress: install system-deps
	$(PY) scripts/test_stress.py --runs $(N) --hog $(HOG)

clean:
	rm -rf $(VENV) .edgebench .pytest_cache
