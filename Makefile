# copythat-ops: `make run` does the main job, `make test` runs the whole suite.
# Both set up what they need first: a virtual environment with the package.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
OPS    := $(BIN)/copythat-ops
REPORTS ?= build/reports
KEEP    ?= 20
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: run test lab bench install node-tools db-up db-down clean

## install: a virtual environment with copythat-ops and its test tools (again when pyproject.toml changes)
install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

## node-tools: the Design Tokens reference parser (@terrazzo/parser) under build/node, which the suite validates
##             token exports with; without npm the test that needs it is skipped, saying so
TERRAZZO ?= 2.7.1
NODE_TOOLS := build/node/node_modules/@terrazzo/parser/package.json
node-tools:
	@if [ -f $(NODE_TOOLS) ]; then :; \
	elif command -v npm >/dev/null 2>&1; then npm install --silent --no-audit --no-fund --prefix build/node @terrazzo/parser@$(TERRAZZO); \
	else echo "npm not found: the export's validation with @terrazzo/parser will be skipped"; fi

## run: connect (embedded PostgreSQL unless .env says otherwise), migrate to head, execute the notebooks
##      into a dated folder of reports under $(REPORTS) (the newest $(KEEP) runs are kept), end with the verdict
run: install
	$(OPS) db check
	$(OPS) migrate upgrade head
	$(OPS) notebooks run --output-dir $(REPORTS) --keep $(KEEP)

## test: the whole suite against a real PostgreSQL: tests/ (library, CLI, docstring examples) a file per worker
##       process, then the notebooks under nbval in one process, in order, as a user runs them (01 migrates the
##       database the others read). Each process starts a throwaway embedded server (or makes databases of its own on
##       $$COPYTHAT_TEST_DATABASE_URL) and drops it all after (conftest.py): never the checkout's .copythat/, nor the
##       database of .env or DATABASE_URL
TEST_WORKERS ?= auto
test: install node-tools
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --maxprocesses 4 --dist loadfile tests
	$(BIN)/python -m pytest notebooks

## lab: JupyterLab rooted at the checkout, opened on notebooks/ (the reports are in build/reports/)
lab: install
	$(BIN)/jupyter lab --ServerApp.root_dir=. --LabApp.default_url=/lab/tree/notebooks $(ROOT_FLAG)

## bench: every benchmark, each in a scratch database it drops (figures and ratios, not tests): jobs, monitoring,
##        migrations, start-up, the tenancy revision and row-level security, tokens, metrics and the pool
bench: install
	$(BIN)/python benchmarks/jobs.py
	$(BIN)/python benchmarks/monitor.py
	$(BIN)/python benchmarks/migrations.py
	$(BIN)/python benchmarks/startup.py
	$(BIN)/python benchmarks/tenancy.py
	$(BIN)/python benchmarks/rls.py
	$(BIN)/python benchmarks/tokens.py
	$(BIN)/python benchmarks/metrics.py
	$(BIN)/python benchmarks/pool.py

db-up: install
	$(OPS) db up

db-down: install
	$(OPS) db down

## clean: remove build outputs (the embedded database in .copythat/ is kept; `make db-down` stops it)
clean:
	rm -rf build *.egg-info
