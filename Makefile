# qmail: `make run` to try it, `make test` to check it.  Needs only python3 (>= 3.11).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
QMAIL  := $(VENV)/bin/qmail
CONFIG := $(if $(wildcard qmail.toml),--config qmail.toml,)
# The PostgreSQL run of the suite; CI=true makes a missing server an error, not a skip.
PG_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
# `make lock` resolves for every platform and for the oldest Python we support.
LOCK_FLAGS := --universal --python-version 3.11 --generate-hashes --quiet \
	--custom-compile-command "make lock"

.PHONY: run check test test-sqlite test-postgres lint style types lock lock-upgrade bench clean

# The venv holds exactly the lock's versions (uv when it can be had, else pip; see
# .ci/install.py).  The dev lock is a superset of the runtime lock, with the same versions.
$(VENV)/.installed: requirements.lock pyproject.toml
	$(PYTHON) .ci/install.py $(VENV) requirements.lock
	rm -f $(VENV)/.dev
	touch $@

$(VENV)/.dev: requirements-dev.lock pyproject.toml
	$(PYTHON) .ci/install.py $(VENV) requirements-dev.lock
	touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	$(QMAIL) init $(CONFIG)
	exec $(QMAIL) serve $(CONFIG)

# Everything CI checks: style, types, then the tests.  `make -k check` (as CI runs it)
# goes on past a failure, so one run reports all three.
check: style types test

# The two passes run side by side: much of each is spent waiting on servers, browsers and
# disks, so together they take little more than the longer one.  Each pass's output is
# printed whole when it ends.
test: $(VENV)/.dev
	$(MAKE) --no-print-directory -j2 --output-sync=target test-sqlite test-postgres

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

lint: style types

style: $(VENV)/.dev
	$(VENV)/bin/ruff check qmail tests bench .ci
	$(VENV)/bin/ruff format --check qmail tests bench .ci

# The whole package; strict on qmail/core (pyproject.toml [tool.mypy]).
types: $(VENV)/.dev
	$(VENV)/bin/mypy qmail

# Write requirements.lock and requirements-dev.lock from pyproject.toml with uv, keeping
# the versions already pinned where they still fit; `make lock-upgrade` takes the newest.
lock: $(VENV)/.installed
	@test -x $(VENV)/bin/uv || { echo "make lock needs uv in $(VENV) (see .ci/install.py)" >&2; exit 1; }
	$(VENV)/bin/uv pip compile pyproject.toml --extra dev $(LOCK_FLAGS) $(UPGRADE) -o requirements-dev.lock
	$(VENV)/bin/uv pip compile pyproject.toml $(LOCK_FLAGS) -c requirements-dev.lock -o requirements.lock

lock-upgrade:
	$(MAKE) lock UPGRADE=--upgrade

bench: $(VENV)/.dev
	$(PY) bench/ingest.py

clean:
	rm -rf $(VENV) var build *.egg-info
