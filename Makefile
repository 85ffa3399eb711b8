# Two front-door commands: `make run` brings the hub up with the demo site; `make test` runs
# the test suite. Each installs what it needs into .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install run demo test

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/.installed

run: install
	$(BIN)/hub serve

demo: install
	$(BIN)/hub demo

# The console's browser tests drive Debian's Chromium (never a downloaded one).
test: install
	command -v chromium >/dev/null || (apt-get update && apt-get install -y --no-install-recommends chromium)
	$(BIN)/python -m pytest
