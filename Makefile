# Two commands on a fresh machine: `make run` and `make test`. Both install into .venv first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PYTEST_WORKERS ?= 2

.PHONY: install run test lint benchmarks clean-venv

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev,notebooks,dask,speed]"
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (salesops)" >/dev/null
	touch $(STAMP)

install: $(STAMP)

run: install
	$(VENV)/bin/salesops batch scenarios/

test: install
	MPLBACKEND=agg $(PY) -m pytest -q -n $(PYTEST_WORKERS) --dist loadfile tests

lint: install
	$(VENV)/bin/ruff check salesops_models tests benchmarks notebooks

clean-venv:
	rm -rf $(VENV)
