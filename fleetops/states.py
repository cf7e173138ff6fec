"""Item and job states, and the pure rules between them (see shared/DESIGN.md)."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["FINAL_ITEM_STATES", "ItemState", "JobStatus", "exit_code_for"]


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
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # finished, some items failed
    ABORTED = "aborted"  # max-errors tripped
    INTERRUPTED = "interrupted"  # killed, Ctrl-C, expired credentials, items in doubt: resumable
    CANCELLED = "cancelled"


def exit_code_for(status: JobStatus, counts: dict[str, int]) -> int:
    """The CLI exit code of a finished (or stopped) job, from its status and item counts."""
    if status is JobStatus.ABORTED:
        return 3
    if counts.get(ItemState.IN_DOUBT, 0):
        return 4
    if status is JobStatus.INTERRUPTED:
        return 130
    if status is JobStatus.CANCELLED:
        return 1 if counts.get(ItemState.FAILED, 0) else 0
    if counts.get(ItemState.FAILED, 0):
        return 1
    return 0
