"""Opening the database: file creation (mode 0600), SQLite pragmas, alembic migrations.

A file that is not a fleetops database, or one whose schema is newer than this fleetops knows,
is refused with a clear error: never migrated down, never overwritten.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

import fleetops
from fleetops.errors import StoreError

__all__ = [
    "BUSY_TIMEOUT_MS",
    "SCHEMA_HEAD",
    "create_engine",
    "database_url",
    "migrate",
    "migrations_dir",
]

BUSY_TIMEOUT_MS = 5000

#: The newest alembic revision this fleetops ships (a test checks it against the scripts). A
#: database already at it is opened without loading alembic at all: history commands start fast.
SCHEMA_HEAD = "0003"


def migrations_dir() -> Path:
    """The alembic scripts: inside the wheel (``fleetops/_migrations``) or the source tree."""
    packaged = Path(fleetops.__file__).parent / "_migrations"
    if packaged.is_dir():
        return packaged
    return Path(fleetops.__file__).resolve().parent.parent / "migrations"


def database_url(target: str | os.PathLike[str]) -> tuple[str, Path | None]:
    """A SQLAlchemy URL for ``target`` (a path or a ``sqlite+aiosqlite://`` URL) and its file."""
    text = os.fspath(target)
    if "://" in text:
        url = sa.make_url(text)
        if url.get_backend_name() != "sqlite":
            raise StoreError(f"only SQLite databases are supported, not {url.get_backend_name()}")
        url = url.set(drivername="sqlite+aiosqlite")
        path = Path(url.database) if url.database and url.database != ":memory:" else None
        return url.render_as_string(hide_password=False), path
    path = Path(text).expanduser()
    return f"sqlite+aiosqlite:///{path}", path


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


def _on_connect(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def create_engine(target: str | os.PathLike[str]) -> AsyncEngine:
    url, path = database_url(target)
    if path is not None:
        _prepare_file(path)
    engine = create_async_engine(url)
    event.listen(engine.sync_engine, "connect", _on_connect)
    return engine


def _alembic_config(connection: sa.Connection | None = None) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def _check_and_upgrade(connection: sa.Connection, where: str) -> None:
    # Nothing is written before the file is known to be ours (or empty): another program's
    # database is refused untouched, not even switched to WAL.
    tables = set(sa.inspect(connection).get_table_names())
    if tables and ("alembic_version" not in tables or "jobs" not in tables):
        raise StoreError(f"{where} is not a fleetops database (it has other tables)")
    # WAL is a property of the file: set once, it stays.
    connection.exec_driver_sql("PRAGMA journal_mode = WAL")
    if tables:
        current = connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
        if current == SCHEMA_HEAD:
            return
        from alembic.script import ScriptDirectory

        script = ScriptDirectory.from_config(_alembic_config())
        known = {rev.revision for rev in script.walk_revisions()}
        if current is not None and current not in known:
            raise StoreError(
                f"{where} has schema {current}, newer than this fleetops knows: upgrade fleetops"
            )
    from alembic import command

    command.upgrade(_alembic_config(connection), "head")


def _explain(exc: BaseException, where: str) -> StoreError:
    text = str(getattr(exc, "orig", exc))
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
    return StoreError(f"{where}: {text}")


async def migrate(engine: AsyncEngine, where: str) -> None:
    """Bring the schema to head (first use, and ``fleetops db upgrade``)."""
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_check_and_upgrade, where)
    except (OperationalError, DBAPIError, sqlite3.Error) as exc:
        raise _explain(exc, where) from exc


def explain_db_error(exc: BaseException, where: str) -> StoreError:
    """Translate a database error of the layer below into a one-line :class:`StoreError`."""
    return _explain(exc, where)


async def current_revision(conn: AsyncConnection) -> str | None:
    result = await conn.execute(sa.text("SELECT version_num FROM alembic_version"))
    value = result.scalar()
    return str(value) if value is not None else None
