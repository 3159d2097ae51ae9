# Two commands do everything on a fresh machine:
#   make run    set up .venv and run the main job on the built-in defaults
#   make test   set up .venv (with the test extra) and run the tests
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q

.PHONY: setup run test bench clean

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -c constraints.txt -e '.[test]'
	# The reference implementation for the equivalence tests; --no-deps: its pins need CUDA packages.
	$(PIP) install --no-deps mambavision==1.2.0
	touch $@

setup: $(VENV)/.installed

run: setup
	$(PY) run_sweep.py space=placement

test: setup
	$(PY) -m pytest -q

bench: setup
	$(PY) benchmarks/scan.py

clean:
	rm -rf $(VENV) .pytest_cache runs
