# Every target creates .venv and installs into it, idempotently: a stamp file records the
# inputs of the last successful install, so a second `make setup` does nothing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.setup-stamp
TORCH_VERSION ?= 2.13.0
export OMP_NUM_THREADS ?= 2
# Spinning OpenMP workers make torch 5-20x slower when the 2 cores are shared (measured: BENCHMARKS.md)
export OMP_WAIT_POLICY ?= PASSIVE
# PyTorch puts CPU tensors of 2 MB or more on transparent huge pages: fewer page faults for the big
# activations of offline forwards and training steps (measured: python -m bench ab huge-pages, BENCHMARKS.md)
export THP_MEM_ALLOC_ENABLE ?= 1

.PHONY: setup browser test lint demo bench clean

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# The CPU wheel of torch is on disk on these machines; installing it first stops any
	# other package from pulling a (CUDA, multi-GB) torch of its own.
	$(PY) -m pip install -q "torch==$(TORCH_VERSION)"
	$(PY) -m pip install -q -e ".[dev,eval,serve,export,pitch,voice]"
	touch $(STAMP)

setup: $(STAMP)

# The browser tests drive Debian's chromium through chromidriver; the script installs both with
# apt when they are missing (root or sudo). Without them those tests skip and say why.
browser:
	sh scripts/install-browser.sh || echo "make: could not install chromium: the browser tests will be skipped"

test: setup browser
	$(PY) -m pytest -q tests

lint: setup
	$(VENV)/bin/ruff check speechsep tests bench

demo: setup
	$(VENV)/bin/speechsep demo

bench: setup
	$(VENV)/bin/speechsep bench --json bench/results.json --markdown BENCHMARKS.md

clean:
	rm -rf $(VENV) build *.egg-info
