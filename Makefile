# Gozon: `make run` starts the whole system locally, `make test` runs the whole suite.
SHELL := /bin/bash
# The newest of Python 3.13, 3.12 and 3.11 that runs here (a pyenv shim of a version not selected does not);
# PYTHON=... overrides. VENV=... keeps one environment per interpreter.
PYTHON ?= $(firstword $(foreach python,python3.13 python3.12 python3.11,$(shell $(python) -c '' >/dev/null 2>&1 && echo $(python))))
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint fmt clean bench chaos browser-deps prometheus-deps compose-test python-check

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "no python3.13, python3.12 or python3.11 found: install one, or run 'docker compose up --build' instead"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $(STAMP)

run: $(STAMP)
	@$(PY) -m stack.run

test: $(STAMP) browser-deps prometheus-deps
	@$(PY) -m pytest --cov --cov-report=term:skip-covered --cov-report=xml:.data/coverage.xml --cov-fail-under=80 $(PYTEST_ARGS)

lint: $(STAMP)
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .

fmt: $(STAMP)
	@$(VENV)/bin/ruff check --fix .
	@$(VENV)/bin/ruff format .

# Debian's chromium for the browser test, which skips without it. Installed only when missing and running as root (CI).
browser-deps:
	@if ! command -v chromium >/dev/null && [ "$$(id -u)" = 0 ]; then \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
			|| echo "chromium could not be installed: the browser test will be skipped"; \
	fi

# Debian's Prometheus and promtool for the metrics test, which skips without them; installed the same way.
prometheus-deps:
	@if ! command -v prometheus >/dev/null && [ "$$(id -u)" = 0 ]; then \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null; } \
			|| echo "prometheus could not be installed: the Prometheus test will be skipped"; \
	fi

bench: $(STAMP)
	@$(PY) -m bench.run

chaos: $(STAMP)
	@$(PY) -m tests.chaos.run --long

# The compose test alone (tests/compose/, also part of `make test`): a Docker engine, a Compose v2+ CLI and the
# stand-in base images, got or built when missing (cached in ${GOZON_CACHE_DIR:-~/.cache/gozon}), then
# `docker compose up --build --wait` driven through its published ports.
compose-test: $(STAMP)
	@$(PY) -m pytest tests/compose -q $(COMPOSE_TEST_ARGS)

# Another interpreter, in an environment of its own: the unit tests and `make run` answering and stopping.
# `make python-check PYTHON=python3.12` (CI runs it for each supported Python other than the one of `make test`).
python-check:
	@$(MAKE) --no-print-directory .venv-$(notdir $(PYTHON))/.installed PYTHON=$(PYTHON) VENV=.venv-$(notdir $(PYTHON))
	@.venv-$(notdir $(PYTHON))/bin/python -m pytest -q -p no:cacheprovider tests/unit tests/e2e/test_make_run.py

clean:
	rm -rf .data
