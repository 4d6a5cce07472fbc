# coldchain: the two commands a new user needs are `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# checkov lives in its own environment: its pins would fight the project's.
CHECKOV_VENV := $(VENV)/checkov
CHECKOV_VERSION := 3.3.30
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION)

.PHONY: bootstrap test lint typecheck unit demo bench lambda clean

bootstrap: $(STAMP)
	@scripts/ensure-mosquitto

$(CHECKOV_STAMP):
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install --quiet checkov==$(CHECKOV_VERSION)
	@touch $(CHECKOV_STAMP)

$(STAMP): pyproject.toml
	@scripts/ensure-python $(PYTHON)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

## The main job: broker, worker and a simulated fleet of 25 devices, with a live summary.
demo: bootstrap
	$(BIN)/coldchain up

## The Lambda package for python3.12 on arm64.
lambda: $(STAMP)
	PYTHON=$(BIN)/python scripts/build-lambda

## Benchmarks (on demand, not part of the tests); each rewrites its section of docs/performance.md.
bench: bootstrap
	@scripts/ensure-chromium
	$(BIN)/python -m benchmarks.simulator_fleet --devices 1000 --interval 10 --duration 120
	$(BIN)/python -m benchmarks.dashboard_render --devices 100 --hours 24
	$(BIN)/python -m benchmarks.csv_export --rows 100000 1000000
	$(BIN)/python -m benchmarks.processing_core --readings 100000
	$(BIN)/python -m benchmarks.end_to_end --count 30000
	$(BIN)/python -m benchmarks.repair_rate --devices 60 --interval 0.5 --duration 90
	$(BIN)/python -m benchmarks.storage --devices 100 --days 7
	$(BIN)/python -m benchmarks.lambda_cost
	$(BIN)/python -m benchmarks.cli_startup --runs 21

## The whole suite: lint, types, then unit, functional and integration tests.
test: bootstrap $(CHECKOV_STAMP) lint typecheck
	@scripts/ensure-chromium
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -m "unit or functional"

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist
