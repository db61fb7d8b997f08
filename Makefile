# ECS Scheduler — everything installs into a local virtualenv (.venv), from the hashed lock.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
LOCK := requirements/dev.txt
RUNTIME_LOCK := requirements/runtime.txt
COMPILE = $(BIN)/uv pip compile pyproject.toml --universal --python-version 3.11 --generate-hashes --quiet

.PHONY: install lock run reset test lint unit bench clean

install: $(STAMP)

# The locked dependencies (every file checked against its hash), then the project itself
# without dependencies: a requirement missing from the lock shows in `pip check`, and
# tests/deploy/test_lock.py fails until `make lock` is run.
$(STAMP): pyproject.toml $(LOCK)
	@echo "Installing into $(VENV) from $(LOCK) (the first run downloads every locked package)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --progress-bar on --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --no-deps -e .
	@$(BIN)/python -m pip check >/dev/null || echo "warning: pyproject.toml needs packages $(LOCK) lacks: run 'make lock'" >&2
	touch $(STAMP)

# Regenerate both locks from pyproject.toml (needs PyPI; a few seconds with uv).
lock: $(BIN)/uv
	$(COMPILE) --extra dev -o $(LOCK)
	$(COMPILE) --extra elasticsearch --extra opensearch -o $(RUNTIME_LOCK)

$(BIN)/uv:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install 'uv>=0.5,<1'

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: install
	$(BIN)/pytest

test: lint unit

run: install
	$(BIN)/python -m ecs_scheduler.local

# Local data only (the SQLite jobs and runs of `make run`); .venv stays.
reset:
	rm -rf data

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache data
