# circular-ledger: `make demo` and `make test` set everything up on a fresh machine (idempotent).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

.PHONY: setup demo test compile check-artifacts lint bench slither solhint gas-report clean

setup: .stamp-venv .stamp-npm .stamp-apt .stamp-console

# The venv is rebuilt only when pyproject.toml changes.
.stamp-venv: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[test]'
	touch $@

# npm ci installs exactly the lockfile's pins (solc-js, OpenZeppelin, Anvil, merkle-tree, digital-link.js).
.stamp-npm: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The console's browser code from the npm pins: ECharts bundled by esbuild, zxing-wasm's QR reader (not committed).
.stamp-console: .stamp-venv .stamp-npm scripts/console_assets.py api/static/console/src/charts.js
	$(PY) -m scripts.console_assets
	touch $@

# Debian's Chromium for the browser tests (Playwright drives it; it never downloads a browser of its own), and
# poppler-utils' pdftoppm, which renders the console's label sheets for the tests to decode.
.stamp-apt: Makefile
	(command -v chromium && command -v pdftoppm) >/dev/null || (apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium poppler-utils)
	touch $@

compile: setup
	$(PY) -m scripts.compile

check-artifacts: setup
	$(PY) -m scripts.compile --check

demo: setup
	$(VENV)/bin/circular demo

# import-linter first: an upward import (docs/architecture.md) fails before the suite runs.
test: setup
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m pytest -n 2 --dist loadgroup -q

lint: setup
	$(VENV)/bin/ruff check circular ledger api materials scripts tests
	$(VENV)/bin/mypy circular ledger materials api
	$(VENV)/bin/lint-imports --no-cache

# wrk (Debian) puts the read load on the API from its own process in `make bench`.
.stamp-apt-bench:
	command -v wrk >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk)
	touch $@

bench: setup .stamp-apt-bench
	$(PY) -m scripts.bench

slither: setup
	$(PY) -m scripts.slither_check

# solhint:recommended minus the style/gas rules .solhint.json turns off (why: docs/security.md); any finding fails.
solhint: setup
	node_modules/.bin/solhint --disc --noPoster --max-warnings 0 'contracts/src/**/*.sol'

gas-report: setup
	$(PY) -m scripts.gas_report

clean:
	rm -rf $(VENV) node_modules .stamp-* build demo-out .circular
