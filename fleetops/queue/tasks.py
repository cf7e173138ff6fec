"""The job queue: procrastinate on the team's PostgreSQL database.

procrastinate (a maintained PostgreSQL job queue) owns *which worker runs which job when*: the
queue table, claims with ``SELECT … FOR UPDATE SKIP LOCKED``, LISTEN/NOTIFY wake-ups,
concurrency, worker heartbeats and the list of jobs whose worker stopped heartbeating. fleetops
keeps what is specific to WorkSpaces: the job's own lease (owner ``host:pid:token``, renewed by
the runner), every item committed ``in_flight`` before its call, and reconciliation on resume.
A queue entry carries only the job id; whoever runs it resumes the job by the resume rule.

Each fleetops job is deferred with ``queueing_lock`` = its id (at most one waiting entry) and
``lock`` = its id (procrastinate never runs two entries of one job at the same time).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Protocol

import procrastinate
from procrastinate import exceptions as pq_exceptions

from fleetops.errors import UsageError
from fleetops.states import QUEUEABLE_STATUSES, JobStatus
from fleetops.store.queue_db import ensure_queue_schema, queue_connector, queue_conninfo

if TYPE_CHECKING:
    from fleetops.store import JobRecord, Store

__all__ = [
    "QUEUE",
    "TASK",
    "build_app",
    "conninfo",
    "enqueue",
    "ensure_schema",
    "queue_job",
    "require_postgresql",
]

log = logging.getLogger(__name__)

#: The procrastinate queue fleetops jobs go through, and the task that runs one.
QUEUE = "fleetops"
TASK = "fleetops.run_job"

QUEUE_NEEDS_POSTGRESQL = (
    "the job queue and workers need a PostgreSQL store (--db postgresql://USER@HOST:PORT/DB); "
    "with SQLite run jobs directly: fleetops run … / fleetops jobs start JOB"
)


def require_postgresql(store: Store) -> None:
    """One line, exit 2, when the store is not PostgreSQL (procrastinate lives there)."""
    if store.engine.dialect.name != "postgresql":
        raise UsageError(QUEUE_NEEDS_POSTGRESQL)


def conninfo(store: Store) -> str:
    """The store's database as a libpq URL (what psycopg and procrastinate connect with)."""
    return queue_conninfo(store.engine.url)


class JobRuntime(Protocol):
    """What the queue's task needs of the worker that runs it
    (fleetops.queue.worker.WorkerRuntime)."""

    async def run(self, job_id: str) -> None: ...


async def _run_job_task(context: procrastinate.JobContext, job_id: str) -> None:
    runtime: JobRuntime = context.additional_context["fleetops"]
    await runtime.run(job_id)


def build_app(dsn: str, *, pool_size: int = 4) -> procrastinate.App:
    """A procrastinate app on ``dsn`` with fleetops's one task registered."""
    app = procrastinate.App(connector=queue_connector(dsn, max_size=max(4, pool_size)))
    app.task(name=TASK, queue=QUEUE, pass_context=True)(_run_job_task)
    return app


async def ensure_schema(dsn: str) -> bool:
    """Create procrastinate's tables on first use (under an advisory lock: several workers may
    start at once). Returns whether it was created now."""
    created = await ensure_queue_schema(dsn)
    if created:
        log.info("job queue: procrastinate's schema created")
    return created


async def enqueue(app: procrastinate.App, job_id: str, *, delay: float = 0.0) -> bool:
    """Put ``job_id`` on the queue (after ``delay`` seconds). False if it is already waiting."""
    task = app.tasks[TASK]
    options: dict[str, Any] = {"queueing_lock": job_id, "lock": job_id}
    if delay > 0:
        options["schedule_in"] = {"seconds": delay}
    try:
        await task.configure(**options).defer_async(job_id=job_id)
    except pq_exceptions.AlreadyEnqueued:
        return False
    return True


async def waiting_job_ids(app: procrastinate.App) -> set[str]:
    """fleetops job ids with an entry waiting or running in the queue."""
    rows = await app.connector.execute_query_all_async(
        query="SELECT queueing_lock FROM procrastinate_jobs "
        "WHERE queue_name = %(queue)s AND status IN ('todo', 'doing')",
        queue=QUEUE,
    )
    return {str(row["queueing_lock"]) for row in rows if row["queueing_lock"]}


async def queue_job(store: Store, job_id: str) -> JobRecord:
    """Mark a planned job ``queued`` and put it on the queue for a worker.

    The status is written first: a crash before the queue entry exists leaves a ``queued`` job
    that every worker's sweep puts on the queue (nothing is lost).
    """
    require_postgresql(store)
    job = await store.get_job(job_id)
    if job.status not in QUEUEABLE_STATUSES:
        raise UsageError(f"job {job.id} is {job.status.value}: only a planned job can be queued")
    dsn = conninfo(store)
    await ensure_schema(dsn)
    await store.update_job(job.id, status=JobStatus.QUEUED, message=None)
    app = build_app(dsn, pool_size=1)
    async with app.open_async():
        enqueue_start = time.monotonic()
        fresh = await enqueue(app, job.id)
    log.info(
        "job %s queued%s (%.0f ms)",
        job.id,
        "" if fresh else " (already waiting)",
        (time.monotonic() - enqueue_start) * 1000,
    )
    return await store.get_job(job.id)
