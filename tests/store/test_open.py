"""Which database ``--db`` names, and every way it can be wrong: one line, exit 2, nothing
written."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from fleetops.errors import StoreConfigError, StoreError
from fleetops.records import NewJob
from fleetops.store import Store
from fleetops.store.engine import SCHEMA_HEAD, parse_target


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sync_engine(url: str) -> sa.Engine:
    parsed = parse_target(url)
    driver = "postgresql+psycopg" if parsed.is_postgresql else "sqlite"
    return sa.create_engine(parsed.url.set(drivername=driver))


def tables_of(url: str) -> set[str]:
    engine = sync_engine(url)
    try:
        with engine.connect() as conn:
            return set(sa.inspect(conn).get_table_names())
    finally:
        engine.dispose()


# -- the URL forms (no connection made) ----------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "driver", "where"),
    [
        ("/var/lib/fleetops/f.db", "sqlite+aiosqlite", "/var/lib/fleetops/f.db"),
        ("sqlite:////var/lib/f.db", "sqlite+aiosqlite", "/var/lib/f.db"),
        ("sqlite+aiosqlite:///rel/f.db", "sqlite+aiosqlite", "rel/f.db"),
        ("postgresql://ops@db.example:5432/fleet", "postgresql+psycopg", None),
        ("postgres://ops@db.example:5432/fleet", "postgresql+psycopg", None),
        ("postgresql+psycopg://ops@db.example:5432/fleet", "postgresql+psycopg", None),
        ("postgresql+asyncpg://ops@db.example:5432/fleet", "postgresql+psycopg", None),
    ],
)
def test_url_forms(given: str, driver: str, where: str | None) -> None:
    target = parse_target(given)
    assert target.url.drivername == driver
    if where is not None:
        assert target.where == where and target.path == Path(where)
    else:
        assert target.is_postgresql and target.path is None
        assert target.where == "postgresql://ops@db.example:5432/fleet"


def test_a_password_never_appears_in_messages() -> None:
    target = parse_target("postgresql://ops:s3cret@db.example/fleet")
    assert "s3cret" not in target.where and target.url.password == "s3cret"


@pytest.mark.parametrize(
    ("given", "needle"),
    [
        ("mysql://ops@db.example/fleet", "unsupported database url scheme"),
        ("postgresql+pg8000://ops@db.example/fleet", "unsupported postgresql driver"),
        ("postgresql://ops@db.example:5432/", "no database name"),
        ("postgresql://ops@db.example:port/fleet", "malformed database url"),
        ("://nothing", "malformed database url"),
        ("  ", "empty database location"),
    ],
)
def test_bad_urls_are_refused_in_one_line(given: str, needle: str) -> None:
    with pytest.raises(StoreConfigError) as caught:
        parse_target(given)
    assert needle in str(caught.value).lower() and "\n" not in str(caught.value)
    assert caught.value.exit_code == 2


# -- both backends -------------------------------------------------------------------------------


async def test_open_at_head_is_idempotent_and_keeps_data(db_url: str) -> None:
    store = await Store.open(db_url)
    job = await store.create_job(
        NewJob(action="reboot", params={}, targets={}, options={}, region="us-east-1")
    )
    await store.close()
    store = await Store.open(db_url, create=False)
    try:
        assert (await store.get_job(job.id)).action == "reboot"
    finally:
        await store.close()


async def test_reading_never_creates_the_schema(db_url: str) -> None:
    with pytest.raises(StoreConfigError) as caught:
        await Store.open(db_url, create=False)
    message = str(caught.value)
    assert caught.value.exit_code == 2 and "\n" not in message
    assert "no fleetops database" in message or "no fleetops schema" in message
    if db_url.startswith("postgresql"):
        assert tables_of(db_url) == set()
    else:
        assert not Path(db_url).exists()


async def test_a_newer_schema_is_refused_never_migrated_down(db_url: str) -> None:
    store = await Store.open(db_url)
    await store.close()
    engine = sync_engine(db_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    try:
        for create in (True, False):
            with pytest.raises(StoreConfigError, match="newer than this fleetops") as caught:
                await Store.open(db_url, create=create)
            assert caught.value.exit_code == 2
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == (
                "9999"
            )
    finally:
        engine.dispose()


async def test_another_applications_alembic_database_is_refused(db_url: str) -> None:
    engine = sync_engine(db_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
        conn.execute(sa.text("INSERT INTO alembic_version VALUES ('abc123')"))
    engine.dispose()
    with pytest.raises(StoreError, match="not a fleetops database"):
        await Store.open(db_url)
    assert tables_of(db_url) == {"alembic_version"}


# -- PostgreSQL only -------------------------------------------------------------------------------


async def test_unreachable_server_is_one_line(postgres_url: str) -> None:
    url = sa.make_url(postgres_url).set(host="127.0.0.1", port=free_port())
    with pytest.raises(StoreConfigError) as caught:
        await Store.open(url.render_as_string(hide_password=False))
    message = str(caught.value)
    assert message.startswith("cannot connect to postgresql://") and "refused" in message
    assert "\n" not in message and caught.value.exit_code == 2


async def test_unknown_database_is_one_line(postgres_url: str) -> None:
    url = sa.make_url(postgres_url).set(database="fleetops_no_such_db")
    with pytest.raises(StoreConfigError) as caught:
        await Store.open(url.render_as_string(hide_password=False))
    message = str(caught.value)
    assert 'database "fleetops_no_such_db" does not exist' in message and "\n" not in message


async def test_a_shared_database_with_other_tables_is_used(postgres_db: str) -> None:
    """A job queue's tables next to ours are not a reason to refuse the database."""
    engine = sync_engine(postgres_db)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE queue_jobs (id SERIAL PRIMARY KEY)"))
    engine.dispose()
    store = await Store.open(postgres_db)
    await store.close()
    assert {"jobs", "items", "events", "quota_holders", "queue_jobs"} <= tables_of(postgres_db)


async def test_two_processes_migrate_a_fresh_database_once(postgres_db: str) -> None:
    code = (
        "import anyio, sys\n"
        "from fleetops.store import Store\n"
        "async def main():\n"
        "    s = await Store.open(sys.argv[1])\n"
        "    await s.close()\n"
        "anyio.run(main)\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, postgres_db], stderr=subprocess.PIPE)
        for _ in range(3)
    ]
    errors = [p.communicate(timeout=60)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], errors
    engine = sync_engine(postgres_db)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all() == [
            SCHEMA_HEAD
        ]
    engine.dispose()


# -- the command line ------------------------------------------------------------------------------


def run_cli(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fleetops", *argv],
        capture_output=True,
        text=True,
        timeout=60,
    )


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("db", "needle"),
    [
        ("mysql://ops@db.example/fleet", "unsupported database url scheme"),
        ("postgresql://ops@db.example/", "no database name"),
    ],
)
def test_cli_refuses_a_bad_db_url(db: str, needle: str) -> None:
    assert needle in one_line(run_cli("--db", db, "jobs", "list")).lower()


def test_cli_unreachable_server(postgres_url: str) -> None:
    url = sa.make_url(postgres_url).set(host="127.0.0.1", port=free_port())
    line = one_line(run_cli("--db", url.render_as_string(hide_password=False), "jobs", "list"))
    assert "cannot connect" in line


async def test_a_connection_dropped_by_the_server_is_replaced(postgres_db: str) -> None:
    """A server restart or fail-over closes pooled connections: the next use reconnects."""
    store = await Store.open(postgres_db)
    try:
        job = await store.create_job(
            NewJob(action="reboot", params={}, targets={}, options={}, region="us-east-1")
        )
        engine = sync_engine(postgres_db)
        with engine.connect() as conn:
            killed = conn.execute(
                sa.text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            ).scalar()
        engine.dispose()
        assert killed and killed >= 1
        assert (await store.get_job(job.id)).id == job.id
    finally:
        await store.close()
