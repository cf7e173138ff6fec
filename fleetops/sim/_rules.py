"""Which WorkSpaces each batch operation accepts: the API reference's eligibility rules, as the
per-item error code a refused WorkSpace gets in FailedRequests (None: accepted)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from fleetops.sim._edges import STATE_REFUSED
from fleetops.sim._workspace import WorkSpace


class Fleet(Protocol):
    """What an eligibility rule reads of the fleet: its clock."""

    def clock(self) -> float: ...

__all__ = ["BATCH_RULES", "STUCK_REBOOT_SECONDS", "failure"]

STUCK_REBOOT_SECONDS = 20 * 60


def failure(ws_id: str, code: str, message: str) -> dict[str, str]:
    return {"WorkspaceId": ws_id, "ErrorCode": code, "ErrorMessage": message}


def _reboot_rule(fleet: Fleet, ws: WorkSpace) -> str | None:
    if ws.state in {"AVAILABLE", "UNHEALTHY"}:
        return None
    if ws.state == "REBOOTING" and fleet.clock() - ws.started > STUCK_REBOOT_SECONDS:
        return None
    return STATE_REFUSED


def _start_rule(fleet: Fleet, ws: WorkSpace) -> str | None:
    if ws.state != "STOPPED":
        return STATE_REFUSED
    return "OperationNotSupportedException" if ws.running_mode == "ALWAYS_ON" else None


def _stop_rule(fleet: Fleet, ws: WorkSpace) -> str | None:
    if ws.state not in {"AVAILABLE", "IMPAIRED", "UNHEALTHY", "ERROR"}:
        return STATE_REFUSED
    return "OperationNotSupportedException" if ws.running_mode == "ALWAYS_ON" else None


def _rebuild_rule(fleet: Fleet, ws: WorkSpace) -> str | None:
    ok = ws.state in {"AVAILABLE", "ERROR", "UNHEALTHY", "STOPPED", "REBOOTING"}
    return None if ok else STATE_REFUSED


def _terminate_rule(fleet: Fleet, ws: WorkSpace) -> str | None:
    return STATE_REFUSED if ws.state == "SUSPENDED" else None


BATCH_RULES: dict[str, Callable[[Fleet, WorkSpace], str | None]] = {
    "RebootWorkspaces": _reboot_rule,
    "StartWorkspaces": _start_rule,
    "StopWorkspaces": _stop_rule,
    "RebuildWorkspaces": _rebuild_rule,
    "TerminateWorkspaces": _terminate_rule,
}
