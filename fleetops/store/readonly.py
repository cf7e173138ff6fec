"""Reading a SQLite store with the standard library alone, for the history commands.

``fleetops jobs list`` answers in a few milliseconds of queries, but importing SQLAlchemy's
asyncio stack costs it most of its start-up. :func:`open_reader` gives a :class:`Reader` over the
``sqlite3`` module for a SQLite file whose schema is this fleetops's newest, opened read-only
(``mode=ro``: a reader can never write); for anything else (PostgreSQL, an older schema to
migrate, a file that is not a fleetops database) it answers None and the caller uses
:class:`~fleetops.store.Store`, which says what is wrong. Its reads are the Store's own
(:mod:`fleetops.store.reads`, the SQL of :mod:`fleetops.store.queries`), so the records it
returns equal the Store's field by field.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fleetops.store.queries import SCHEMA_VERSION, Query, expand
from fleetops.store.reader_base import ReaderBase
from fleetops.store.reads import Rows

if TYPE_CHECKING:
    from fleetops.store.pgreader import PostgresReader

__all__ = ["Reader", "open_reader", "sqlite_file"]

_BUSY_TIMEOUT_S = 5.0


def sqlite_file(where: str) -> Path | None:
    """The file of a SQLite target (``PATH`` or ``sqlite:///PATH``); None for anything else."""
    if where.startswith("sqlite:///"):
        where = where[len("sqlite:///") :]
    elif "://" in where or where.startswith(("sqlite:", ":memory:")):
        return None
    return Path(where).expanduser()


def _head_revision() -> str | None:
    """The newest migration this fleetops ships (revision ids are the files' number prefixes)."""
    package = Path(__file__).resolve().parent.parent  # fleetops/, from fleetops/store/readonly.py
    for folder in (package / "_migrations", package.parent / "migrations"):
        versions = sorted(p.name.split("_", 1)[0] for p in (folder / "versions").glob("*.py"))
        if versions:
            return versions[-1]
    return None


def open_reader(where: str) -> Reader | PostgresReader | None:
    """A reader for ``where`` when it is a SQLite file at this fleetops's schema, else None."""
    if "://" in where and not where.startswith("sqlite"):  # PostgreSQL: psycopg alone
        from fleetops.store import pgreader

        return pgreader.open_reader(where, _head_revision())
    path = sqlite_file(where)
    if path is None or not path.is_file():
        return None
    try:
        conn = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=_BUSY_TIMEOUT_S
        )
    except sqlite3.Error:
        return None
    try:
        (version,) = conn.execute(SCHEMA_VERSION.sql).fetchone()
    except (sqlite3.Error, TypeError):  # not a fleetops database (or not a database)
        conn.close()
        return None
    if version != _head_revision():
        conn.close()
        return None
    return Reader(conn, str(path))


class Reader(ReaderBase):
    """The history's reads over one read-only ``sqlite3`` connection."""

    conn: sqlite3.Connection

    def fetch(self, query: Query, params: Mapping[str, Any]) -> Rows:
        """sqlite3 takes ``:name`` parameters as written; lists are spread."""
        sql, values = expand(query, params)
        cursor = self.conn.execute(sql, values)
        columns = [column[0] for column in cursor.description]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
