# The README's two commands: `make demo` and `make test`. Both build .venv from scratch if needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint typecheck unit chaos bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-dev: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e '.[dev]'
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/syncer demo

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check syncer tests bench
	$(BIN)/ruff format --check syncer tests bench

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy syncer

# Two workers (tests mostly wait on sockets and subprocesses), one test file per worker at a
# time; the tests that restart the shared PostgreSQL server run alone afterwards.
PYTEST_WORKERS ?= 2
unit: $(VENV)/.installed-dev
	tools/with-postgres.sh sh -c '$(BIN)/pytest -q -n $(PYTEST_WORKERS) --dist loadfile -m "not slow and not serial" && $(BIN)/pytest -q -m "serial and not slow"'

test: lint typecheck unit

chaos: $(VENV)/.installed-dev
	tools/with-postgres.sh $(BIN)/pytest -q -m slow -p no:cacheprovider

bench: $(VENV)/.installed-dev
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
