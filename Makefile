# coldchain: the two commands a new user needs are `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: bootstrap test lint typecheck unit demo bench clean

bootstrap: $(STAMP)
	@scripts/ensure-mosquitto

$(STAMP): pyproject.toml
	@scripts/ensure-python $(PYTHON)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

## The main job: broker, worker and a simulated fleet of 25 devices, with a live summary.
demo: bootstrap
	$(BIN)/coldchain up

## Benchmarks (on demand, not part of the tests); each rewrites its section of docs/performance.md.
bench: bootstrap
	$(BIN)/python -m benchmarks.simulator_fleet --devices 1000 --interval 10 --duration 120

## The whole suite: lint, types, then unit, functional and integration tests.
test: bootstrap lint typecheck
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
