"""Fixtures shared by every tier: a clean AWS environment, a simulator, a migrated database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fleetops.ratelimit import QUOTAS
from fleetops.store import Store

REGION = "us-east-1"


@pytest.fixture(autouse=True)
def _clean_aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Dummy credentials and region; nothing from the machine's AWS config."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("FLEETOPS_DB", str(tmp_path / "default.db"))
    for name in ("AWS_PROFILE", "AWS_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_WORKSPACES"):
        monkeypatch.delenv(name, raising=False)
    QUOTAS.clear()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "fleetops.db"


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(db_path)
    try:
        yield opened
    finally:
        await opened.close()
