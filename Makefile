# One verb per target. `make serve` and `make test` install what is missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: serve test bench lint install system-deps clean

$(STAMP): pyproject.toml
	@echo "QuackML: installing dependencies into $(VENV) (about 2 minutes the first time) ..."
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@$(BIN)/python -m pip install --quiet -e '.[test,dev]'
	@touch $(STAMP)
	@echo "QuackML: dependencies installed"

install: $(STAMP)

# Debian packages the tests drive: psql (postgresql-client), pgjdbc and javac,
# unixODBC with psqlODBC; bench/wire.py compares against a throwaway
# PostgreSQL 15 (postgresql: initdb, pg_ctl).
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

serve: $(STAMP)
	@echo "QuackML: starting the server (Ctrl-C stops it)"
	@$(BIN)/quackml serve

test: $(STAMP) system-deps
	$(BIN)/python -m pytest

bench: $(STAMP) system-deps
	$(BIN)/python bench/automl.py
	$(BIN)/python bench/inference.py
	$(BIN)/python bench/wire.py
	$(BIN)/python bench/load.py

lint: $(STAMP)
	$(BIN)/ruff check quackml server catalog automl inference tests bench
	$(BIN)/mypy

clean:
	rm -rf $(VENV) data/quackml.duckdb data/models
