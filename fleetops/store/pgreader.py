"""Reading a PostgreSQL store with psycopg alone, for the history commands.

The PostgreSQL twin of :mod:`fleetops.store.readonly`: importing SQLAlchemy's asyncio stack costs
a history command most of its start-up, the queries themselves milliseconds. :func:`open_reader`
gives a reader over one read-only psycopg connection when ``where`` is a PostgreSQL URL whose
schema is this fleetops's newest; for anything else (no schema, an older one to migrate, a newer
one, a server that does not answer) it answers None and the caller uses
:class:`~fleetops.store.Store`, which says what is wrong. The records are the store's own, equal
field by field to the Store's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from fleetops.errors import NotFoundError
from fleetops.records import ItemRecord, JobRecord
from fleetops.states import ItemState
from fleetops.store.reader_base import ReaderBase

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
        found = conn.execute("SELECT version_num FROM alembic_version").fetchone()
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
    """The history's read queries over one read-only psycopg connection."""

    def _rows(self, query: str, params: Any) -> list[dict[str, Any]]:
        return list(self.conn.execute(query, params).fetchall())

    def get_job(self, job_id: str) -> JobRecord:
        """A job by id, or by a unique prefix of its id (as :meth:`Store.get_job`)."""
        rows = self._rows("SELECT * FROM jobs WHERE id = %s", (job_id,))
        if not rows and job_id:
            prefix = job_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            rows = self._rows(
                "SELECT * FROM jobs WHERE id LIKE %s ESCAPE '\\' LIMIT 2", (prefix + "%",)
            )
            if len(rows) > 1:
                raise NotFoundError(f"job id prefix {job_id!r} is ambiguous")
        if not rows:
            raise NotFoundError(f"no job {job_id!r} in {self.where}")
        return JobRecord.from_row(rows[0])

    def list_jobs(
        self,
        *,
        status: str | None = None,
        action: str | None = None,
        since: float | None = None,
        limit: int = 20,
        started_by: str | None = None,
    ) -> list[JobRecord]:
        """The newest jobs first, filtered as :meth:`Store.list_jobs` filters them."""
        where: list[str] = []
        params: list[Any] = []
        for column, value in (("started_by", started_by), ("status", status), ("action", action)):
            if value is not None:
                where.append(f"{column} = %s")
                params.append(value)
        if since is not None:
            where.append("created_at >= %s")
            params.append(since)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        rows = self._rows(
            f"SELECT * FROM jobs{clause} ORDER BY created_at DESC, id DESC LIMIT %s",
            (*params, limit),
        )
        return [JobRecord.from_row(row) for row in rows]

    def counts_for(self, job_ids: Sequence[str]) -> dict[str, dict[str, int]]:
        """Items by state (zeros included) of each job."""
        result = {job_id: {state.value: 0 for state in ItemState} for job_id in job_ids}
        if not job_ids:
            return result
        rows = self._rows(
            "SELECT job_id, state, count(*) AS n FROM items WHERE job_id = ANY(%s)"
            " GROUP BY job_id, state",
            (list(job_ids),),
        )
        for row in rows:
            result[row["job_id"]][str(row["state"])] = int(row["n"])
        return result

    def items_page(
        self,
        job_id: str,
        *,
        states: Iterable[ItemState] | None = None,
        after_id: int = 0,
        limit: int = 1000,
    ) -> list[ItemRecord]:
        """One page of a job's items in id order (as :meth:`Store.items_page`)."""
        if states is None:
            rows = self._rows(
                "SELECT * FROM items WHERE job_id = %s AND id > %s ORDER BY id LIMIT %s",
                (job_id, after_id, limit),
            )
        else:
            rows = self._rows(
                "SELECT * FROM items WHERE job_id = %s AND id > %s AND state = ANY(%s)"
                " ORDER BY id LIMIT %s",
                (job_id, after_id, [state.value for state in states], limit),
            )
        return [ItemRecord.from_row(row) for row in rows]
