# One entry point for set-up, the main job and the tests. Every target creates the virtual
# environment on first use, so a fresh clone needs nothing but python3 (3.10+).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# These CPU machines carry a local torch 2.13.0 CPU wheel; the GPU machine brings its own.
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= train,serve,dev

.PHONY: venv run test test-fast lint bench clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $@

## The main job on the built-in synthetic data.
run: venv
	$(PY) train/fit.py $(ARGS)

## The whole test suite (data-marked tests skip where ../shared/datasets is absent).
test: venv
	$(PY) -m pytest -q $(ARGS)

test-fast: venv
	$(PY) -m pytest -q -m "not slow and not data" $(ARGS)

## serve/ joins when the service exists: ruff refuses a path that does not.
lint: venv
	$(VENV)/bin/ruff check $(wildcard src train serve tests bench)
	$(VENV)/bin/mypy src

bench: venv
	$(PY) bench/ingest.py

clean:
	rm -rf $(VENV) outputs .pytest_cache
