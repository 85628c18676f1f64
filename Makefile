# copythat-ops: `make run` does the main job, `make test` runs the whole suite.
# Both set up what they need first: a virtual environment with the package.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
OPS    := $(BIN)/copythat-ops
EXECUTED ?= build/notebooks
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: run test lab bench install db-up db-down clean

## install: a virtual environment with copythat-ops and its test tools (again when pyproject.toml changes)
install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

## run: connect (embedded PostgreSQL unless .env says otherwise), migrate to head, execute the notebooks
run: install
	$(OPS) db check
	$(OPS) migrate upgrade head
	$(OPS) notebooks run --output-dir $(EXECUTED)

## test: the whole suite (library, CLI, notebooks under nbval) against a real PostgreSQL
test: install
	$(BIN)/python -m pytest

## lab: JupyterLab on the curated notebooks
lab: install
	$(BIN)/jupyter lab --notebook-dir=notebooks $(ROOT_FLAG)

## bench: the jobs and monitoring benchmarks, each in a scratch database it drops (figures and ratios, not tests)
bench: install
	$(BIN)/python benchmarks/jobs.py
	$(BIN)/python benchmarks/monitor.py

db-up: install
	$(OPS) db up

db-down: install
	$(OPS) db down

## clean: remove build outputs (the embedded database in .copythat/ is kept; `make db-down` stops it)
clean:
	rm -rf build *.egg-info
