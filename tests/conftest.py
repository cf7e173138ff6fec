"""Fixtures shared by every tier: a clean AWS environment, a simulator, a migrated database.

``store`` is a SQLite file. ``any_store`` (and ``db_url``) run a test once per backend: SQLite,
and PostgreSQL when ``FLEETOPS_TEST_POSTGRES`` names a server (a fresh schema per test).

Each pytest-xdist worker has a database of its own on that server, made at its start and dropped
at its end: the schemas of its tests live there, and nothing one worker leaves behind is seen by
another.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

from fleetops.aws.ratelimit import QUOTAS
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


# -- PostgreSQL ---------------------------------------------------------------------------------

POSTGRES_ENV = "FLEETOPS_TEST_POSTGRES"
NO_POSTGRES = (
    f"{POSTGRES_ENV} is not set: no PostgreSQL server to test against "
    "(.ci/run starts one; or set it to postgresql://USER@127.0.0.1:PORT/DB)"
)


def postgres_admin_url() -> str | None:
    """The test server's URL, or None when none is configured."""
    return os.environ.get(POSTGRES_ENV) or None


def _sync_url(url: str) -> sa.URL:
    return sa.make_url(url).set(drivername="postgresql+psycopg")


@contextmanager
def fresh_postgres_schema(admin_url: str) -> Iterator[str]:
    """A new, empty schema on the test server, as a URL whose search_path is that schema;
    dropped (with everything in it) afterwards."""
    name = "t_" + secrets.token_hex(6)
    engine = sa.create_engine(_sync_url(admin_url), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {name}")
        url = sa.make_url(admin_url).update_query_dict({"options": f"-csearch_path={name}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with engine.connect() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {name} CASCADE")
        engine.dispose()


@contextmanager
def fresh_postgres_database(admin_url: str, prefix: str = "fleetops_t_") -> Iterator[str]:
    """A new, empty database on the test server (its URL), named ``prefix`` and a random
    suffix; dropped afterwards (with FORCE: connections still open are closed)."""
    name = prefix + secrets.token_hex(6)
    engine = sa.create_engine(_sync_url(admin_url), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
        yield sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with engine.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        engine.dispose()


@pytest.fixture(scope="session")
def postgres_worker_url() -> Iterator[str | None]:
    """This test process's own database on the test server (None when none is configured):
    ``fleetops_<xdist worker>_<random>``, dropped when the session ends."""
    admin = postgres_admin_url()
    if admin is None:
        yield None
        return
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    with fresh_postgres_database(admin, prefix=f"fleetops_{worker}_") as url:
        yield url


@pytest.fixture(scope="session")
def postgres_url(postgres_worker_url: str | None) -> str:
    """The test server, at this worker's database (skips the test when none is configured)."""
    if postgres_worker_url is None:
        pytest.skip(NO_POSTGRES)
    return postgres_worker_url


@pytest.fixture
def postgres_db(postgres_url: str) -> Iterator[str]:
    """A fresh database on the test server, for tests that need a whole database."""
    with fresh_postgres_database(postgres_url) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Where a fresh store lives: a SQLite file, then a fresh PostgreSQL schema (in this
    worker's database)."""
    if request.param == "sqlite":
        yield str(tmp_path / "fleetops.db")
        return
    admin = request.getfixturevalue("postgres_url")  # skips without a server
    with fresh_postgres_schema(admin) as url:
        yield url


@pytest.fixture
async def any_store(db_url: str) -> AsyncIterator[Store]:
    """A migrated store on every backend (the test runs once per backend)."""
    opened = await Store.open(db_url)
    try:
        yield opened
    finally:
        await opened.close()
