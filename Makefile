# The two commands a new user runs: `make demo` and `make test`.
# Both create .venv and install the project into it first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_OUT := out/demo

.PHONY: setup demo test test-all lint bench clean

setup: $(STAMP)

$(STAMP): setup.py Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: setup
	$(PY) -m beam_jobs.preprocess --input data/samples --output $(DEMO_OUT)/utterances --overwrite
	$(PY) -m schemas.inspect $(DEMO_OUT)/utterances

test: setup
	$(PY) -m ruff check .
	$(PY) -m pytest -q -m "not slow and not gpu"

test-all: setup
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) out build dist *.egg-info
