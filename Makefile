# quarters: `make run` serves the map, `make test` runs the tests. Both set up what is missing.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export QUARTERS_DATA_DIR ?= $(abspath ../shared/data)

.PHONY: run test setup system bench lint clean stop

run: setup
	$(BIN)/quarters db start
	$(BIN)/quarters data load
	$(BIN)/quarters serve

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

setup: system $(VENV)/.installed web/node_modules/.installed

system:
	@scripts/install-system.sh

$(VENV)/.installed: pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[analysis,dev]"
	touch $@

web/node_modules/.installed: web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund --loglevel=error
	touch $@

bench: setup
	@scripts/install-system.sh --bench
	$(BIN)/python bench/run_all.py

lint: setup
	$(BIN)/ruff check src tests

stop:
	-$(BIN)/quarters db stop

clean: stop
	rm -rf $(VENV) web/node_modules .quarters
