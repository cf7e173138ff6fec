"""Frozen records read from the database."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fleetops.states import ItemState, JobStatus

__all__ = ["ItemRecord", "JobRecord", "iso"]


def iso(ts: float | None) -> str | None:
    """Epoch seconds → ``2026-11-25T23:05:51.123Z`` (None stays None)."""
    if ts is None:
        return None
    text = datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


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
