"""Reading a SQLite store with the standard library alone, for the history commands.

``fleetops jobs list`` answers in a few milliseconds of queries, but importing SQLAlchemy's
asyncio stack costs it most of its start-up. :func:`open_reader` gives a :class:`Reader` over the
``sqlite3`` module for a SQLite file whose schema is this fleetops's newest, opened read-only
(``mode=ro``: a reader can never write); for anything else (PostgreSQL, an older schema to
migrate, a file that is not a fleetops database) it answers None and the caller uses
:class:`~fleetops.store.Store`, which says what is wrong. The records it returns are the store's
own (:class:`JobRecord`, :class:`ItemRecord`), equal field by field to the Store's.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from fleetops.errors import NotFoundError
from fleetops.records import ItemRecord, JobRecord
from fleetops.states import ItemState
from fleetops.store.reader_base import ReaderBase

if TYPE_CHECKING:
    from fleetops.store.pgreader import PostgresReader

__all__ = ["Reader", "open_reader", "sqlite_file"]

#: Columns stored as JSON text (decoded as SQLAlchemy's JSON type does).
_JSON_COLUMNS = frozenset(
    {"params", "targets", "options", "regions", "accounts", "assume", "notifications"}
)
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
        (version,) = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except (sqlite3.Error, TypeError):  # not a fleetops database (or not a database)
        conn.close()
        return None
    if version != _head_revision():
        conn.close()
        return None
    conn.row_factory = sqlite3.Row
    return Reader(conn, str(path))


def _job(row: sqlite3.Row) -> JobRecord:
    values = {
        key: (json.loads(row[key]) if key in _JSON_COLUMNS and row[key] is not None else row[key])
        for key in row.keys()
    }
    return JobRecord.from_row(values)


def _item(row: sqlite3.Row) -> ItemRecord:
    return ItemRecord.from_row({key: row[key] for key in row.keys()})


class Reader(ReaderBase):
    """The history's read queries over one read-only ``sqlite3`` connection."""

    conn: sqlite3.Connection

    def get_job(self, job_id: str) -> JobRecord:
        """A job by id, or by a unique prefix of its id (as :meth:`Store.get_job`)."""
        row = self.conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None and job_id:
            prefix = job_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            rows = self.conn.execute(
                "SELECT * FROM jobs WHERE id LIKE ? ESCAPE '\\' LIMIT 2", (prefix + "%",)
            ).fetchall()
            if len(rows) > 1:
                raise NotFoundError(f"job id prefix {job_id!r} is ambiguous")
            row = rows[0] if rows else None
        if row is None:
            raise NotFoundError(f"no job {job_id!r} in {self.where}")
        return _job(row)

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
        rows = self.conn.execute(
            "SELECT * FROM jobs WHERE (:by IS NULL OR started_by = :by)"
            " AND (:status IS NULL OR status = :status) AND (:action IS NULL OR action = :action)"
            " AND (:since IS NULL OR created_at >= :since)"
            " ORDER BY created_at DESC, id DESC LIMIT :limit",
            {"by": started_by, "status": status, "action": action, "since": since, "limit": limit},
        ).fetchall()
        return [_job(row) for row in rows]

    def counts_for(self, job_ids: Sequence[str]) -> dict[str, dict[str, int]]:
        """Items by state (zeros included) of each job."""
        result = {job_id: {state.value: 0 for state in ItemState} for job_id in job_ids}
        rows = self.conn.execute(
            "SELECT job_id, state, count(*) FROM items"
            " WHERE job_id IN (SELECT value FROM json_each(?)) GROUP BY job_id, state",
            (json.dumps(list(job_ids)),),
        ).fetchall()
        for job_id, state, count in rows:
            result[job_id][str(state)] = int(count)
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
        wanted = None if states is None else json.dumps([state.value for state in states])
        rows = self.conn.execute(
            "SELECT * FROM items WHERE job_id = :job AND id > :after"
            " AND (:states IS NULL OR state IN (SELECT value FROM json_each(:states)))"
            " ORDER BY id LIMIT :limit",
            {"job": job_id, "after": after_id, "states": wanted, "limit": limit},
        ).fetchall()
        return [_item(row) for row in rows]
