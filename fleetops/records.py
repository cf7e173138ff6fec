"""The plain record types of fleetops: what the store writes and what it answers.

Jobs and items as read (:class:`JobRecord`, :class:`ItemRecord`, built from a row by
``from_row``), what is written (:class:`NewJob`, :class:`ItemUpdate`, :class:`EventRow`), what a
job's history tells (:class:`JobHistory` and its parts) and what a cancel did
(:class:`CancelResult`). Frozen dataclasses with no database code: every store (SQLAlchemy's,
the in-memory one, the plain-driver history readers) maps its rows to these same types, so
their answers compare equal field by field, and whoever only reads them never imports a
database library.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from fleetops.states import ItemState, JobStatus

__all__ = [
    "NO_CODE",
    "ROLLOUT_RECORD",
    "CancelOutcome",
    "CancelResult",
    "Durations",
    "ErrorExample",
    "ErrorGroup",
    "EventRow",
    "ItemRecord",
    "ItemUpdate",
    "JobHistory",
    "JobRecord",
    "NewJob",
    "OperationStats",
    "ReasonGroup",
    "ScheduleRecord",
    "ScopeSummary",
    "StepChange",
    "StepRecord",
    "durations",
    "iso",
    "new_job_id",
    "shown_target",
]


def iso(ts: float | None) -> str | None:
    """Epoch seconds → ``2026-11-25T23:05:51.123Z`` (None stays None)."""
    if ts is None:
        return None
    text = datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def shown_target(target: str) -> str:
    """A notification target as it may be printed: an ``sns:`` ARN as is; a URL as its scheme
    and host only (``https://hooks.slack.com/…``): a webhook's path often is its token, and a
    query or userinfo may carry a key."""
    from urllib.parse import urlsplit

    if target.startswith("sns:"):
        return target
    try:
        parts = urlsplit(target)
        host, port = parts.hostname, parts.port
    except ValueError:
        return "(a URL that does not parse)"
    if not parts.scheme or not host:
        return "(not a URL)"
    rest = "/…" if (parts.path not in ("", "/") or parts.query or parts.fragment) else ""
    return f"{parts.scheme}://{host}{f':{port}' if port else ''}{rest}"


def _regions(row: Mapping[Any, Any]) -> dict[str, Any]:
    """The ``regions`` column: ``[{"region": ..., "endpoint_url": ...}, ...]`` (None for jobs
    recorded before multi-region jobs existed: the job's one region and endpoint)."""
    entries = row.get("regions") or [{"region": row["region"], "endpoint_url": row["endpoint_url"]}]
    endpoints: dict[str, str | None] = {}
    for entry in entries:
        if isinstance(entry, str):
            endpoints[entry] = row["endpoint_url"]
        else:
            endpoints[str(entry["region"])] = entry.get("endpoint_url")
    return {"regions": tuple(endpoints), "endpoints": endpoints}


def _accounts(value: Any) -> tuple[str, ...] | None:
    """The ``accounts`` column: a JSON list of account ids, or None (the connection's own)."""
    if value is None:
        return None
    return tuple(str(account) for account in value)


@dataclass(frozen=True)
class JobRecord:
    id: str
    parent_id: str | None
    action: str
    status: JobStatus
    params: dict[str, Any]
    targets: dict[str, Any]
    options: dict[str, Any]
    region: str
    profile: str | None
    endpoint_url: str | None
    message: str | None
    created_at: float
    planned_at: float | None
    started_at: float | None
    finished_at: float | None
    lease_owner: str | None
    lease_expires_at: float | None
    regions: tuple[str, ...] = ()  # every region of the job (one for most jobs)
    endpoints: dict[str, str | None] = field(default_factory=dict)  # region → endpoint URL
    started_by: str | None = None  # the OS user who created the job
    started_host: str | None = None  # the host it was created on
    caller_arn: str | None = None  # the AWS caller identity, once the connection is resolved
    accounts: tuple[str, ...] | None = None  # account ids of a multi-account job
    assume: dict[str, Any] | None = None  # role_name, role_arn_template, external_id
    require_approval: bool = False  # a stored plan that starts only once someone else approves
    approved_by: str | None = None  # who approved it (never its planner, started_by)
    approved_at: float | None = None
    approval_comment: str | None = None
    # what was told of the job's ends (fleetops.engine.notify), oldest first
    notifications: tuple[dict[str, Any], ...] = ()
    next_window_at: float | None = None  # a waiting job's next maintenance window opens then

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> JobRecord:
        return cls(
            id=row["id"],
            parent_id=row["parent_id"],
            action=row["action"],
            status=JobStatus(row["status"]),
            params=dict(row["params"] or {}),
            targets=dict(row["targets"] or {}),
            options=dict(row["options"] or {}),
            region=row["region"],
            profile=row["profile"],
            endpoint_url=row["endpoint_url"],
            message=row["message"],
            created_at=row["created_at"],
            planned_at=row["planned_at"],
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            lease_owner=row["lease_owner"],
            lease_expires_at=row["lease_expires_at"],
            started_by=row.get("started_by"),
            started_host=row.get("started_host"),
            caller_arn=row.get("caller_arn"),
            accounts=_accounts(row.get("accounts")),
            assume=dict(row["assume"]) if row.get("assume") else None,
            require_approval=bool(row.get("require_approval")),
            approved_by=row.get("approved_by"),
            approved_at=row.get("approved_at"),
            approval_comment=row.get("approval_comment"),
            notifications=tuple(dict(n) for n in row.get("notifications") or ()),
            next_window_at=row.get("next_window_at"),
            **_regions(row),
        )


@dataclass(frozen=True)
class ItemRecord:
    id: int
    job_id: str
    workspace_id: str
    region: str
    state: ItemState
    attempts: int
    seen_state: str | None
    last_state: str | None
    user_name: str | None
    directory_id: str | None
    bundle_id: str | None
    reason: str | None
    error_code: str | None
    error_message: str | None
    result: str | None
    submitted_at: float | None
    updated_at: float
    account: str | None = None  # None: the connection's own account

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> ItemRecord:
        return cls(
            id=row["id"],
            job_id=row["job_id"],
            workspace_id=row["workspace_id"],
            region=row["region"],
            state=ItemState(row["state"]),
            attempts=row["attempts"],
            seen_state=row["seen_state"],
            last_state=row["last_state"],
            user_name=row["user_name"],
            directory_id=row["directory_id"],
            bundle_id=row["bundle_id"],
            reason=row["reason"],
            error_code=row["error_code"],
            error_message=row["error_message"],
            result=row["result"],
            submitted_at=row["submitted_at"],
            updated_at=row["updated_at"],
            account=row.get("account"),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "workspace_id": self.workspace_id,
            "region": self.region,
            "state": str(self.state),
            "attempts": self.attempts,
            "seen_state": self.seen_state,
            "last_state": self.last_state,
            "user_name": self.user_name,
            "directory_id": self.directory_id,
            "bundle_id": self.bundle_id,
            "reason": self.reason,
            "error_code": self.error_code,
            "error_message": self.error_message,
            "result": self.result,
            "submitted_at": iso(self.submitted_at),
            "updated_at": iso(self.updated_at),
            "account": self.account,
        }


# -- what is written ------------------------------------------------------------------------


def new_job_id() -> str:
    """Sortable, short, unique: ``j`` + UTC date-time + 6 hex chars."""
    return time.strftime("j%Y%m%d%H%M%S", time.gmtime()) + secrets.token_hex(3)


@dataclass(frozen=True)
class NewJob:
    action: str
    params: Mapping[str, Any]
    targets: Mapping[str, Any]
    options: Mapping[str, Any]
    region: str
    profile: str | None = None
    endpoint_url: str | None = None
    parent_id: str | None = None
    # every region of a multi-region job, with its endpoint: [{"region", "endpoint_url"}, ...]
    regions: Sequence[Mapping[str, str | None]] = ()
    id: str = field(default_factory=new_job_id)
    # who started it: the OS user and host (None: taken from this process at creation)
    started_by: str | None = None
    started_host: str | None = None
    caller_arn: str | None = None  # the AWS caller identity ARN, when already known
    accounts: Sequence[str] | None = None  # account ids of a multi-account job
    assume: Mapping[str, Any] | None = None  # role_name, role_arn_template, external_id
    require_approval: bool = False  # its stored plan starts only once someone else approves

    def row(self, status: JobStatus, now: float) -> dict[str, Any]:
        """The ``jobs`` columns this job gives itself when it is recorded (created ``now``, in
        ``status``); each store adds who started it, the accounts and the role its own way."""
        return {
            "id": self.id,
            "parent_id": self.parent_id,
            "action": self.action,
            "status": status.value,
            "params": dict(self.params),
            "targets": dict(self.targets),
            "options": dict(self.options),
            "region": self.region,
            "regions": [dict(r) for r in self.regions]
            or [{"region": self.region, "endpoint_url": self.endpoint_url}],
            "profile": self.profile,
            "endpoint_url": self.endpoint_url,
            "created_at": now,
        }


@dataclass(frozen=True)
class ItemUpdate:
    """New values for some items. ``ids`` share the same values (one UPDATE ... IN)."""

    ids: Sequence[int]
    state: ItemState
    attempts_inc: int = 0
    last_state: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    reason: str | None = None
    result: str | None = None
    submitted: bool = False
    clear_error: bool = False


@dataclass(frozen=True)
class EventRow:
    job_id: str
    region: str
    operation: str
    workspace_ids: Sequence[str]
    outcome: str
    error_code: str | None
    request_id: str | None
    attempts: int
    duration_ms: int
    at: float = field(default_factory=time.time)


# -- what a job's history tells ----------------------------------------------------------------

#: Error code shown for a failed item that recorded none.
NO_CODE = "(no code)"

#: The params key under which a rollout's run records what it did, scope by scope (the old
#: image, the bundle updated, rolled back): the engine's record, not the operator's input.
ROLLOUT_RECORD = "rollout"


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


class CancelOutcome(StrEnum):
    CANCELLED = "cancelled"  # the job is now cancelled
    ALREADY = "already"  # it was cancelled before
    FINISHED = "finished"  # succeeded or failed: nothing to cancel
    RUNNING = "running"  # a live runner holds it: refused


@dataclass(frozen=True)
class CancelResult:
    outcome: CancelOutcome
    job: JobRecord
    items_cancelled: int = 0
    holder: str | None = None


# -- the steps of an item (a job of several actions, a recipe) ------------------------------------


@dataclass(frozen=True)
class StepRecord:
    """One step of one item: an action of a recipe (``rung``: its place in the item's ladder).

    A step is *open* (``outcome`` None) while its item works on it: the item's own row holds
    the live state, attempts and error of the open step, so the commit path of a one-action job
    serves every step unchanged. When the step ends, its outcome is copied here from the item,
    in the same transaction that opens the next step (if any).
    """

    item_id: int
    job_id: str
    rung: int
    action: str
    started_at: float
    outcome: str | None = None
    attempts: int = 0
    finished_at: float | None = None
    error_code: str | None = None
    error_message: str | None = None
    reason: str | None = None
    last_state: str | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> StepRecord:
        return cls(
            item_id=int(row["item_id"]),
            job_id=str(row["job_id"]),
            rung=int(row["rung"]),
            action=str(row["action"]),
            started_at=float(row["started_at"]),
            outcome=row["outcome"],
            attempts=int(row["attempts"] or 0),
            finished_at=row["finished_at"],
            error_code=row["error_code"],
            error_message=row["error_message"],
            reason=row["reason"],
            last_state=row["last_state"],
        )

    def as_row(self) -> dict[str, Any]:
        return {
            "item_id": self.item_id,
            "job_id": self.job_id,
            "rung": self.rung,
            "action": self.action,
            "started_at": self.started_at,
            "outcome": self.outcome,
            "attempts": self.attempts,
            "finished_at": self.finished_at,
            "error_code": self.error_code,
            "error_message": self.error_message,
            "reason": self.reason,
            "last_state": self.last_state,
        }

    def as_dict(self, item: ItemRecord | None = None) -> dict[str, Any]:
        """The step as ``jobs items --json`` shows it; an open step shows its item's live
        state, attempts and error (``item``)."""
        data = {
            "action": self.action,
            "outcome": self.outcome,
            "attempts": self.attempts,
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
            "error_code": self.error_code,
            "error_message": self.error_message,
            "reason": self.reason,
            "last_state": self.last_state,
        }
        if self.outcome is None and item is not None:
            data.update(
                outcome=str(item.state),
                attempts=item.attempts,
                error_code=item.error_code,
                error_message=item.error_message,
                reason=item.reason,
                last_state=item.last_state,
            )
        return data


@dataclass(frozen=True)
class StepChange:
    """One item moving between steps, written with the others in one transaction.

    ``close``: the open step as it ended (its outcome set), written over the open row.
    ``open``: the next step (outcome None); the item goes back to ``pending`` for it, its
    attempts, error, result and evidence cleared, ``seen_state`` the WorkSpace's state before
    it. Without ``open``, ``item_state`` (with ``reason``) is the item's final state, if it
    changes.
    """

    item_id: int
    close: StepRecord | None = None
    open: StepRecord | None = None
    seen_state: str | None = None
    item_state: ItemState | None = None
    reason: str | None = None

    def item_values(self, now: float) -> dict[str, Any] | None:
        """The item columns this change sets (None: the item row is left as is)."""
        if self.open is not None:
            return {
                "state": ItemState.PENDING.value,
                "attempts": 0,
                "seen_state": self.seen_state,
                "last_state": None,
                "reason": None,
                "error_code": None,
                "error_message": None,
                "result": None,
                "submitted_at": None,
                "updated_at": now,
            }
        if self.item_state is None:
            return None
        values: dict[str, Any] = {"state": self.item_state.value, "updated_at": now}
        if self.reason is not None:
            values["reason"] = self.reason
        return values


@dataclass(frozen=True)
class ScheduleRecord:
    """A recurring job: ``job`` holds the fields of the job each slot starts (as resolved from
    the job file at ``schedule add``); every slot up to ``cursor`` has been handled."""

    name: str
    cron: str
    timezone: str
    catch_up: float  # seconds
    job: dict[str, Any]
    source: str | None
    paused: bool
    cursor: float
    created_at: float
    created_by: str | None = None
    last_job_id: str | None = None

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> ScheduleRecord:
        return cls(
            name=row["name"],
            cron=row["cron"],
            timezone=row["timezone"],
            catch_up=float(row["catch_up"]),
            job=dict(row["job"] or {}),
            source=row["source"],
            paused=bool(row["paused"]),
            cursor=float(row["cursor"]),
            created_at=float(row["created_at"]),
            created_by=row["created_by"],
            last_job_id=row["last_job_id"],
        )
