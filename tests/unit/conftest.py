"""Unit tests drive the pure core and small helpers with plain values: no database.

A test that needs one belongs in ``tests/integration``, where it also runs on PostgreSQL;
asking for a database here fails at once, so the habit checks itself.
"""

from __future__ import annotations

import pytest


@pytest.fixture
def database_url() -> str:
    pytest.fail("unit tests use no database: move this test to tests/integration")
