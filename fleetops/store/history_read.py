"""A job's history read without SQLAlchemy, for ``jobs show`` and ``jobs list`` to answer
without importing the Store: the Store's own reads (:mod:`fleetops.store.reads`, the SQL of
:mod:`fleetops.store.queries`) run over a light reader's connection (the standard library's
``sqlite3`` for a SQLite file, psycopg for PostgreSQL).

Nothing is written twice: each function here runs the read that
:mod:`fleetops.store.history` runs on the Store, so :func:`job_history` builds a
:class:`~fleetops.records.JobHistory` equal to the Store's for the same database.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from fleetops.records import ErrorGroup, JobHistory, OperationStats, ReasonGroup, ScopeSummary
from fleetops.states import ItemState
from fleetops.store import reads
from fleetops.store.queries import Query

if TYPE_CHECKING:
    from fleetops.records import JobRecord
    from fleetops.store.pgreader import PostgresReader
    from fleetops.store.readonly import Reader

__all__ = [
    "Rows",
    "error_groups",
    "job_history",
    "operation_stats",
    "reason_groups",
    "rows_of",
    "scope_summaries",
    "unverified_counts",
    "unverified_items",
]

#: Runs one query and answers its rows (a reader's :meth:`~ReaderBase.fetch`).
Rows = Callable[[Query, Mapping[str, Any]], reads.Rows]


def rows_of(reader: Reader | PostgresReader) -> Rows:
    """How to run a query over ``reader``'s connection."""
    return reader.fetch


def error_groups(rows: Rows, job_id: str, *, examples: int = 3) -> list[ErrorGroup]:
    return reads.run(reads.error_groups(job_id, examples=examples), rows)


def scope_summaries(rows: Rows, job_id: str) -> list[ScopeSummary]:
    return reads.run(reads.scope_summaries(job_id), rows)


def reason_groups(
    rows: Rows, job_id: str, state: ItemState = ItemState.SKIPPED, *, limit: int = 10
) -> list[ReasonGroup]:
    return reads.run(reads.reason_groups(job_id, state, limit=limit), rows)


def unverified_items(rows: Rows, job_id: str, *, examples: int = 3) -> ErrorGroup | None:
    return reads.run(reads.unverified_items(job_id, examples=examples), rows)


def operation_stats(rows: Rows, job_id: str) -> list[OperationStats]:
    return reads.run(reads.operation_stats(job_id), rows)


def unverified_counts(reader: Reader | PostgresReader, job_ids: Sequence[str]) -> dict[str, int]:
    """How many succeeded items of each job were never verified (zeros included)."""
    return reader.read(reads.unverified_counts(job_ids))


def job_history(
    reader: Reader | PostgresReader,
    job: JobRecord,
    counts: dict[str, int] | None = None,
    *,
    examples: int = 3,
    in_doubt_limit: int = 20,
    now: float | None = None,
) -> JobHistory:
    """Everything ``jobs show`` tells about one job, as :func:`fleetops.store.history.job_history`
    answers it from the Store."""
    return reader.read(
        reads.job_history(job, counts, examples=examples, in_doubt_limit=in_doubt_limit, now=now)
    )
