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
# per module, the core modules' score against the 95% goal (CORE_MODULES in scripts/mutate.py) and
# the mutants no test killed. Results stay in mutants/: a second run only tests new or changed
# functions (`rm -rf mutants` starts afresh). `make mutate MODULES="signer batching"` (or
# MODULES=deploy.template) re-tests all mutants of those modules; CHILDREN=<n> parallel runs
# (default 2). `make mutate-core` (or MODULES=core) re-tests the core modules only.
mutate: $(STAMP)
	$(BIN)/python scripts/mutate.py run --max-children $(or $(CHILDREN),2) $(MODULES)

mutate-core: $(STAMP)
	$(BIN)/python scripts/mutate.py run --max-children $(or $(CHILDREN),2) core

.PHONY: test-fast mutate mutate-core

clean:
	rm -rf $(VENV) build dist .pytest_cache .ruff_cache .hypothesis

# The local Cloud Eye emulator on http://127.0.0.1:8900 with the documented demo keys (docs/emulator.md).
emulator: $(STAMP)
	EMULATOR_AK=$${EMULATOR_AK:-demo-ak} EMULATOR_SK=$${EMULATOR_SK:-demo-sk-not-secret} THREADS=$${THREADS:-16} \
		$(BIN)/python -m emulator.serve --host $${EMULATOR_HOST:-127.0.0.1} --port $${EMULATOR_PORT:-8900}

# The benchmark (benchmarks/README.md): `make bench` (full, a few minutes) writes the committed
# benchmarks/results.json; `make bench-quick` (or `make bench QUICK=1`, under a minute) writes
# build/bench-quick.json. Both print the table.
bench: $(STAMP)
	$(BIN)/python -m benchmarks.run $(if $(QUICK),--quick)

bench-quick: $(STAMP)
	$(BIN)/python -m benchmarks.run --quick

# Peak memory of the worst bodies the caps allow, and of a 10,000-event batch against the SDK
# (benchmarks/README.md), under a minute; writes build/bench-memory.json.
bench-memory: $(STAMP)
	$(BIN)/python -m benchmarks.memory $(ARGS)

.PHONY: bench-quick bench-memory

# The FunctionGraph code zip (docs/deploy.md): `make package`, or e.g.
# `make package ARGS="--runtime Python3.12 --arch arm64"`. Writes dist/<function name>.zip.
package: $(STAMP)
	$(BIN)/python scripts/package $(ARGS)

# Validate template.yaml, build the zip if missing, render build/terraform/main.tf.json and run
# terraform when installed: `make deploy ARGS="--dry-run"`, `make deploy ARGS="--var agency_name=..."`.
deploy: $(STAMP)
	$(BIN)/python scripts/deploy $(ARGS)

.PHONY: package deploy

# The quickstart (README: What the demo shows): emulator + function on free loopback ports, sample
# events through the HTTP entry and index.handler, then everything stops. `scripts/demo --verbose`
# lists every event; `scripts/demo --keep-running` leaves both up.
demo: $(STAMP)
	$(BIN)/python scripts/demo

# The function's HTTP entry on http://127.0.0.1:8080/ (docs/development.md). With neither
# CLOUDEYE_ENDPOINT nor CLOUDEYE_REGION set it sends to `make emulator` with the demo keys;
# otherwise the environment's settings apply. FUNCTION_HOST and FUNCTION_PORT move it.
serve: $(STAMP)
	@if [ -z "$$CLOUDEYE_ENDPOINT$$CLOUDEYE_REGION" ]; then \
		export CLOUDEYE_ENDPOINT=http://127.0.0.1:8900 HUAWEICLOUD_SDK_AK=demo-ak HUAWEICLOUD_SDK_SK=demo-sk-not-secret \
			HUAWEICLOUD_SDK_PROJECT_ID=$${HUAWEICLOUD_SDK_PROJECT_ID:-0123456789abcdef0123456789abcdef}; \
	fi; \
	echo "serve: the function (function/main.py, target ingest) listening on" \
		"http://$${FUNCTION_HOST:-127.0.0.1}:$${FUNCTION_PORT:-8080}/, sending to $${CLOUDEYE_ENDPOINT:-Cloud Eye in $$CLOUDEYE_REGION}"; \
	exec $(BIN)/functions-framework --source function/main.py --target ingest \
		--host $${FUNCTION_HOST:-127.0.0.1} --port $${FUNCTION_PORT:-8080}

.PHONY: serve

# The reliability figures (docs/reliability.md): seeded faults with redelivery, 429 storms, load and
# fuzzing, about 2 minutes. `make reliability ARGS=--soak` runs a longer soak; RELIABILITY_SEED=<n>
# replays another seed.
reliability: $(STAMP)
	$(BIN)/python -m tests.reliability.report $(ARGS)

.PHONY: reliability

# The scale-out simulation (benchmarks/README.md): the emulator limited to 20 requests/s and
# 1, 8, 16 and 32 forwarder processes with one 1,000-event Kafka batch each, about a minute.
# `make scale ARGS="--instances 16"`; `make scale ARGS=--help` for the options.
scale: $(STAMP)
	$(BIN)/python -m benchmarks.scale $(ARGS)

.PHONY: scale
