# Two commands on a fresh machine: `make run` and `make test`. Both install into .venv first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PYTEST_WORKERS ?= 2

.PHONY: install run test lint lab benchmarks clean-venv

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev,notebooks,dask,speed]"
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (salesops)" >/dev/null
	touch $(STAMP)

install: $(STAMP)

# `make run` also tracks the baseline plan on the sample company's export of $(TRACK_AS_OF) (the
# plan year's continuation, with the plan's territories in place and the example mid-year changes).
RUN_ID := $(shell date -u +%Y%m%d-%H%M%S)-run
TRACK_AS_OF ?= 2026-06-30
TRACK_CHANGES ?= examples/tracking_changes_2026.yaml

run: install
	$(VENV)/bin/salesops batch scenarios/ --batch-id $(RUN_ID)
	$(VENV)/bin/salesops data sample --out results/$(RUN_ID)/actuals-$(TRACK_AS_OF) --through $(TRACK_AS_OF) \
		--like results/$(RUN_ID)/baseline/scenario.resolved.yaml \
		--territories results/$(RUN_ID)/baseline/assignments.parquet
	$(VENV)/bin/salesops track results/$(RUN_ID)/baseline --actuals results/$(RUN_ID)/actuals-$(TRACK_AS_OF) \
		--changes $(TRACK_CHANGES)

test: install
	MPLBACKEND=agg $(PY) -m pytest -q -n $(PYTEST_WORKERS) --dist loadfile tests

# `make lab`: JupyterLab on the project's kernel (the .venv interpreter), in notebooks/; the what-if
# is notebooks/whatif.ipynb. JUPYTER_PATH puts the .venv's kernelspecs ahead of a user-level
# `python3` that could run another interpreter; new notebooks get project_kernel_name(), which
# installs a salesops-<hash> kernelspec when `python3` is not this interpreter. LAB_ARGS=--no-browser
# on a remote machine.
LAB_ARGS ?=
lab: install
	JUPYTER_PATH=$(abspath $(VENV))/share/jupyter $(VENV)/bin/jupyter lab --notebook-dir=notebooks \
		--MappingKernelManager.default_kernel_name=$$($(PY) -c "from salesops_models.workflow.notebooks import project_kernel_name; print(project_kernel_name())") \
		$(LAB_ARGS)

lint: install
	$(VENV)/bin/ruff check salesops_models tests benchmarks notebooks

clean-venv:
	rm -rf $(VENV)
