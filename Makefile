# One verb per target. `make serve` and `make test` install what is missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# dbt runs from a venv of its own: dbt-common pins python-dateutil<3, pandas has 4
DBT_VENV  := .venv-dbt
DBT_STAMP := $(DBT_VENV)/.installed-stamp
NODE_DIR  := tests/clients/node
NODE_STAMP := $(NODE_DIR)/node_modules/.package-lock.json

.PHONY: serve test bench lint install system-deps client-deps clean

$(STAMP): pyproject.toml
	@echo "QuackML: installing dependencies into $(VENV) (about 2 minutes the first time) ..."
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@$(BIN)/python -m pip install --quiet -e '.[test,dev,ray]'
	@touch $(STAMP)
	@echo "QuackML: dependencies installed"

install: $(STAMP)

# Client programs the tests drive that are not Python test dependencies:
# node-postgres from the committed package-lock.json (npm ci), dbt-core with
# dbt-postgres in their own venv (tests/clients/dbt/requirements.txt).
$(NODE_STAMP): $(NODE_DIR)/package.json $(NODE_DIR)/package-lock.json
	cd $(NODE_DIR) && npm ci --no-audit --no-fund --loglevel=error

$(DBT_STAMP): tests/clients/dbt/requirements.txt
	@test -x $(DBT_VENV)/bin/python || $(PYTHON) -m venv $(DBT_VENV)
	$(DBT_VENV)/bin/python -m pip install --quiet -r tests/clients/dbt/requirements.txt
	@touch $(DBT_STAMP)

client-deps: system-deps $(NODE_STAMP) $(DBT_STAMP)

# Debian packages the tests drive: psql (postgresql-client), pgjdbc and javac,
# unixODBC with psqlODBC, node and npm (node-postgres, axe-core), chromium (the web
# console's browser tests, tests/test_console.py), docker-compose (`config` checks
# docker-compose.yml) and tini (the services' init: tests/test_container.py);
# bench/wire.py compares against a throwaway PostgreSQL 15 (postgresql: initdb, pg_ctl).
system-deps:
	@command -v psql >/dev/null 2>&1 || { \
	  echo "installing Debian package postgresql-client (psql)"; \
	  apt-get update -qq && apt-get install -y -qq postgresql-client; }
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  echo "installing Debian package postgresql (server for bench/wire.py)"; \
	  apt-get update -qq && apt-get install -y -qq postgresql; }
	@test -f /usr/share/java/postgresql.jar || { \
	  echo "installing Debian package libpostgresql-jdbc-java (pgjdbc for the JDBC test)"; \
	  apt-get update -qq && apt-get install -y -qq libpostgresql-jdbc-java; }
	@command -v javac >/dev/null 2>&1 || { \
	  echo "installing Debian package default-jdk-headless (javac for the JDBC test)"; \
	  apt-get update -qq && apt-get install -y -qq default-jdk-headless; }
	@odbcinst -q -d -n "PostgreSQL Unicode" >/dev/null 2>&1 || { \
	  echo "installing Debian packages unixodbc odbc-postgresql (ODBC test)"; \
	  apt-get update -qq && apt-get install -y -qq unixodbc odbc-postgresql; }
	@command -v npm >/dev/null 2>&1 || { \
	  echo "installing Debian packages nodejs npm (node-postgres test)"; \
	  apt-get update -qq && apt-get install -y -qq nodejs npm; }
	@test -x /usr/bin/chromium || { \
	  echo "installing Debian package chromium (browser tests of the web console)"; \
	  apt-get update -qq && apt-get install -y -qq chromium; }
	@command -v docker-compose >/dev/null 2>&1 || { \
	  echo "installing Debian package docker-compose (validates docker-compose.yml; no engine)"; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends docker-compose; }
	@command -v tini >/dev/null 2>&1 || { \
	  echo "installing Debian package tini (the init of the compose services, run natively)"; \
	  apt-get update -qq && apt-get install -y -qq tini; }

serve: $(STAMP)
	@echo "QuackML: starting the server (Ctrl-C stops it)"
	@$(BIN)/quackml serve

# two test processes, each module whole in one (tests share a module's server)
test: $(STAMP) client-deps
	$(BIN)/python -m pytest -n 2 --dist loadfile

bench: $(STAMP) system-deps
	$(BIN)/python bench/automl.py
	$(BIN)/python bench/inference.py
	$(BIN)/python bench/wire.py
	$(BIN)/python bench/load.py
	$(BIN)/python bench/forecast.py --latency-series 1000

lint: $(STAMP)
	$(BIN)/ruff check quackml server catalog automl inference tests bench
	$(BIN)/mypy

clean:
	rm -rf $(VENV) $(DBT_VENV) $(NODE_DIR)/node_modules data/quackml.duckdb data/models
