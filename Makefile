# Vedika: `make run` serves it, `make test` proves it.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test test-fast check lint typecheck services browser migrate clean soak

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	@touch $@

$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $@ $(STAMP)

run: $(STAMP)
	@mkdir -p var
	$(BIN)/vedika migrate
	$(BIN)/vedika serve --host $(HOST) --port $(PORT) --no-migrate

migrate: $(STAMP)
	$(BIN)/vedika migrate

# PostgreSQL and Redis for the tests (started if installed but not running), Chromium
# for the browser tests (installed from Debian's packages if missing).
services:
	@./scripts/ensure-services.sh

# The whole suite, as three processes side by side (most of a system test's time is spent
# waiting on its servers): the browser tests (Chromium, the original client's build) in
# one, everything else as two shards (tests/shards.py).
test: $(TEST_STAMP) services
	$(BIN)/python -m tests.shards --split tests/browser,tests/compat 2 -q -p no:cacheprovider

# The quick loop (under 2 minutes on 2 cores, no PostgreSQL or Redis needed): the unit
# tests and the system tests on SQLite. Left out: the browsers (tests/browser,
# tests/compat) and the `postgres`, `redis` and `slow` marks (pyproject.toml). CI runs
# `make test`, which leaves out nothing. FAST_JOBS pytest processes share the tests
# (tests/shards.py): they mostly wait on their servers, so 3 on 2 cores beats 2.
FAST := not browser and not postgres and not redis and not slow
FAST_JOBS ?= 3
test-fast: $(TEST_STAMP)
	$(BIN)/python -m tests.shards $(FAST_JOBS) -q -p no:cacheprovider -m "$(FAST)" \
		--ignore=tests/browser --ignore=tests/compat

# lint-imports: the layer and no-cycle contracts in pyproject.toml (docs/architecture.md).
lint: $(TEST_STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/lint-imports

typecheck: $(TEST_STAMP)
	$(BIN)/mypy

check: lint typecheck test

# N concurrent answers for M minutes with 10% of clients reconnecting; all counts must be 0.
# Three runs: one instance on SQLite; two on PostgreSQL + Redis (reconnects to the other);
# two behind nginx (docs/deployment.md's config), one SIGKILLed every SOAK_KILL_EVERY
# seconds and started again (clients reconnect through nginx and resume).
SOAK_STREAMS ?= 100
SOAK_MINUTES ?= 5
SOAK_KILL_EVERY ?= 20
soak: $(TEST_STAMP) services
	$(BIN)/python -m tests.soak --streams $(SOAK_STREAMS) --minutes $(SOAK_MINUTES)
	$(BIN)/python -m tests.soak --streams $(SOAK_STREAMS) --minutes $(SOAK_MINUTES) --redis
	$(BIN)/python -m tests.soak --streams $(SOAK_STREAMS) --minutes $(SOAK_MINUTES) --nginx \
		--kill-every $(SOAK_KILL_EVERY)

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache

# Speed against QUALITY.md (bench/, docs/benchmarks/README.md): `bench` is the full run
# (15-19 min on 2 cores; writes bench/results/ and docs/benchmarks/), `bench-quick` every scenario
# reduced (about 2 min; CI proves it works, no timing is asserted).
BENCH_STAMP := $(VENV)/.installed-bench
$(BENCH_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test,bench]'
	@touch $@ $(TEST_STAMP) $(STAMP)

.PHONY: bench bench-quick
bench: $(BENCH_STAMP) services
	$(BIN)/python -m bench.run

bench-quick: $(TEST_STAMP) services
	$(BIN)/python -m bench.run --quick --no-report
