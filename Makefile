# The two commands a new user runs: `make demo` and `make test`.
# Both create .venv and install the project into it first.
PYTHON ?= python3
# PyTorch is installed explicitly before the package: by default the CPU build 2.13.0. The
# package's own requirement is a range, so on a GPU machine `make setup TORCH_SPEC=torch` (or
# your CUDA build's spec) keeps or brings the CUDA build instead.
TORCH_SPEC ?= torch==2.13.0
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_OUT := out/demo

.PHONY: setup demo test test-all lint bench-setup clean

setup: $(STAMP)

$(STAMP): setup.py Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet '$(TORCH_SPEC)'
	$(PY) -m pip install --quiet -e '.[train,dev]'
	touch $(STAMP)

demo: setup
	$(PY) -m kd.pipeline --task data/demo/sentiment.jsonl --corpus data/samples --output $(DEMO_OUT) --overwrite
	$(PY) -m schemas.inspect $(DEMO_OUT)/utterances_corpus

test: setup
	$(PY) -m ruff check .
	$(PY) -m pytest -q -m "not slow and not gpu"

test-all: setup
	$(PY) -m ruff check .
	$(PY) -m pytest -q

lint: setup
	$(PY) -m ruff check .

# The benchmarks' extra peers: kss and KoNLPy (open-korean-text, which needs a Java runtime).
bench-setup: setup
	command -v java >/dev/null || (apt-get update && apt-get install -y --no-install-recommends default-jre-headless)
	$(PY) -m pip install --quiet -e '.[train,dev,bench]'

clean:
	rm -rf $(VENV) out build dist *.egg-info
