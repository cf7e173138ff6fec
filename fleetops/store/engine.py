"""Opening the database: which one (a path or a URL), its dialect's set-up, alembic migrations.

Two databases are supported, with one schema and one set of queries:

* **SQLite** (the default, one file): ``PATH``, ``sqlite:///PATH`` or ``sqlite+aiosqlite:///PATH``.
  The file is created with mode 0600; every connection sets a busy timeout, ``synchronous =
  NORMAL`` and foreign keys; the file is switched to WAL once it is known to be ours.
* **PostgreSQL** (a store a team shares): ``postgresql://USER[:PASSWORD]@HOST:PORT/DB`` or
  ``postgresql+psycopg://…``, served by psycopg 3. ``postgresql+asyncpg://…`` is accepted as a
  spelling of the same database and served by psycopg too (one driver for every PostgreSQL URL).

A database that is not a fleetops database, or whose schema is newer than this fleetops knows, is
refused with a clear error: never migrated down, never overwritten. A command that only reads does
not create the schema (``create=False``).
"""

from __future__ import annotations

import os
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from fleetops.errors import StoreConfigError, StoreError

__all__ = [
    "BUSY_TIMEOUT_MS",
    "CONNECT_TIMEOUT_S",
    "SCHEMA_HEAD",
    "DatabaseTarget",
    "create_engine",
    "database_url",
    "migrate",
    "migrations_dir",
    "parse_target",
]

BUSY_TIMEOUT_MS = 5000
#: How long connecting to a PostgreSQL server may take before it is reported unreachable.
CONNECT_TIMEOUT_S = 10

#: The newest alembic revision this fleetops ships (a test checks it against the scripts). A
#: database already at it is opened without loading alembic at all: history commands start fast.
SCHEMA_HEAD = "0005"

#: Serialises schema migrations of one PostgreSQL database (two workers starting at once).
_MIGRATION_LOCK_KEY = 0x466C6565744F7073  # "FleetOps"

_URL_FORMS = "a file path, sqlite:///PATH or postgresql://USER@HOST:PORT/DB"
_POSTGRES_DRIVERS = {"", "psycopg", "psycopg_async", "asyncpg"}


@dataclass(frozen=True)
class DatabaseTarget:
    """Where the store lives: the SQLAlchemy URL to connect with, and how to name it."""

    url: sa.URL
    dialect: str  # "sqlite" | "postgresql"
    path: Path | None  # the SQLite file (None: PostgreSQL, or SQLite in memory)
    where: str  # for messages: the path, or the URL without its password

    @property
    def is_postgresql(self) -> bool:
        return self.dialect == "postgresql"


def migrations_dir() -> Path:
    """The alembic scripts: inside the wheel (``fleetops/_migrations``) or the source tree."""
    package = Path(__file__).resolve().parent.parent  # fleetops/, from fleetops/store/engine.py
    packaged = package / "_migrations"
    if packaged.is_dir():
        return packaged
    return package.parent / "migrations"


def _sqlite_target(path: Path | None, url: sa.URL | None = None) -> DatabaseTarget:
    if url is None:
        url = sa.URL.create("sqlite+aiosqlite", database=str(path) if path else None)
    url = url.set(drivername="sqlite+aiosqlite")
    where = str(path) if path is not None else ":memory:"
    return DatabaseTarget(url=url, dialect="sqlite", path=path, where=where)


def parse_target(target: str | os.PathLike[str]) -> DatabaseTarget:
    """Read ``--db`` / ``FLEETOPS_DB``: a path or one of the URL forms; anything else is refused
    with one line (:class:`StoreConfigError`) before any connection is made."""
    text = os.fspath(target).strip()
    if not text:
        raise StoreConfigError(f"empty database location (use {_URL_FORMS})")
    if "://" not in text:
        return _sqlite_target(Path(text).expanduser())
    try:
        url = sa.make_url(text)
    except (ArgumentError, ValueError) as exc:
        raise StoreConfigError(f"malformed database URL {text!r} (use {_URL_FORMS})") from exc
    backend, _, driver = url.drivername.partition("+")
    if backend == "sqlite":
        if driver not in ("", "aiosqlite", "pysqlite"):
            raise StoreConfigError(f"unsupported SQLite driver {driver!r} (use sqlite:///PATH)")
        memory = not url.database or url.database == ":memory:"
        return _sqlite_target(None if memory else Path(url.database or "").expanduser(), url)
    if backend in ("postgresql", "postgres"):
        return _postgresql_target(url, driver)
    raise StoreConfigError(f"unsupported database URL scheme {url.drivername!r} (use {_URL_FORMS})")


def _postgresql_target(url: sa.URL, driver: str) -> DatabaseTarget:
    if driver not in _POSTGRES_DRIVERS:
        raise StoreConfigError(
            f"unsupported PostgreSQL driver {driver!r} (use postgresql://USER@HOST:PORT/DB; "
            "fleetops connects with psycopg)"
        )
    if not url.database:
        raise StoreConfigError(
            f"no database name in {url.render_as_string(hide_password=True)!r} "
            "(use postgresql://USER@HOST:PORT/DB)"
        )
    url = url.set(drivername="postgresql+psycopg")
    where = url.set(drivername="postgresql").render_as_string(hide_password=True)
    return DatabaseTarget(url=url, dialect="postgresql", path=None, where=where)


def database_url(target: str | os.PathLike[str]) -> tuple[str, Path | None]:
    """A SQLAlchemy URL for ``target`` and its SQLite file (None for PostgreSQL or memory)."""
    parsed = parse_target(target)
    return parsed.url.render_as_string(hide_password=False), parsed.path


def _prepare_file(path: Path) -> None:
    """Create the directory and an empty file with mode 0600 (credentials never go in, but job
    history is an operator's business)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
            os.close(fd)
    except OSError as exc:
        raise StoreError(f"cannot create database {path}: {exc.strerror or exc}") from exc


def _on_sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def create_engine(
    target: str | os.PathLike[str] | DatabaseTarget, *, create: bool = True
) -> AsyncEngine:
    """An engine for ``target``; the SQLite file is created (0600) unless ``create`` is False."""
    parsed = target if isinstance(target, DatabaseTarget) else parse_target(target)
    if parsed.is_postgresql:
        return create_async_engine(
            parsed.url,
            connect_args={"connect_timeout": CONNECT_TIMEOUT_S, "application_name": "fleetops"},
            # a long-running worker outlives server restarts and fail-overs: a pooled connection
            # is checked before use (one round trip) instead of failing the next write
            pool_pre_ping=True,
        )
    if parsed.path is not None:
        if not create and not parsed.path.exists():
            raise StoreConfigError(
                f"no fleetops database at {parsed.path} (no job has run yet; see --db / "
                "FLEETOPS_DB)"
            )
        if create:
            _prepare_file(parsed.path)
    engine = create_async_engine(parsed.url)
    event.listen(engine.sync_engine, "connect", _on_sqlite_connect)
    return engine


def _alembic_config(connection: sa.Connection | None = None) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def _known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(_alembic_config())
    return {rev.revision for rev in script.walk_revisions()}


def _table_names(connection: sa.Connection) -> set[str]:
    """The tables where fleetops's would be (PostgreSQL: the first schema of the search path).
    One plain query: the reflection machinery costs a history command's start-up time."""
    if connection.dialect.name == "postgresql":
        query = "SELECT tablename FROM pg_catalog.pg_tables WHERE schemaname = current_schema()"
    else:
        query = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    return {str(name) for name in connection.exec_driver_sql(query).scalars()}


def _foreign(connection: sa.Connection, tables: set[str]) -> bool:
    """Tables that are not a fleetops schema. A SQLite file is ours alone; a PostgreSQL database
    may hold other applications' tables (a job queue's, say) next to ours."""
    ours = {"alembic_version", "jobs"}
    if connection.dialect.name == "sqlite":
        return bool(tables) and not ours <= tables
    return bool(tables & ours) and not ours <= tables


def _check_and_upgrade(connection: sa.Connection, where: str, create: bool) -> None:
    postgresql = connection.dialect.name == "postgresql"
    if postgresql:
        connection.execute(sa.select(sa.func.pg_advisory_xact_lock(_MIGRATION_LOCK_KEY)))
    # Nothing is written before the database is known to be ours (or empty): another program's
    # database is refused untouched (a SQLite file not even switched to WAL).
    tables = _table_names(connection)
    if _foreign(connection, tables):
        raise StoreError(f"{where} is not a fleetops database (it has other tables)")
    fresh = "jobs" not in tables
    if fresh and not create:
        raise StoreConfigError(
            f"{where} has no fleetops schema (nothing has run there yet; "
            "create it with `fleetops db upgrade`)"
        )
    if not postgresql:
        # WAL is a property of the file: set once, it stays.
        connection.exec_driver_sql("PRAGMA journal_mode = WAL")
    if not fresh:
        current = connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
        if current == SCHEMA_HEAD:
            return
        if current is not None and current not in _known_revisions():
            raise StoreConfigError(
                f"{where} has schema {current}, newer than this fleetops knows: upgrade fleetops"
            )
    from alembic import command

    command.upgrade(_alembic_config(connection), "head")


def _first_line(text: str) -> str:
    """The server's own words, on one line: ``FATAL:  database "x" does not exist``."""
    fatal = re.findall(r"(?:FATAL|ERROR):\s*(.+)", text)
    chosen = fatal[-1] if fatal else text.strip().splitlines()[0] if text.strip() else text
    return " ".join(chosen.split())


def _explain_postgresql(text: str, where: str, *, opening: bool) -> StoreError:
    lowered = text.lower()
    kind = StoreConfigError if opening else StoreError
    if "does not exist" in lowered and "database" in lowered:
        return StoreConfigError(f"{where}: {_first_line(text)}")
    if "authentication failed" in lowered or "no pg_hba.conf entry" in lowered:
        return StoreConfigError(f"{where}: {_first_line(text)}")
    if "connection refused" in lowered or "could not translate host name" in lowered:
        reason = "connection refused" if "refused" in lowered else "unknown host"
        return kind(f"cannot connect to {where}: {reason} (is the server running there?)")
    if "timeout" in lowered or "timed out" in lowered:
        return kind(f"cannot connect to {where}: no answer within {CONNECT_TIMEOUT_S} s")
    if "connection failed" in lowered or "server closed the connection" in lowered:
        return kind(f"cannot connect to {where}: {_first_line(text.split('failed:')[-1])}")
    if "permission denied" in lowered:
        return kind(f"{where}: {_first_line(text)}")
    return StoreError(f"{where}: {_first_line(text)}")


def _explain(exc: BaseException, where: str, *, opening: bool = False) -> StoreError:
    text = str(getattr(exc, "orig", exc))
    if "psycopg" in type(getattr(exc, "orig", exc)).__module__:
        return _explain_postgresql(text, where, opening=opening)
    lowered = text.lower()
    if "file is not a database" in lowered or "not a database" in lowered:
        return StoreError(f"{where} is not a fleetops database (not an SQLite file)")
    if "locked" in lowered or "busy" in lowered:
        return StoreError(f"{where} is locked by another process (waited {BUSY_TIMEOUT_MS} ms)")
    if "readonly" in lowered or "read-only" in lowered:
        return StoreError(f"{where} is read-only")
    if "disk" in lowered and "full" in lowered:
        return StoreError(f"{where}: the disk is full")
    if "unable to open" in lowered:
        return StoreError(f"cannot open {where}")
    return StoreError(f"{where}: {_first_line(text)}")


async def migrate(engine: AsyncEngine, where: str, *, create: bool = True) -> None:
    """Bring the schema to head (first use, and ``fleetops db upgrade``). With ``create=False``
    a database without the schema is refused instead (commands that only read)."""
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_check_and_upgrade, where, create)
    except (OperationalError, DBAPIError, sqlite3.Error) as exc:
        raise _explain(exc, where, opening=True) from exc
    except OSError as exc:  # a socket error the driver did not wrap
        raise StoreConfigError(f"cannot connect to {where}: {exc.strerror or exc}") from exc


def explain_db_error(exc: BaseException, where: str) -> StoreError:
    """Translate a database error of the layer below into a one-line :class:`StoreError`."""
    return _explain(exc, where)


async def current_revision(conn: AsyncConnection) -> str | None:
    result = await conn.execute(sa.text("SELECT version_num FROM alembic_version"))
    value = result.scalar()
    return str(value) if value is not None else None
