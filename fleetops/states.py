"""Item and job states, and the pure rules between them: a run's final status, its exit code.

Every set of states the code tests against (which jobs have ended, which items are still
unfinished, which hold their WorkSpace) is named here once; nothing else spells one out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "ACTED_ON_ITEM_STATES",
    "ACTIVE_ITEM_STATES",
    "COMPLETE_STATUSES",
    "ENDED_STATUSES",
    "FINAL_ITEM_STATES",
    "OUTCOME_ITEM_STATES",
    "QUEUEABLE_STATUSES",
    "UNCANCELLABLE_STATUSES",
    "UNFINISHED_ITEM_STATES",
    "UNVERIFIED",
    "ItemState",
    "JobStatus",
    "RunEnd",
    "exit_code_for",
    "final_status",
]


class ItemState(StrEnum):
    """One WorkSpace's progress in one job."""

    PENDING = "pending"
    IN_FLIGHT = "in_flight"  # committed before the call: the outcome is unknown until stored
    SUBMITTED = "submitted"  # accepted by the API, being verified
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    IN_DOUBT = "in_doubt"  # a destructive call may or may not have happened
    CANCELLED = "cancelled"


#: The error code of an item that reached its end state with no evidence of the action ever
#: observed: it is ``succeeded`` (the end state holds, nothing failed) but not verified.
UNVERIFIED = "Unverified"


FINAL_ITEM_STATES = frozenset(
    {
        ItemState.SUCCEEDED,
        ItemState.FAILED,
        ItemState.SKIPPED,
        ItemState.CANCELLED,
    }
)


class JobStatus(StrEnum):
    PLANNED = "planned"
    QUEUED = "queued"  # planned and waiting for a worker (run --queue)
    WAITING = "waiting"  # outside its maintenance window: continues at next_window_at
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # finished, some items failed
    ABORTED = "aborted"  # max-errors tripped
    INTERRUPTED = "interrupted"  # killed, Ctrl-C, expired credentials, items in doubt: resumable
    CANCELLED = "cancelled"


# -- the sets of states, each named once: code that asks "is this job over?" uses these --------

#: Items whose outcome is still to come: every state but the final ones (in doubt included).
UNFINISHED_ITEM_STATES = frozenset(ItemState) - FINAL_ITEM_STATES
#: Items the action is for: every state but skipped and cancelled (the base of ``--max-errors
#: P%``).
ACTED_ON_ITEM_STATES = frozenset(ItemState) - {ItemState.SKIPPED, ItemState.CANCELLED}
#: Items whose call is under way (committed, or accepted and being verified): in a live job,
#: such an item holds its WorkSpace against every other job.
ACTIVE_ITEM_STATES = frozenset({ItemState.IN_FLIGHT, ItemState.SUBMITTED})
#: Items that reached the outcome of a call: it succeeded, it failed, or it may have happened.
OUTCOME_ITEM_STATES = frozenset({ItemState.SUCCEEDED, ItemState.FAILED, ItemState.IN_DOUBT})

#: Jobs that have ended: a worker leaves them alone (an interrupted job has not ended; it is
#: resumed).
ENDED_STATUSES = frozenset(
    {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.ABORTED, JobStatus.CANCELLED}
)
#: Jobs with nothing left to do: resuming one returns it as it is.
COMPLETE_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.CANCELLED})
#: Jobs with nothing left to cancel (an aborted job still holds pending items to cancel).
UNCANCELLABLE_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})
#: Jobs that may be put on the queue: not started yet, or stopped and resumable.
QUEUEABLE_STATUSES = frozenset({JobStatus.PLANNED, JobStatus.QUEUED, JobStatus.INTERRUPTED})


def exit_code_for(status: JobStatus, counts: Mapping[str, int]) -> int:
    """The CLI exit code of a finished (or stopped) job, from its status and item counts."""
    if status is JobStatus.ABORTED:
        return 3
    if counts.get(ItemState.IN_DOUBT, 0):
        return 4
    if status in (JobStatus.INTERRUPTED, JobStatus.WAITING):  # resumable
        return 130
    if status is JobStatus.FAILED:
        return 1  # items failed, or the API did
    if status is JobStatus.CANCELLED:
        return 1 if counts.get(ItemState.FAILED, 0) else 0
    if counts.get(ItemState.FAILED, 0):
        return 1
    return 0


@dataclass(frozen=True)
class RunEnd:
    """What a run observed when it ended: the input of :func:`final_status`."""

    job_id: str
    counts: Mapping[str, int]  # items by state, as stored
    failure: str | None = None  # the API failed for good (planning, a broken operation)
    aborted: bool = False  # the error budget was exceeded
    max_errors: str | None = None
    stop_reason: str | None = None  # a stop was asked for (signal, lost lease, credentials)
    waits: bool = True  # items submitted but not verified are unfinished (not --no-wait)
    unreachable: tuple[str, ...] = ()  # accounts whose role could not be assumed: the reasons


def final_status(end: RunEnd) -> tuple[JobStatus, str | None]:
    """The job's status and message at the end of a run, in order of precedence: the API broke,
    the budget tripped, a stop, items in doubt, items unfinished, items failed, success."""
    counts = end.counts
    failed = counts.get(ItemState.FAILED, 0)
    resume = f"`fleetops jobs resume {end.job_id}`"
    if end.failure is not None:
        return JobStatus.FAILED, end.failure
    if end.aborted:
        return (
            JobStatus.ABORTED,
            f"aborted: {failed} failed items exceed --max-errors {end.max_errors}",
        )
    if end.stop_reason is not None:
        renew = " (renew them first)" if "credentials" in end.stop_reason else ""
        return JobStatus.INTERRUPTED, f"{end.stop_reason}: resume with {resume}{renew}"
    in_doubt = counts.get(ItemState.IN_DOUBT, 0)
    if in_doubt:
        return JobStatus.INTERRUPTED, (
            f"{in_doubt} items in doubt await the operator: check them, then "
            f"{resume[:-1]} --redo-in-doubt` to send them again"
        )
    unfinished = counts.get(ItemState.PENDING, 0) + counts.get(ItemState.IN_FLIGHT, 0)
    if end.waits:
        unfinished += counts.get(ItemState.SUBMITTED, 0)
    if unfinished:
        return JobStatus.INTERRUPTED, f"{unfinished} items unfinished"
    if end.unreachable:
        items = f"; {failed} items failed" if failed else ""
        return JobStatus.FAILED, "; ".join(end.unreachable) + items
    if failed:
        return JobStatus.FAILED, f"{failed} items failed"
    return JobStatus.SUCCEEDED, None
