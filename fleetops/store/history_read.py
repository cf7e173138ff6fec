"""A job's history read without SQLAlchemy: the queries of :mod:`fleetops.store.history`, as SQL
text over a reader's own connection (the standard library's ``sqlite3`` for a SQLite file, psycopg
for PostgreSQL), for ``jobs show`` to answer without importing the Store.

Every query is the Store's, written out: the same filters, groupings, window functions and order,
so :func:`job_history` builds a :class:`~fleetops.records.JobHistory` equal to the
Store's for the same database. Each is bounded by the (job_id, state) index on items or the
(job_id, at) index on events, as the Store's are.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from fleetops.records import (
    NO_CODE,
    ErrorExample,
    ErrorGroup,
    JobHistory,
    OperationStats,
    ReasonGroup,
    ScopeSummary,
    durations,
)
from fleetops.states import UNVERIFIED, ItemState

if TYPE_CHECKING:
    from fleetops.records import JobRecord
    from fleetops.store.pgreader import PostgresReader
    from fleetops.store.readonly import Reader

__all__ = ["job_history", "unverified_counts"]

#: Job ids per query (SQLite's default bound on parameters is 999).
_CHUNK = 500
#: Runs one query (``?`` placeholders) and answers its rows as tuples.
Rows = Callable[[str, Sequence[Any]], list[tuple[Any, ...]]]

_ERRORS = f"""
SELECT code, n, workspace_id, error_message FROM (
    SELECT coalesce(error_code, '{NO_CODE}') AS code, workspace_id, error_message,
        row_number() OVER (PARTITION BY coalesce(error_code, '{NO_CODE}') ORDER BY id) AS pos,
        count(*) OVER (PARTITION BY coalesce(error_code, '{NO_CODE}')) AS n
    FROM items WHERE job_id = ? AND state = '{ItemState.FAILED.value}'
) AS ranked WHERE pos <= ? ORDER BY n DESC, code, pos
"""

_SCOPES = f"""
SELECT account, region, state, code, count(*) FROM (
    SELECT account, region, state,
        CASE WHEN state = '{ItemState.FAILED.value}' THEN coalesce(error_code, '{NO_CODE}')
        ELSE NULL END AS code
    FROM items WHERE job_id = ?
) AS scoped GROUP BY account, region, state, code
"""

_REASONS = """
SELECT coalesce(reason, '(no reason)') AS why, count(*) AS n FROM items
WHERE job_id = ? AND state = ? GROUP BY coalesce(reason, '(no reason)')
ORDER BY n DESC, coalesce(reason, '(no reason)') LIMIT ?
"""

_UNVERIFIED = f"""
SELECT count(*) OVER () AS n, workspace_id, error_message FROM items
WHERE job_id = ? AND state = '{ItemState.SUCCEEDED.value}' AND error_code = ?
ORDER BY id LIMIT ?
"""

_UNVERIFIED_COUNTS = f"""
SELECT job_id, count(*) FROM items
WHERE job_id IN ({{marks}}) AND state = '{ItemState.SUCCEEDED.value}' AND error_code = ?
GROUP BY job_id
"""

_OPERATIONS = """
SELECT operation, count(*) AS calls, coalesce(sum(attempts), 0),
    coalesce(sum(CASE WHEN attempts > 1 THEN attempts - 1 ELSE 0 END), 0),
    coalesce(sum(CASE WHEN outcome = 'error' THEN 1 ELSE 0 END), 0),
    coalesce(sum(CASE WHEN outcome = 'partial' THEN 1 ELSE 0 END), 0),
    coalesce(sum(duration_ms), 0)
FROM events WHERE job_id = ? GROUP BY operation ORDER BY calls DESC, operation
"""


def rows_of(reader: Reader | PostgresReader) -> Rows:
    """How to run a query over ``reader``'s connection (``?`` becomes psycopg's ``%s``)."""
    from fleetops.store.readonly import Reader

    if isinstance(reader, Reader):
        conn = reader.conn

        def sqlite_rows(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
            return [tuple(row) for row in conn.execute(sql, tuple(params)).fetchall()]

        return sqlite_rows
    from psycopg.rows import tuple_row

    pg = reader.conn

    def pg_rows(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        with pg.cursor(row_factory=tuple_row) as cursor:
            cursor.execute(sql.replace("?", "%s"), tuple(params))
            return list(cursor.fetchall())

    return pg_rows


def error_groups(rows: Rows, job_id: str, *, examples: int = 3) -> list[ErrorGroup]:
    groups: dict[str, tuple[int, list[ErrorExample]]] = {}
    for code, count, workspace_id, message in rows(_ERRORS, (job_id, examples)):
        entry = groups.setdefault(str(code), (int(count), []))
        entry[1].append(ErrorExample(workspace_id=workspace_id, message=message))
    return [ErrorGroup(code, count, tuple(found)) for code, (count, found) in groups.items()]


def scope_summaries(rows: Rows, job_id: str) -> list[ScopeSummary]:
    found: dict[tuple[str, str], tuple[dict[str, int], dict[str, int]]] = {}
    for account, region, state, code, count in rows(_SCOPES, (job_id,)):
        counts, errors = found.setdefault(
            (account or "", region or ""), ({s.value: 0 for s in ItemState}, {})
        )
        counts[str(state)] += int(count)
        if code is not None:
            errors[str(code)] = errors.get(str(code), 0) + int(count)
    return [
        ScopeSummary(account or None, region, counts, errors)
        for (account, region), (counts, errors) in sorted(found.items())
    ]


def reason_groups(
    rows: Rows, job_id: str, state: ItemState = ItemState.SKIPPED, *, limit: int = 10
) -> list[ReasonGroup]:
    found = rows(_REASONS, (job_id, state.value, limit))
    return [ReasonGroup(str(reason), int(count)) for reason, count in found]


def unverified_items(rows: Rows, job_id: str, *, examples: int = 3) -> ErrorGroup | None:
    found = rows(_UNVERIFIED, (job_id, UNVERIFIED, examples))
    if not found:
        return None
    shown = tuple(ErrorExample(workspace_id=ws_id, message=message) for _, ws_id, message in found)
    return ErrorGroup(UNVERIFIED, int(found[0][0]), shown)


def unverified_counts(reader: Reader | PostgresReader, job_ids: Sequence[str]) -> dict[str, int]:
    """How many succeeded items of each job were never verified (zeros included)."""
    result = dict.fromkeys(job_ids, 0)
    rows = rows_of(reader)
    for start in range(0, len(job_ids), _CHUNK):
        chunk = list(job_ids[start : start + _CHUNK])
        sql = _UNVERIFIED_COUNTS.format(marks=", ".join("?" for _ in chunk))
        for job_id, count in rows(sql, (*chunk, UNVERIFIED)):
            result[str(job_id)] = int(count)
    return result


def operation_stats(rows: Rows, job_id: str) -> list[OperationStats]:
    return [
        OperationStats(
            operation=str(op),
            calls=int(calls),
            attempts=int(attempts),
            retries=int(retries),
            errors=int(errors),
            partial=int(partial),
            duration_ms=int(duration),
        )
        for op, calls, attempts, retries, errors, partial, duration in rows(_OPERATIONS, (job_id,))
    ]


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
    rows = rows_of(reader)
    if counts is None:
        counts = reader.counts(job.id)
    return JobHistory(
        job=job,
        counts=counts,
        durations=durations(job, counts, now=now),
        errors=(
            error_groups(rows, job.id, examples=examples)
            if counts.get(ItemState.FAILED.value)
            else []
        ),
        skipped=(
            reason_groups(rows, job.id, ItemState.SKIPPED)
            if counts.get(ItemState.SKIPPED.value)
            else []
        ),
        in_doubt=(
            reader.items_page(job.id, states=[ItemState.IN_DOUBT], limit=in_doubt_limit)
            if counts.get(ItemState.IN_DOUBT.value)
            else []
        ),
        operations=operation_stats(rows, job.id),
        unverified=(
            unverified_items(rows, job.id, examples=examples)
            if counts.get(ItemState.SUCCEEDED.value)
            else None
        ),
        scopes=(scope_summaries(rows, job.id) if job.accounts or len(job.regions) > 1 else []),
    )
