# Every target creates the virtualenv it needs; only python3 and the package registries are required.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: test lint demo emulator bench clean

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest

# The inner loop while editing: everything but the end-to-end runs marked slow (about a minute).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

# Mutation testing (README: Development), not part of `make test`: plants small bugs in
# function/forwarder/ and deploy/ one at a time and checks a test fails for each. Prints the score
# per module and the mutants no test killed. Results stay in mutants/: a second run only tests new
# or changed functions (`rm -rf mutants` starts afresh). `make mutate MODULES="signer batching"`
# (or MODULES=deploy.template) re-tests all mutants of those modules; CHILDREN=<n> parallel runs
# (default 2).
mutate: $(STAMP)
	$(BIN)/python scripts/mutate.py run --max-children $(or $(CHILDREN),2) $(MODULES)

.PHONY: test-fast mutate

clean:
	rm -rf $(VENV) build dist .pytest_cache .ruff_cache .hypothesis

# The local Cloud Eye emulator on http://127.0.0.1:8900 with the documented demo keys (docs/emulator.md).
emulator: $(STAMP)
	EMULATOR_AK=$${EMULATOR_AK:-demo-ak} EMULATOR_SK=$${EMULATOR_SK:-demo-sk-not-secret} THREADS=$${THREADS:-16} \
		$(BIN)/functions-framework --source emulator/main.py --target cloudeye \
		--host $${EMULATOR_HOST:-127.0.0.1} --port $${EMULATOR_PORT:-8900}

# The benchmark (benchmarks/README.md): `make bench` (full, a few minutes), `make bench QUICK=1`
# or `make bench-quick` (under a minute). Prints the table, writes benchmarks/results.json.
bench: $(STAMP)
	$(BIN)/python -m benchmarks.run $(if $(QUICK),--quick)

bench-quick: $(STAMP)
	$(BIN)/python -m benchmarks.run --quick

.PHONY: bench-quick

# The FunctionGraph code zip (README: Deploy): `make package`, or e.g.
# `make package ARGS="--runtime Python3.12 --arch arm64"`. Writes dist/<function name>.zip.
package: $(STAMP)
	$(BIN)/python scripts/package $(ARGS)

# Validate template.yaml, build the zip if missing, render build/terraform/main.tf.json and run
# terraform when installed: `make deploy ARGS="--dry-run"`, `make deploy ARGS="--var agency_name=..."`.
deploy: $(STAMP)
	$(BIN)/python scripts/deploy $(ARGS)

.PHONY: package deploy

# The quickstart (README: What the demo shows): emulator + function on free loopback ports, sample events
# through the HTTP entry and index.handler, then everything stops. `scripts/demo --keep-running`
# leaves both up.
demo: $(STAMP)
	$(BIN)/python scripts/demo

# The reliability figures (README: Reliability): seeded faults with redelivery, 429 storms, load and
# fuzzing, about 2 minutes. `make reliability ARGS=--soak` runs a longer soak; RELIABILITY_SEED=<n>
# replays another seed.
reliability: $(STAMP)
	$(BIN)/python -m tests.reliability.report $(ARGS)

.PHONY: reliability
