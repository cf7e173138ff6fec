"""What ``jobs show`` tells about a job, as plain data: counts, durations, failures by error
code, skip reasons, items in doubt, API calls per operation, and per account/region summaries.

These types carry no database code, so a reader that needs no SQLAlchemy (the standard library's
``sqlite3`` for a SQLite file) builds the same :class:`JobHistory` as the Store's aggregate
queries in :mod:`fleetops.store.history`, which re-exports them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from fleetops.records import ItemRecord, JobRecord
from fleetops.states import UNVERIFIED, ItemState, JobStatus

__all__ = [
    "NO_CODE",
    "UNVERIFIED",
    "Durations",
    "ErrorExample",
    "ErrorGroup",
    "JobHistory",
    "OperationStats",
    "ReasonGroup",
    "ScopeSummary",
    "durations",
]

#: Error code shown for a failed item that recorded none.
NO_CODE = "(no code)"


@dataclass(frozen=True)
class ErrorExample:
    workspace_id: str
    message: str | None


@dataclass(frozen=True)
class ErrorGroup:
    """Failed items sharing one error code: how many, and the first few of them."""

    code: str
    count: int
    examples: tuple[ErrorExample, ...]


@dataclass(frozen=True)
class ReasonGroup:
    reason: str
    count: int


@dataclass(frozen=True)
class OperationStats:
    """The API calls a job made for one operation (one event row per call)."""

    operation: str
    calls: int
    attempts: int
    retries: int  # attempts beyond the first: throttling, 5xx, time-outs
    errors: int  # calls that failed for good (outcome "error")
    partial: int  # batch calls where some entries failed
    duration_ms: int

    @property
    def avg_ms(self) -> float:
        return self.duration_ms / self.calls if self.calls else 0.0


@dataclass(frozen=True)
class ScopeSummary:
    """One account (None: the connection's own) in one region: its items by state and its
    failed items by error code."""

    account: str | None
    region: str
    counts: dict[str, int]
    errors: dict[str, int]

    @property
    def key(self) -> str:
        return f"{self.account}/{self.region}" if self.account else self.region


@dataclass(frozen=True)
class Durations:
    plan_s: float | None  # created → planned
    wait_s: float | None  # created → started
    run_s: float | None  # started → finished (→ now while running)
    throughput: float | None  # succeeded WorkSpaces per second of run time
    running: bool


@dataclass(frozen=True)
class JobHistory:
    job: JobRecord
    counts: dict[str, int]
    durations: Durations
    errors: list[ErrorGroup]
    skipped: list[ReasonGroup]
    in_doubt: list[ItemRecord]
    operations: list[OperationStats]
    #: Succeeded items whose success was never verified (error code ``Unverified``): their
    #: count (a part of ``counts["succeeded"]``) and the first few of them.
    unverified: ErrorGroup | None = None
    #: A job over several accounts or regions: counts and errors of each (else empty).
    scopes: list[ScopeSummary] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def api_calls(self) -> int:
        return sum(op.calls for op in self.operations)

    @property
    def retries(self) -> int:
        return sum(op.retries for op in self.operations)


def durations(job: JobRecord, counts: dict[str, int], *, now: float | None = None) -> Durations:
    """Plan, wait and run times, and throughput (succeeded WorkSpaces per second of run)."""
    running = job.status is JobStatus.RUNNING and job.finished_at is None
    plan_s = job.planned_at - job.created_at if job.planned_at is not None else None
    wait_s = job.started_at - job.created_at if job.started_at is not None else None
    run_s: float | None = None
    if job.started_at is not None:
        end = job.finished_at
        if end is None and running:
            end = time.time() if now is None else now
        if end is not None:
            run_s = max(end - job.started_at, 0.0)
    succeeded = counts.get(ItemState.SUCCEEDED.value, 0)
    throughput = succeeded / run_s if run_s else None
    return Durations(
        plan_s=plan_s, wait_s=wait_s, run_s=run_s, throughput=throughput, running=running
    )
