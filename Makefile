# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
TARGET ?= hubspot

.PHONY: demo test test-slow test-browser bench dev clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[sandbox]'
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[sandbox,test]'
	touch $@ $(VENV)/.installed

## Run daily_sync for yesterday through Dagster against the sandbox emulators (SQLite state).
demo: $(VENV)/.installed
	$(BIN)/python -m sandbox.demo --target $(TARGET)

## Install what the tests need and run them (what .ci/run calls).
test: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q

## The slow suite (large loads), not part of CI.
test-slow: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q -m slow

## The Dagster UI in a real browser (installs Debian's chromium if missing).
test-browser: $(VENV)/.installed-test
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium)
	$(BIN)/pip install --quiet -e '.[sandbox,test,browser]'
	$(BIN)/python -m pytest -q -m browser

## Benchmarks against the sandbox; figures go into the README.
bench: $(VENV)/.installed
	$(BIN)/python -m bench.run

## The Dagster UI on the project, against the sandbox.
dev: $(VENV)/.installed-test
	$(BIN)/python -m sandbox.demo --serve-ui

clean:
	rm -rf .crm_sync .pytest_cache
