# One-command entry points. `.venv/bin/python` is the interpreter after `make install`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Two host CPU devices so pmap tests exercise real data parallelism.
TEST_ENV := XLA_FLAGS=--xla_force_host_platform_device_count=2 TF_CPP_MIN_LOG_LEVEL=3
# pytest-xdist workers; a file's tests stay on one worker (module fixtures train their model once).
TEST_WORKERS ?= 2

.PHONY: install test lint demo clean

install: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

test: install lint
	$(TEST_ENV) $(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder tests

# ruff (lint, import order) and mypy, configured in pyproject.toml.
lint: install
	$(PY) -m ruff check .
	$(PY) -m mypy

demo: install
	$(PY) train.py --workdir runs/demo
	$(PY) evaluate.py --workdir runs/demo

clean:
	rm -rf $(VENV) runs
