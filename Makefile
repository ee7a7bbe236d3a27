# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
TARGET ?= hubspot

.PHONY: demo demo-webhook test test-slow test-browser bench bench-compare dev constraints clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Every install takes the versions the suite was last run with (constraints.txt).
$(VENV)/.installed: pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/pip install --quiet -c constraints.txt -e '.[sandbox]'
	touch $@

$(VENV)/.installed-test: pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/pip install --quiet -c constraints.txt -e '.[sandbox,test]'
	touch $@ $(VENV)/.installed

## Run daily_sync for yesterday through Dagster against the sandbox emulators (SQLite state).
demo: $(VENV)/.installed
	$(BIN)/python -m sandbox.demo --target $(TARGET)

## One signed AgentClara webhook through the receiver, the sensor and webhook_sync, against the sandbox.
demo-webhook: $(VENV)/.installed
	$(BIN)/python -m sandbox.demo_webhook

## Install what the tests need and run them (what .ci/run calls).
test: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q

## The slow suite (large loads), not part of CI.
test-slow: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q -m slow

## The Dagster UI in a real browser (installs Debian's chromium if missing).
test-browser: $(VENV)/.installed-test
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium)
	$(BIN)/pip install --quiet -c constraints.txt -e '.[sandbox,test,browser]'
	$(BIN)/python -m pytest -q -m browser

## Benchmarks against the sandbox; figures go into the README.
bench: $(VENV)/.installed
	$(BIN)/python -m bench.run

## This project against dlt and a hand-written loop, same emulators and limits (about 5 min; --large: 200,000).
## dlt goes into its own venv, .venv-bench (the `bench` extra), created on first use.
bench-compare: $(VENV)/.installed
	$(BIN)/python -m bench.compare $(ARGS)

## The Dagster UI on the project, against the sandbox.
dev: $(VENV)/.installed-test
	$(BIN)/python -m sandbox.demo --serve-ui

## Pin what is installed now as the tested versions (after a green `make test`).
constraints: $(VENV)/.installed-test
	(echo "# Tested versions: what make demo, make test and .ci/run install (pip -c)."; \
	 echo "# Regenerate after an upgrade that the whole suite passed: make constraints"; \
	 $(BIN)/pip freeze --exclude-editable | grep -v '^pip==') > constraints.txt

clean:
	rm -rf .crm_sync .pytest_cache
