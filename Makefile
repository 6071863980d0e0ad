# One verb per target. `make serve` and `make test` install what is missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: serve test bench lint install system-deps clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,dev]'
	@touch $(STAMP)

install: $(STAMP)

# Debian packages the tests drive: psql (postgresql-client).
system-deps:
	@command -v psql >/dev/null 2>&1 || { \
	  echo "installing Debian package postgresql-client (psql)"; \
	  apt-get update -qq && apt-get install -y -qq postgresql-client; }

serve: $(STAMP)
	$(BIN)/quackml serve

test: $(STAMP) system-deps
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python bench/automl.py

lint: $(STAMP)
	$(BIN)/ruff check server catalog automl inference tests bench
	$(BIN)/mypy

clean:
	rm -rf $(VENV) data/quackml.duckdb data/models
