# Short names for the README's commands. Everything installs into .venv from PyPI (and Chromium from Debian).
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# Two stamps: `make run` needs the runtime dependencies only; tests, lint and bench add the dev extras.
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: run test install browser lint fmt bench clean

run: $(RUN_STAMP)  ## serve at http://127.0.0.1:8000 (embedded PostgreSQL unless DATABASE_URL is set)
	$(BIN)/signalboard serve

test: $(DEV_STAMP) browser  ## the whole test suite (TEST_DATABASE_URL, else an embedded server)
	$(BIN)/pytest $(PYTEST_ARGS)

install: $(DEV_STAMP)  ## everything a developer needs (runtime and dev extras)

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@ $(RUN_STAMP)

browser:  ## headless Chromium for the browser tests (Debian package)
	@command -v chromium >/dev/null 2>&1 || test -x /usr/bin/chromium || \
	  { echo "installing Debian's chromium for the browser tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

lint: $(DEV_STAMP)
	$(BIN)/ruff check app tests bench migrations
	$(BIN)/ruff format --check app tests bench migrations
	$(BIN)/mypy

fmt: $(DEV_STAMP)
	$(BIN)/ruff format app tests bench migrations
	$(BIN)/ruff check --fix app tests bench migrations

bench: $(DEV_STAMP)  ## benchmark against DATABASE_URL (see docs/benchmarks.md)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
