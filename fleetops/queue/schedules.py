"""Schedules run by workers: each live worker looks at the schedules table every few seconds
and puts what is due on the queue.

Why a loop in every worker that reads the table, and not procrastinate's periodic tasks:
procrastinate's periodic tasks are declared in code when the worker starts, on one cron in the
worker's own time, with no catch-up; fleetops's schedules are rows an operator adds, pauses and
removes while workers run, each with its time zone and catch-up. What makes several workers
safe is the database, not procrastinate: a slot is claimed by inserting its
``(schedule, slot_at)`` row (``ON CONFLICT DO NOTHING``) in the transaction that records the
job ``queued`` (:func:`fleetops.api.claim_due`), so however many workers look at once, each
slot becomes one job. The queue entry is added after that commit; a crash in between leaves a
``queued`` job without an entry, which every worker's sweep puts on the queue.

The clock is injectable (``clock``), so tests run minutes of a schedule in seconds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import anyio

from fleetops import api
from fleetops.queue.tasks import enqueue
from fleetops.states import JobStatus

if TYPE_CHECKING:
    import procrastinate

    from fleetops.store import Store

__all__ = ["SCHEDULE_INTERVAL", "queue_due", "run_schedules"]

log = logging.getLogger(__name__)

#: How often each worker looks for due schedules (seconds): a slot starts within this long.
SCHEDULE_INTERVAL = 5.0


async def queue_due(store: Store, app: procrastinate.App, *, now: float | None = None) -> list[str]:
    """Claim what is due at ``now`` as ``queued`` jobs and put them on the queue; their ids."""
    claimed = await api.claim_due(store, now=now, status=JobStatus.QUEUED)
    queued: list[str] = []
    for entry in claimed:
        if entry["missed"]:
            log.warning(
                "schedule %s: %d slot(s) missed (older than its catch-up)",
                entry["schedule"],
                entry["missed"],
            )
        job_id = entry["job_id"]
        if job_id is None:
            continue
        with anyio.CancelScope(shield=True):
            await enqueue(app, job_id)
        queued.append(job_id)
        log.info("schedule %s: slot %s is job %s", entry["schedule"], entry["slot_at"], job_id)
    return queued


async def run_schedules(
    store: Store,
    app: procrastinate.App,
    *,
    interval: float = SCHEDULE_INTERVAL,
    clock: Callable[[], float] = time.time,
) -> None:
    """Queue due schedules every ``interval`` seconds until cancelled."""
    while True:
        try:
            await queue_due(store, app, now=clock())
        except Exception as exc:  # the database away for a moment: try again next round
            log.warning("schedules: %s", exc)
        await anyio.sleep(interval)
