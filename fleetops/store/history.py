"""What happened in a job, answered by aggregate queries (never a Python loop over every item).

Every query here is bounded by the (job_id, state) index on items or the (job_id, at) index on
events: a job's counts, its failures grouped by error code with a few examples, the reasons
WorkSpaces were skipped, the items held in doubt, and the API calls the job made. Cancelling a
job that no live runner holds lives here too: it is two UPDATEs over the same index.
"""

from __future__ import annotations

import time

import sqlalchemy as sa

from fleetops.records import (  # plain data, importable without SQLAlchemy
    NO_CODE,
    CancelOutcome,
    CancelResult,
    Durations,
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
from fleetops.states import UNCANCELLABLE_STATUSES, UNVERIFIED, ItemState, JobStatus
from fleetops.store.repo import Store, lease_owner_id
from fleetops.store.tables import events, items, jobs

__all__ = [
    "CancelOutcome",
    "CancelResult",
    "Durations",
    "ErrorExample",
    "ErrorGroup",
    "JobHistory",
    "OperationStats",
    "ReasonGroup",
    "ScopeSummary",
    "cancel_job",
    "durations",
    "error_groups",
    "in_doubt_items",
    "job_history",
    "operation_stats",
    "reason_groups",
    "scope_summaries",
    "unverified_items",
]

#: How long cancel holds the job's lease while it writes (it releases it at once).
CANCEL_LEASE_TTL = 30.0
#: Job statuses with nothing left to cancel.
FINISHED = UNCANCELLABLE_STATUSES


def error_groups_query(job_id: str, *, examples: int = 3) -> sa.Executable:
    """Failed items by error code: one row per example (≤ ``examples`` per code), each carrying
    its code's count. Scans only the job's failed items, through the (job_id, state) index."""
    code = sa.func.coalesce(items.c.error_code, NO_CODE)
    ranked = (
        sa.select(
            code.label("code"),
            items.c.workspace_id,
            items.c.error_message,
            sa.func.row_number().over(partition_by=code, order_by=items.c.id).label("rank"),
            sa.func.count().over(partition_by=code).label("n"),
        )
        .where(items.c.job_id == job_id, items.c.state == ItemState.FAILED.value)
        .subquery()
    )
    return (
        sa.select(ranked.c.code, ranked.c.n, ranked.c.workspace_id, ranked.c.error_message)
        .where(ranked.c.rank <= examples)
        .order_by(ranked.c.n.desc(), ranked.c.code, ranked.c.rank)
    )


async def error_groups(store: Store, job_id: str, *, examples: int = 3) -> list[ErrorGroup]:
    """Failed items grouped by error code, most frequent first, with up to ``examples`` each."""
    async with store.reading() as conn:
        rows = (await conn.execute(error_groups_query(job_id, examples=examples))).all()
    groups: dict[str, tuple[int, list[ErrorExample]]] = {}
    for code, count, workspace_id, message in rows:
        entry = groups.setdefault(str(code), (int(count), []))
        entry[1].append(ErrorExample(workspace_id=workspace_id, message=message))
    return [ErrorGroup(code, count, tuple(found)) for code, (count, found) in groups.items()]


def scope_summaries_query(job_id: str) -> sa.Executable:
    """Items by account, region and state, failed ones by error code too (one aggregate)."""
    code = sa.case(
        (items.c.state == ItemState.FAILED.value, sa.func.coalesce(items.c.error_code, NO_CODE)),
        else_=None,
    )
    return (
        sa.select(items.c.account, items.c.region, items.c.state, code, sa.func.count())
        .where(items.c.job_id == job_id)
        .group_by(items.c.account, items.c.region, items.c.state, code)
    )


async def scope_summaries(store: Store, job_id: str) -> list[ScopeSummary]:
    """Counts and errors per account and region, in account then region order."""
    async with store.reading() as conn:
        rows = (await conn.execute(scope_summaries_query(job_id))).all()
    found: dict[tuple[str, str], tuple[dict[str, int], dict[str, int]]] = {}
    for account, region, state, code, count in rows:
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


def reason_groups_query(job_id: str, state: ItemState, *, limit: int) -> sa.Executable:
    reason = sa.func.coalesce(items.c.reason, "(no reason)")
    return (
        sa.select(reason.label("reason"), sa.func.count().label("n"))
        .where(items.c.job_id == job_id, items.c.state == state.value)
        .group_by(reason)
        .order_by(sa.desc("n"), reason)
        .limit(limit)
    )


async def reason_groups(
    store: Store, job_id: str, state: ItemState = ItemState.SKIPPED, *, limit: int = 10
) -> list[ReasonGroup]:
    """Why items ended in ``state`` (skipped, by default), most frequent reason first."""
    async with store.reading() as conn:
        rows = (await conn.execute(reason_groups_query(job_id, state, limit=limit))).all()
    return [ReasonGroup(str(reason), int(count)) for reason, count in rows]


def unverified_query(job_id: str, *, examples: int) -> sa.Executable:
    """Succeeded items recorded ``Unverified``: the first ``examples``, each carrying the count.
    Scans only the job's succeeded items, through the (job_id, state) index."""
    return (
        sa.select(
            sa.func.count().over().label("n"),
            items.c.workspace_id,
            items.c.error_message,
        )
        .where(
            items.c.job_id == job_id,
            items.c.state == ItemState.SUCCEEDED.value,
            items.c.error_code == UNVERIFIED,
        )
        .order_by(items.c.id)
        .limit(examples)
    )


async def unverified_items(store: Store, job_id: str, *, examples: int = 3) -> ErrorGroup | None:
    """Succeeded items that reached their end state with no evidence of the action ever seen
    (their count and a few examples), or None when every success was verified."""
    async with store.reading() as conn:
        rows = (await conn.execute(unverified_query(job_id, examples=examples))).all()
    if not rows:
        return None
    found = tuple(ErrorExample(workspace_id=ws_id, message=message) for _, ws_id, message in rows)
    return ErrorGroup(UNVERIFIED, int(rows[0][0]), found)


async def in_doubt_items(store: Store, job_id: str, *, limit: int = 20) -> list[ItemRecord]:
    """The first ``limit`` items held in doubt (the operator decides about each)."""
    return await store.items_page(job_id, states=[ItemState.IN_DOUBT], limit=limit)


def operation_stats_query(job_id: str) -> sa.Executable:
    return (
        sa.select(
            events.c.operation,
            sa.func.count().label("calls"),
            sa.func.coalesce(sa.func.sum(events.c.attempts), 0),
            # attempts beyond the first (a CASE: SQLite's two-argument max() is not portable)
            sa.func.coalesce(
                sa.func.sum(sa.case((events.c.attempts > 1, events.c.attempts - 1), else_=0)), 0
            ),
            sa.func.coalesce(sa.func.sum(sa.case((events.c.outcome == "error", 1), else_=0)), 0),
            sa.func.coalesce(sa.func.sum(sa.case((events.c.outcome == "partial", 1), else_=0)), 0),
            sa.func.coalesce(sa.func.sum(events.c.duration_ms), 0),
        )
        .where(events.c.job_id == job_id)
        .group_by(events.c.operation)
        .order_by(sa.desc("calls"), events.c.operation)
    )


async def operation_stats(store: Store, job_id: str) -> list[OperationStats]:
    """API calls made by the job, per operation, most frequent first."""
    async with store.reading() as conn:
        rows = (await conn.execute(operation_stats_query(job_id))).all()
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
        for op, calls, attempts, retries, errors, partial, duration in rows
    ]


async def job_history(
    store: Store,
    job: JobRecord,
    counts: dict[str, int] | None = None,
    *,
    examples: int = 3,
    in_doubt_limit: int = 20,
    now: float | None = None,
) -> JobHistory:
    """Everything ``jobs show`` tells about one job (a handful of indexed queries)."""
    if counts is None:
        counts = await store.counts(job.id)
    return JobHistory(
        job=job,
        counts=counts,
        durations=durations(job, counts, now=now),
        errors=(
            await error_groups(store, job.id, examples=examples)
            if counts.get(ItemState.FAILED.value)
            else []
        ),
        skipped=(
            await reason_groups(store, job.id, ItemState.SKIPPED)
            if counts.get(ItemState.SKIPPED.value)
            else []
        ),
        in_doubt=(
            await in_doubt_items(store, job.id, limit=in_doubt_limit)
            if counts.get(ItemState.IN_DOUBT.value)
            else []
        ),
        operations=await operation_stats(store, job.id),
        unverified=(
            await unverified_items(store, job.id, examples=examples)
            if counts.get(ItemState.SUCCEEDED.value)
            else None
        ),
        scopes=(
            await scope_summaries(store, job.id)
            if job.accounts or len(job.regions) > 1
            else []
        ),
    )


# -- cancel ------------------------------------------------------------------------------------


async def cancel_job(
    store: Store, job_id: str, *, reason: str = "cancelled by operator"
) -> CancelResult:
    """Cancel a job that no live runner holds: status ``cancelled``, pending items ``cancelled``.

    The job's lease is taken for the duration of the write, so a runner cannot start on it
    meanwhile; a live holder means the job is running and the cancel is refused. Items in flight
    keep their state: their outcome is unknown, and calling them cancelled would hide that.
    """
    job = await store.get_job(job_id)
    if job.status is JobStatus.CANCELLED:
        return CancelResult(CancelOutcome.ALREADY, job)
    if job.status in FINISHED:
        return CancelResult(CancelOutcome.FINISHED, job)
    owner = lease_owner_id()
    holder = await store.acquire_lease(job.id, owner, CANCEL_LEASE_TTL)
    if holder is not None:
        return CancelResult(CancelOutcome.RUNNING, job, holder=holder)
    try:
        now = time.time()
        async with store.transaction() as conn:
            result = await conn.execute(
                items.update()
                .where(items.c.job_id == job.id, items.c.state == ItemState.PENDING.value)
                .values(state=ItemState.CANCELLED.value, reason=reason, updated_at=now)
            )
            cancelled = int(result.rowcount or 0)
            await conn.execute(
                jobs.update()
                .where(jobs.c.id == job.id)
                .values(
                    status=JobStatus.CANCELLED.value,
                    finished_at=sa.func.coalesce(jobs.c.finished_at, now),
                    message=reason,
                )
            )
    finally:
        await store.release_lease(job.id, owner)
    return CancelResult(CancelOutcome.CANCELLED, await store.get_job(job.id), cancelled)
