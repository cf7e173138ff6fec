"""The job queue's side of the store: where procrastinate connects, its connector, its schema.

procrastinate keeps its queue tables in the store's own PostgreSQL database; the queue
(:mod:`fleetops.queue.tasks`) asks here for what reaches that database, so that no database
driver is imported outside the store. The schema is applied once, under an advisory lock
(several workers may start at the same instant), and only when its tables are missing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import procrastinate
import psycopg
from procrastinate.schema import SchemaManager

from fleetops.errors import UsageError

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = ["ensure_queue_schema", "queue_connector", "queue_conninfo"]

#: Arbitrary constant key of the advisory lock under which procrastinate's schema is applied.
_SCHEMA_LOCK_KEY = 0x71756575655F7363  # "queue_sc"


def queue_conninfo(url: sa.URL) -> str:
    """A store's database URL as a libpq URL (what psycopg and procrastinate connect with)."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def queue_connector(dsn: str, *, max_size: int) -> procrastinate.PsycopgConnector:
    """procrastinate's connector to ``dsn``: a pool of 1 to ``max_size`` connections."""
    return procrastinate.PsycopgConnector(conninfo=dsn, min_size=1, max_size=max_size)


async def ensure_queue_schema(dsn: str) -> bool:
    """Create procrastinate's tables on first use. Returns whether it was created now; a
    database that cannot be reached or changed is a one-line :class:`UsageError`."""
    try:
        async with await psycopg.AsyncConnection.connect(dsn) as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK_KEY,))
            cur = await conn.execute("SELECT to_regclass('procrastinate_jobs') IS NOT NULL")
            row = await cur.fetchone()
            if row is not None and row[0]:
                return False
            await conn.execute(SchemaManager.get_schema())
    except psycopg.Error as exc:
        raise UsageError(f"cannot prepare the job queue: {exc}".splitlines()[0]) from exc
    return True
