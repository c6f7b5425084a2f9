# The two commands of the README: `make run` and `make test`.
# Both set everything up first (a virtualenv in .venv, the npm packages in js/).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DATA ?= headwater_data

.PHONY: setup run test bench load lint mutate

COMPONENTS_APP := tests/e2e/components_app

DASHBOARD := js/dashboard

# apt-get as root, else through sudo when there is one.
SUDO := $(shell [ "$$(id -u)" = 0 ] || command -v sudo)

setup: $(VENV)/.installed js/node_modules/.installed udf/js/gen/web_polyfills.js \
	$(COMPONENTS_APP)/node_modules/.installed $(DASHBOARD)/dist/index.html
	@# The dashboard's browser tests drive Debian's Chromium (never a downloaded build).
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium; }

js/node_modules/.installed: js/package.json js/package-lock.json
	cd js && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The end-to-end app built from npm components (its own pinned convex and components).
$(COMPONENTS_APP)/node_modules/.installed: $(COMPONENTS_APP)/package.json $(COMPONENTS_APP)/package-lock.json
	cd $(COMPONENTS_APP) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The web dashboard (React, built by Vite); `headwater serve` serves its dist/.
$(DASHBOARD)/node_modules/.installed: $(DASHBOARD)/package.json $(DASHBOARD)/package-lock.json
	cd $(DASHBOARD) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(DASHBOARD)/dist/index.html: $(DASHBOARD)/node_modules/.installed $(DASHBOARD)/index.html \
		$(DASHBOARD)/vite.config.ts $(DASHBOARD)/tsconfig.json $(shell find $(DASHBOARD)/src -type f)
	cd $(DASHBOARD) && npm run --silent build

# The runtime's Web classes (streams, URL, Blob...), bundled from npm packages.
udf/js/gen/web_polyfills.js: js/node_modules/.installed js/runtime/build.mjs js/runtime/web_polyfills.mjs
	cd js && node runtime/build.mjs

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

run: setup
	$(VENV)/bin/headwater serve --data $(DATA) --functions examples/chat/convex

CODE := engine log projections gateway udf tests bench

test: setup
	$(VENV)/bin/ruff check $(CODE)
	$(VENV)/bin/ruff format --check $(CODE)
	$(PY) -m pytest -q -n 2

bench: setup
	$(PY) -m bench

# The load generator: its own server under mixed traffic, a report in bench/load/report.html.
load: setup
	$(PY) -m bench.load

# Mutation testing of the core (engine's committer, read sets, key encoding, query
# executor and transaction, log/, projections/subscriptions.py): each mutant is a
# small planted bug the tests should catch. Bounded by MUTATE_MINUTES; a later run
# resumes where the last one stopped (FRESH=1 starts over). Not part of `make test`.
MUTATE_MINUTES ?= 30
mutate: setup
	$(PY) -m pip install --quiet 'mutmut>=3.8,<4'
	$(if $(FRESH),rm -rf mutants)
	-timeout --signal=INT $(MUTATE_MINUTES)m $(VENV)/bin/mutmut run --max-children 2
	$(PY) tests/mutation_summary.py mutants

lint: setup
	$(VENV)/bin/ruff check $(CODE)
	$(VENV)/bin/ruff format --check $(CODE)
