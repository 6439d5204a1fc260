# Téléconsult — the two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test check lint typecheck demo migrate bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## Set up, migrate and start the server on the embedded default (SQLite + outbox in ./var).
run: $(STAMP)
	@echo "Demo accounts: run 'make demo' in another terminal (it prints their passwords)."
	$(PY) -m server serve

## Seed a demo practice (a doctor, a nurse, a secretary) and print their sign-in details.
demo: $(STAMP)
	$(PY) -m server demo

migrate: $(STAMP)
	$(PY) -m server migrate

## Set up and run the whole suite (SQLite and PostgreSQL; browser tests when Chromium is there).
test: $(STAMP)
	$(PY) -m pytest

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(VENV)/bin/lint-imports

typecheck: $(STAMP)
	$(PY) -m mypy

## Lint, types and tests: what CI runs.
check: lint typecheck test

bench: $(STAMP)
	$(PY) bench/bench_auth.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
