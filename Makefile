# qmail: `make run` to try it, `make test` to check it.  Needs only python3 (>= 3.11).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
QMAIL  := $(VENV)/bin/qmail
CONFIG := $(if $(wildcard qmail.toml),--config qmail.toml,)
# The PostgreSQL run of the suite; CI=true makes a missing server an error, not a skip.
PG_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test

.PHONY: run test test-sqlite test-postgres lint bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.dev: $(VENV)/.installed
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

run: $(VENV)/.installed
	$(QMAIL) init $(CONFIG)
	exec $(QMAIL) serve $(CONFIG)

test: test-sqlite test-postgres

test-sqlite: $(VENV)/.dev
	$(PY) -m pytest --cov=qmail.core --cov-report=term:skip-covered --cov-fail-under=95

test-postgres: $(VENV)/.dev
	@if $(PY) .ci/postgres_available.py "$(PG_URL)"; then \
		QMAIL_TEST_DATABASE_URL="$(PG_URL)" $(PY) -m pytest tests/integration; \
	elif [ "$$CI" = "true" ]; then \
		echo "CI: PostgreSQL at $(PG_URL) is not reachable; the PostgreSQL suite cannot run" >&2; exit 1; \
	else \
		echo "*** PostgreSQL at $(PG_URL) not reachable: PostgreSQL suite NOT run ***" >&2; \
	fi

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check qmail tests bench
	$(VENV)/bin/ruff format --check qmail tests bench
	$(VENV)/bin/mypy --strict qmail/core

bench: $(VENV)/.dev
	$(PY) bench/ingest.py

clean:
	rm -rf $(VENV) var build *.egg-info
