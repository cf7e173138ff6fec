"""The history's reads, each written once and run by every runner: what to ask (a query of
:mod:`fleetops.store.queries` and its parameters) and how the rows become records.

A read is a generator: it yields ``(query, params)``, is sent back the rows (dicts, column name →
value) and returns its answer; a read made of several queries yields each in turn. A runner
drives it over its own connection: :func:`run` for a synchronous one (the ``sqlite3`` and
psycopg readers), :meth:`fleetops.store.Store.read` for the Store's asynchronous SQLAlchemy
connection. So the SQL, the folding of rows into records and the order of the queries are the
same whoever runs them, and the answers compare equal field by field.

No database library is imported here; JSON columns arrive decoded (psycopg) or as their JSON text
(SQLite), and are decoded here alike.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from fleetops.errors import NotFoundError
from fleetops.records import (
    ErrorExample,
    ErrorGroup,
    ItemRecord,
    JobHistory,
    JobRecord,
    OperationStats,
    ReasonGroup,
    ScopeSummary,
    durations,
)
from fleetops.states import UNVERIFIED, ItemState
from fleetops.store import queries
from fleetops.store.queries import Query

__all__ = [
    "Read",
    "Rows",
    "counts_for",
    "error_groups",
    "get_job",
    "items_page",
    "job_history",
    "list_jobs",
    "operation_stats",
    "reason_groups",
    "run",
    "scope_summaries",
    "unverified_counts",
    "unverified_items",
]

T = TypeVar("T")
#: The rows of one query: column name → value.
Rows = list[dict[str, Any]]
#: A read: yields what to run, is sent its rows, returns its answer.
Read = Generator[tuple[Query, dict[str, Any]], Rows, T]
#: Job ids per query (SQLite's default bound on parameters is 999).
CHUNK = 500
#: The job columns stored as JSON.
_JSON_COLUMNS = (
    "params",
    "targets",
    "options",
    "regions",
    "accounts",
    "assume",
    "notifications",
)


def run(read: Read[T], fetch: Callable[[Query, Mapping[str, Any]], Rows]) -> T:
    """Drive ``read`` with a synchronous runner: ``fetch(query, params)`` answers the rows."""
    try:
        query, params = next(read)
        while True:
            query, params = read.send(fetch(query, params))
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


def _job(row: Mapping[str, Any]) -> JobRecord:
    values = dict(row)
    for column in _JSON_COLUMNS:
        if isinstance(values.get(column), str):
            values[column] = json.loads(values[column])
    return JobRecord.from_row(values)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# -- jobs and items ------------------------------------------------------------------------------


def get_job(job_id: str, where: str) -> Read[JobRecord]:
    """A job by id, or by a unique prefix of its id; else :class:`NotFoundError` naming
    ``where`` (the database)."""
    rows = yield queries.JOB_BY_ID, {"id": job_id}
    if not rows and job_id:
        rows = yield queries.JOBS_BY_PREFIX, {"prefix": _escape_like(job_id) + "%"}
        if len(rows) > 1:
            raise NotFoundError(f"job id prefix {job_id!r} is ambiguous")
    if not rows:
        raise NotFoundError(f"no job {job_id!r} in {where}")
    return _job(rows[0])


def list_jobs(
    *,
    status: str | None = None,
    action: str | None = None,
    since: float | None = None,
    limit: int = 20,
    started_by: str | None = None,
) -> Read[list[JobRecord]]:
    """The newest jobs first, filtered by status, action, age and who started them."""
    given = {"status": status, "action": action, "since": since, "started_by": started_by}
    params: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
    query = queries.list_jobs(frozenset(params))
    rows = yield query, {**params, "limit": limit}
    return [_job(row) for row in rows]


def counts_for(
    job_ids: Sequence[str], *, region: str | None = None
) -> Read[dict[str, dict[str, int]]]:
    """Items by state (every state present, zeros included) of each job, of one region or
    all."""
    result = {job_id: {state.value: 0 for state in ItemState} for job_id in job_ids}
    query = queries.counts(region=region is not None)
    extra = {} if region is None else {"region": region}
    for start in range(0, len(job_ids), CHUNK):
        chunk = list(job_ids[start : start + CHUNK])
        for row in (yield query, {"job_ids": chunk, **extra}):
            result[str(row["job_id"])][str(row["state"])] = int(row["n"])
    return result


def items_page(
    job_id: str,
    *,
    states: Iterable[ItemState] | None = None,
    after_id: int = 0,
    limit: int = 1000,
    region: str | None = None,
) -> Read[list[ItemRecord]]:
    """One page of a job's items in id order (keyset pagination: stream big jobs)."""
    params: dict[str, Any] = {"job_id": job_id, "after_id": after_id, "limit": limit}
    if region is not None:
        params["region"] = region
    if states is not None:
        params["states"] = [ItemState(state).value for state in states]
    query = queries.items_page(states=states is not None, region=region is not None)
    rows = yield query, params
    return [ItemRecord.from_row(row) for row in rows]


# -- what a job's history tells ------------------------------------------------------------------


def error_groups(job_id: str, *, examples: int = 3) -> Read[list[ErrorGroup]]:
    """Failed items grouped by error code, most frequent first, with up to ``examples`` each."""
    groups: dict[str, tuple[int, list[ErrorExample]]] = {}
    for row in (yield queries.ERROR_GROUPS, {"job_id": job_id, "examples": examples}):
        entry = groups.setdefault(str(row["code"]), (int(row["n"]), []))
        example = ErrorExample(workspace_id=row["workspace_id"], message=row["error_message"])
        entry[1].append(example)
    return [ErrorGroup(code, count, tuple(found)) for code, (count, found) in groups.items()]


def scope_summaries(job_id: str) -> Read[list[ScopeSummary]]:
    """Counts and errors per account and region, in account then region order."""
    found: dict[tuple[str, str], tuple[dict[str, int], dict[str, int]]] = {}
    for row in (yield queries.SCOPE_SUMMARIES, {"job_id": job_id}):
        counts, errors = found.setdefault(
            (row["account"] or "", row["region"] or ""), ({s.value: 0 for s in ItemState}, {})
        )
        counts[str(row["state"])] += int(row["n"])
        if row["code"] is not None:
            code = str(row["code"])
            errors[code] = errors.get(code, 0) + int(row["n"])
    return [
        ScopeSummary(account or None, region, counts, errors)
        for (account, region), (counts, errors) in sorted(found.items())
    ]


def reason_groups(
    job_id: str, state: ItemState = ItemState.SKIPPED, *, limit: int = 10
) -> Read[list[ReasonGroup]]:
    """Why items ended in ``state`` (skipped, by default), most frequent reason first."""
    rows = yield queries.REASON_GROUPS, {"job_id": job_id, "state": state.value, "limit": limit}
    return [ReasonGroup(str(row["reason"]), int(row["n"])) for row in rows]


def unverified_items(job_id: str, *, examples: int = 3) -> Read[ErrorGroup | None]:
    """Succeeded items that reached their end state with no evidence of the action ever seen
    (their count and a few examples), or None when every success was verified."""
    rows = yield queries.UNVERIFIED_ITEMS, {"job_id": job_id, "examples": examples}
    if not rows:
        return None
    shown = tuple(
        ErrorExample(workspace_id=row["workspace_id"], message=row["error_message"])
        for row in rows
    )
    return ErrorGroup(UNVERIFIED, int(rows[0]["n"]), shown)


def unverified_counts(job_ids: Sequence[str]) -> Read[dict[str, int]]:
    """How many succeeded items of each job were never verified (zeros included)."""
    result = dict.fromkeys(job_ids, 0)
    for start in range(0, len(job_ids), CHUNK):
        chunk = list(job_ids[start : start + CHUNK])
        for row in (yield queries.UNVERIFIED_COUNTS, {"job_ids": chunk}):
            result[str(row["job_id"])] = int(row["n"])
    return result


def operation_stats(job_id: str) -> Read[list[OperationStats]]:
    """API calls made by the job, per operation, most frequent first."""
    rows = yield queries.OPERATION_STATS, {"job_id": job_id}
    return [
        OperationStats(
            operation=str(row["operation"]),
            calls=int(row["calls"]),
            attempts=int(row["attempts"]),
            retries=int(row["retries"]),
            errors=int(row["errors"]),
            partial=int(row["partial"]),
            duration_ms=int(row["duration_ms"]),
        )
        for row in rows
    ]


def job_history(
    job: JobRecord,
    counts: dict[str, int] | None = None,
    *,
    examples: int = 3,
    in_doubt_limit: int = 20,
    now: float | None = None,
) -> Read[JobHistory]:
    """Everything ``jobs show`` tells about one job (a handful of indexed queries, each asked
    only when the counts say it can find something)."""
    if counts is None:
        counts = (yield from counts_for([job.id]))[job.id]
    errors: list[ErrorGroup] = []
    if counts.get(ItemState.FAILED.value):
        errors = yield from error_groups(job.id, examples=examples)
    skipped: list[ReasonGroup] = []
    if counts.get(ItemState.SKIPPED.value):
        skipped = yield from reason_groups(job.id, ItemState.SKIPPED)
    in_doubt: list[ItemRecord] = []
    if counts.get(ItemState.IN_DOUBT.value):
        in_doubt = yield from items_page(job.id, states=[ItemState.IN_DOUBT], limit=in_doubt_limit)
    operations = yield from operation_stats(job.id)
    unverified = None
    if counts.get(ItemState.SUCCEEDED.value):
        unverified = yield from unverified_items(job.id, examples=examples)
    scopes: list[ScopeSummary] = []
    if job.accounts or len(job.regions) > 1:
        scopes = yield from scope_summaries(job.id)
    return JobHistory(
        job=job,
        counts=counts,
        durations=durations(job, counts, now=now),
        errors=errors,
        skipped=skipped,
        in_doubt=in_doubt,
        operations=operations,
        unverified=unverified,
        scopes=scopes,
    )
