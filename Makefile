# The two commands of the README: `make run` and `make test`. Each bootstraps .venv itself.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DATA_DIR ?= $(or $(TIAOKUAI_DATA_DIR),var)

.PHONY: run test lint typecheck unit integration bench bench-audit soak clean install

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## make run — seed the demo district into an empty data dir, then serve on :8000
run: $(STAMP)
	TIAOKUAI_DATA_DIR=$(DATA_DIR) $(BIN)/tiaokuai demo --if-empty
	TIAOKUAI_DATA_DIR=$(DATA_DIR) $(BIN)/tiaokuai serve

## make test — ruff, mypy and the whole pytest suite (PostgreSQL at 127.0.0.1:5432)
test: lint typecheck
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

integration: $(STAMP)
	$(BIN)/pytest -q tests/integration

## make bench — pipeline, raw ceilings, API and freshness figures (docs/performance.md)
bench: $(STAMP)
	$(BIN)/python -m bench.pipeline $(BENCH_ARGS)

## make soak — every role's clients for 300 s while the relay, workers, broker and a private
## PostgreSQL are killed, paused and restarted; checks nothing was lost (docs/reliability.md)
soak: $(STAMP)
	$(BIN)/python -m bench.soak $(SOAK_ARGS)

## make bench-audit — replay vs raw read, replay memory, state?at= latency, sealing cost (issue 4)
bench-audit: $(STAMP)
	$(BIN)/python -m bench.audit $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
