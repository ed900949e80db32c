# Gozon: `make run` starts the whole system locally, `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint fmt clean bench chaos browser-deps prometheus-deps compose-test

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: install Python 3.11, or run 'docker compose up --build' instead"; exit 1; }
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

# The compose test (tests/compose/): a Docker engine, a Compose v2+ CLI and the stand-in base images, got or built
# when missing (cached in ${GOZON_CACHE_DIR:-~/.cache/gozon}), then `docker compose up --build --wait` driven through
# its published ports. It runs only with GOZON_COMPOSE_TEST=1, so it is not part of `make test` yet.
compose-test: $(STAMP)
	@GOZON_COMPOSE_TEST=1 $(PY) -m pytest tests/compose -q $(COMPOSE_TEST_ARGS)

clean:
	rm -rf .data
