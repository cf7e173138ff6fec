"""Telling people a job ended: the document, when it is sent, and the record of each delivery.

When a run of a job ends — succeeded, failed, aborted, cancelled, interrupted (killed, Ctrl-C,
a worker draining) or holding items in doubt — each ``--notify`` target of the job gets one
JSON document::

    {"job_id", "action", "status", "counts", "unverified", "message", "text"}

``text`` is one human line (what Slack and Teams show). A webhook gets it as a POST
(:mod:`fleetops.engine.webhook`); an ``sns:`` topic as a message published through SNS
(:mod:`fleetops.aws.sns`). Each target is tried three times with backoff
(:func:`fleetops.aws.retry.delivery_retrying`).

Invariants: a notification never changes the job's status, message or exit code (every
failure is caught, logged and recorded); the record (``jobs.notifications``) and the logs name
a target as :func:`fleetops.catalogue.notify.shown` prints it — scheme and host, no path token,
query or userinfo — and the document carries no credential (nothing of the connection but the
job's id and figures).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import anyio

from fleetops.aws.retry import DeliveryError, delivery_retrying
from fleetops.catalogue.notify import is_sns, shown, sns_arn, sns_region
from fleetops.states import ENDED_STATUSES, ItemState, JobStatus

if TYPE_CHECKING:
    from fleetops.records import JobRecord

__all__ = ["NOTIFIED_STATUSES", "deliver", "document", "notify_end", "summary_line"]

log = logging.getLogger(__name__)

#: A run that ends in one of these is told (a job left planned, queued or running is not).
NOTIFIED_STATUSES = ENDED_STATUSES | {JobStatus.INTERRUPTED}
#: Tries per target, and the first backoff (seconds; doubled each time, jittered).
ATTEMPTS = 3
BACKOFF = 1.0

#: Sends one document to one target: (target, document, job) → raises DeliveryError.
Sender = Callable[[str, Mapping[str, Any], "JobRecord"], Awaitable[None]]


def summary_line(job: JobRecord, counts: Mapping[str, int], unverified: int) -> str:
    """One human line: ``fleetops reboot job j… succeeded: 40 succeeded, 2 skipped``."""
    parts = []
    for state in ItemState:
        if counts.get(state.value, 0):
            note = (
                f" ({unverified} unverified)" if state is ItemState.SUCCEEDED and unverified else ""
            )
            parts.append(f"{counts[state.value]} {state.value}{note}")
    line = (
        f"fleetops {job.action} job {job.id} {job.status.value}: {', '.join(parts) or 'no items'}"
    )
    return f"{line} — {job.message}" if job.message else line


def document(job: JobRecord, counts: Mapping[str, int], unverified: int) -> dict[str, Any]:
    """The notification of a job's end (the documented keys, nothing else)."""
    full = {state.value: int(counts.get(state.value, 0)) for state in ItemState}
    return {
        "job_id": job.id,
        "action": job.action,
        "status": job.status.value,
        "counts": full,
        "unverified": unverified,
        "message": job.message,
        "text": summary_line(job, full, unverified),
    }


async def _send(target: str, doc: Mapping[str, Any], job: JobRecord) -> None:
    if is_sns(target):
        from fleetops.aws.sns import publish

        subject = f"fleetops {job.action} job {job.status.value}"[:100]
        await publish(
            sns_arn(target),
            sns_region(target),
            json.dumps(doc),
            subject=subject,
            profile=job.profile,
        )
        return
    from fleetops.engine.webhook import post_json

    await post_json(target, doc)


async def deliver(
    target: str,
    doc: Mapping[str, Any],
    job: JobRecord,
    *,
    send: Sender = _send,
    backoff: float | None = None,
) -> dict[str, Any]:
    """Send ``doc`` to ``target`` (three tries); the record of what happened."""
    tries = 0
    error: str | None = None
    try:
        async for attempt in delivery_retrying(
            attempts=ATTEMPTS, base=BACKOFF if backoff is None else backoff
        ):
            with attempt:
                tries += 1
                await send(target, doc, job)
    except DeliveryError as exc:
        error = exc.reason
    except Exception as exc:  # a bug or a surprise at the edge: never the job's problem
        error = f"unexpected {type(exc).__name__}"
    record = {
        "target": shown(target),
        "status": job.status.value,
        "ok": error is None,
        "attempts": tries,
        "error": error,
        "at": time.time(),
    }
    if error is None:
        log.info("job %s: %s told (%s)", job.id, record["target"], job.status.value)
    else:
        log.warning(
            "job %s: notification to %s not delivered after %d tries: %s",
            job.id,
            record["target"],
            tries,
            error,
        )
    return record


async def notify_end(
    store: Any,
    job: JobRecord,
    targets: Sequence[str],
    *,
    send: Sender = _send,
    backoff: float | None = None,
) -> list[dict[str, Any]]:
    """Tell ``targets`` that this run of ``job`` ended, and record each delivery on the job.
    Nothing when the job has not ended (still planned, queued or running) or has no targets."""
    if not targets or job.status not in NOTIFIED_STATUSES:
        return []
    from fleetops.store.history import unverified_items

    with anyio.CancelScope(shield=True):  # a Ctrl-C now must not lose the record
        try:
            counts = await store.counts(job.id)
            found = await unverified_items(store, job.id, examples=1)
            doc = document(job, counts, found.count if found is not None else 0)
            records: list[dict[str, Any]] = []
            async with anyio.create_task_group() as tg:

                async def one(target: str) -> None:
                    records.append(await deliver(target, doc, job, send=send, backoff=backoff))

                for target in targets:
                    tg.start_soon(one, target)
            current = await store.get_job(job.id)
            await store.update_job(job.id, notifications=[*current.notifications, *records])
        except Exception as exc:  # the database away: the job's outcome stands regardless
            log.warning("job %s: notifications not recorded: %s", job.id, exc)
            return []
    return records
