# zhengming: `make demo` runs the main job, `make test` the whole suite on real Kafka and PostgreSQL.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
ZM     := $(BIN)/zhengming
STAMP  := $(VENV)/.installed
# Debian packages the documents need: CJK fonts, pdftotext/pdftoppm (tests), WeasyPrint's Pango.
# Chromium: the console's browser tests (driven by Playwright, never its own browser download).
# Prometheus: the e2e test of /metrics scrapes the four services with a real server on loopback.
DEB_PACKAGES := fonts-noto-cjk poppler-utils libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 chromium prometheus
# The scripts the console serves itself, from npm at build time (console/assets/package-lock.json).
ASSETS := console/static/vendor/echarts.min.js
# The official AsyncAPI parser the tests validate docs/asyncapi with (tests/asyncapi-parser/package-lock.json).
ASYNCAPI_PARSER := tests/asyncapi-parser/node_modules/.installed

# The API viewers (Swagger UI, AsyncAPI) the services and `zhengming docs serve` serve themselves,
# from npm at build time (docs/viewers/package-lock.json): the docs work without the internet.
DOCS_ASSETS := shared/static/vendor/swagger-ui-bundle.js

.PHONY: install system console-assets asyncapi-parser docs-assets up down status test test-cluster unit lint lock bench demo demo-down chaos clean

# The exact versions and hashes of every package: requirements/dev.lock here (the tests, the local
# tooling, the bench), requirements/runtime.lock in the image. `make lock` after a change of
# pyproject.toml's dependencies.
LOCKS := requirements/runtime.lock requirements/dev.lock

$(STAMP): pyproject.toml $(LOCKS)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q --require-hashes -r requirements/dev.lock
	$(BIN)/pip install -q --no-deps -e .
	touch $(STAMP)

lock:
	@[ -x $(BIN)/uv ] || { $(PYTHON) -m venv $(VENV) && $(BIN)/pip install -q 'uv>=0.9,<0.10'; }
	$(BIN)/uv pip compile -q pyproject.toml --python-version 3.11 --generate-hashes -o requirements/runtime.lock
	$(BIN)/uv pip compile -q pyproject.toml --python-version 3.11 --generate-hashes \
	  --extra dev --extra local --extra bench --extra lock -o requirements/dev.lock

install: $(STAMP) $(ASSETS) $(DOCS_ASSETS)

$(ASSETS): console/assets/package.json console/assets/package-lock.json
	cd console/assets && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	mkdir -p console/static/vendor
	cp console/assets/node_modules/echarts/dist/echarts.min.js $(ASSETS)

console-assets: $(ASSETS)

$(ASYNCAPI_PARSER): tests/asyncapi-parser/package.json tests/asyncapi-parser/package-lock.json
	cd tests/asyncapi-parser && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	touch $(ASYNCAPI_PARSER)

asyncapi-parser: $(ASYNCAPI_PARSER)

$(DOCS_ASSETS): docs/viewers/package.json docs/viewers/package-lock.json
	cd docs/viewers && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	mkdir -p shared/static/vendor
	cp docs/viewers/node_modules/swagger-ui-dist/swagger-ui.css \
	   docs/viewers/node_modules/swagger-ui-dist/favicon-32x32.png shared/static/vendor/
	cp docs/viewers/node_modules/@asyncapi/react-component/browser/standalone/index.js \
	   shared/static/vendor/asyncapi-standalone.js
	cp docs/viewers/node_modules/@asyncapi/react-component/styles/default.min.css \
	   shared/static/vendor/asyncapi.css
	cp docs/viewers/node_modules/swagger-ui-dist/swagger-ui-bundle.js $(DOCS_ASSETS)

docs-assets: $(DOCS_ASSETS)

# Installs the missing Debian packages (as root, or with sudo); names them when it cannot.
system:
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if ! command -v apt-get >/dev/null; then echo "install these Debian packages: $$missing"; exit 0; fi; \
	  sudo=; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	  echo "installing $$missing"; \
	  ( $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq $$missing ) \
	    || echo "could not install; install these Debian packages: $$missing"; \
	fi

up: $(STAMP) $(ASSETS) $(DOCS_ASSETS)
	$(ZM) up

down: $(STAMP)
	$(ZM) down

status: $(STAMP)
	$(ZM) status

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy shared services zhengming console tests bench examples

unit: $(STAMP) $(ASYNCAPI_PARSER)
	$(BIN)/pytest -q tests/unit

# Starts Kafka and PostgreSQL unless running, runs every test, stops what it started (also on failure);
# then the replicated-broker tests on a cluster stack of their own (test-cluster).
test: $(STAMP) $(ASSETS) $(ASYNCAPI_PARSER) $(DOCS_ASSETS) system
	$(ZM) with-infra -- $(BIN)/pytest -q -p no:cacheprovider tests
	$(MAKE) --no-print-directory test-cluster

# A broker leader SIGKILLed and restarted under load on a 3-node KRaft cluster of its own
# (.local/cluster/stack: Kafka 24092-24097, PostgreSQL 18532, services 9401-9404), which the tests
# start and stop; figures in .local/cluster/stack/broker-leader-kill.json.
test-cluster: $(STAMP)
	$(BIN)/pytest -q -p no:cacheprovider tests/cluster

# Every figure with its same-run baseline, on a fresh stack of its own (.local/bench/stack, ports
# 21092, 17432, 9201-9204) that it starts and stops; e.g. `make bench ARGS=--quick`.
bench: $(STAMP)
	$(BIN)/python -m bench.run $(ARGS)

# The Lishui Q1 2023 scenario on a fresh stack of its own (.local/demo/stack, ports 20092, 16432,
# 9101-9104), stopped afterwards; e.g. `make demo ARGS="--scale 10"` or `ARGS=--keep`.
demo: $(STAMP) $(ASSETS) system
	$(ZM) demo $(ARGS)

# A failure rehearsal on a fresh stack of its own (.local/chaos/stack, ports 25092, 18632,
# 9501-9504): 300 seeded cases clean, then again with a service SIGKILLed every 10 s, the broker
# and PostgreSQL restarted once; compares both and exits 1 on a difference. `ARGS="--cases 30 --kills 5"`.
chaos: $(STAMP) $(ASSETS) system
	$(ZM) chaos $(ARGS)

# Stops a demo stack left running with --keep.
demo-down: $(STAMP)
	@if [ -f .local/demo/stack/demo.env ]; then set -a; . .local/demo/stack/demo.env; set +a; $(ZM) down; \
	else echo "no demo stack"; fi

clean: down demo-down
	rm -rf .local console/static/vendor console/assets/node_modules tests/asyncapi-parser/node_modules \
	  shared/static/vendor docs/viewers/node_modules
