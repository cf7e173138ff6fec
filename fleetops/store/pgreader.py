"""Reading a PostgreSQL store with psycopg alone, for the history commands.

The PostgreSQL twin of :mod:`fleetops.store.readonly`: importing SQLAlchemy's asyncio stack costs
a history command most of its start-up, the queries themselves milliseconds. :func:`open_reader`
gives a reader over one read-only psycopg connection when ``where`` is a PostgreSQL URL whose
schema is this fleetops's newest; for anything else (no schema, an older one to migrate, a newer
one, a server that does not answer) it answers None and the caller uses
:class:`~fleetops.store.Store`, which says what is wrong. Its reads are the Store's own
(:mod:`fleetops.store.reads`), so the records equal the Store's field by field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from fleetops.store.queries import SCHEMA_VERSION, Query, expand, pyformat
from fleetops.store.reader_base import ReaderBase
from fleetops.store.reads import Rows

__all__ = ["PostgresReader", "conninfo", "open_reader"]

_SCHEME = re.compile(r"^postgres(?:ql)?(?:\+(?:psycopg|psycopg_async|asyncpg))?://", re.I)
_CONNECT_TIMEOUT_S = 10


def conninfo(where: str) -> str | None:
    """libpq's form of a PostgreSQL URL fleetops accepts (the driver part dropped), else None."""
    match = _SCHEME.match(where.strip())
    if match is None:
        return None
    return "postgresql://" + where.strip()[match.end() :]


def open_reader(where: str, head: str | None) -> PostgresReader | None:
    """A reader for ``where`` when it is a PostgreSQL database at schema ``head``, else None."""
    info = conninfo(where)
    if info is None or head is None:
        return None
    import psycopg
    from psycopg.rows import dict_row

    try:
        conn = psycopg.connect(
            info,
            connect_timeout=_CONNECT_TIMEOUT_S,
            application_name="fleetops",
            row_factory=dict_row,
        )
    except psycopg.Error:
        return None
    try:
        conn.read_only = True
        found = conn.execute(pyformat(SCHEMA_VERSION.sql)).fetchone()
    except psycopg.Error:  # no fleetops schema here (or no alembic_version table)
        conn.close()
        return None
    if found is None or found["version_num"] != head:
        conn.close()
        return None
    return PostgresReader(conn, _display(info))


def _display(info: str) -> str:
    """The URL without its password (as the Store names it in messages)."""
    return re.sub(r"(://[^:/@]+):[^@/]*@", r"\1:***@", info)


class PostgresReader(ReaderBase):
    """The history's reads over one read-only psycopg connection."""

    def fetch(self, query: Query, params: Mapping[str, Any]) -> Rows:
        """psycopg takes ``%(name)s`` parameters (converted from ``:name``); lists are spread."""
        sql, values = expand(query, params)
        return list(self.conn.execute(pyformat(sql), values).fetchall())
