"""What happened in a job, answered by the Store: aggregate queries, never a Python loop over
every item.

A job's counts, its failures grouped by error code with a few examples, the reasons WorkSpaces
were skipped, the items held in doubt, and the API calls the job made. Each is a read of
:mod:`fleetops.store.reads` (its SQL written once in :mod:`fleetops.store.queries`) run on the
Store's connection: the history commands' light readers (:mod:`fleetops.store.history_read`) run
the very same reads, so both answer alike. Cancelling a job that no live runner holds lives here
too: it is two UPDATEs over the (job_id, state) index.
"""

from __future__ import annotations

import time

import sqlalchemy as sa

from fleetops.records import (  # plain data, importable without SQLAlchemy
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
from fleetops.states import UNCANCELLABLE_STATUSES, ItemState, JobStatus
from fleetops.store import reads
from fleetops.store.repo import Store, lease_owner_id
from fleetops.store.tables import items, jobs

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


async def error_groups(store: Store, job_id: str, *, examples: int = 3) -> list[ErrorGroup]:
    """Failed items grouped by error code, most frequent first, with up to ``examples`` each."""
    return await store.read(reads.error_groups(job_id, examples=examples))


async def scope_summaries(store: Store, job_id: str) -> list[ScopeSummary]:
    """Counts and errors per account and region, in account then region order."""
    return await store.read(reads.scope_summaries(job_id))


async def reason_groups(
    store: Store, job_id: str, state: ItemState = ItemState.SKIPPED, *, limit: int = 10
) -> list[ReasonGroup]:
    """Why items ended in ``state`` (skipped, by default), most frequent reason first."""
    return await store.read(reads.reason_groups(job_id, state, limit=limit))


async def unverified_items(store: Store, job_id: str, *, examples: int = 3) -> ErrorGroup | None:
    """Succeeded items that reached their end state with no evidence of the action ever seen
    (their count and a few examples), or None when every success was verified."""
    return await store.read(reads.unverified_items(job_id, examples=examples))


async def in_doubt_items(store: Store, job_id: str, *, limit: int = 20) -> list[ItemRecord]:
    """The first ``limit`` items held in doubt (the operator decides about each)."""
    return await store.items_page(job_id, states=[ItemState.IN_DOUBT], limit=limit)


async def operation_stats(store: Store, job_id: str) -> list[OperationStats]:
    """API calls made by the job, per operation, most frequent first."""
    return await store.read(reads.operation_stats(job_id))


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
    return await store.read(
        reads.job_history(
            job, counts, examples=examples, in_doubt_limit=in_doubt_limit, now=now
        )
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
