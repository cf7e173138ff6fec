"""Every store test runs against SQLite and against PostgreSQL (when a test server is set)."""

from __future__ import annotations

import pytest

from fleetops.store import Store


@pytest.fixture
def store(any_store: Store) -> Store:
    return any_store
