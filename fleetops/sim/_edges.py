"""The simulated fleet's behaviour at the real API's edges, as the field reports AWS does.

- Refusal codes: a batch operation's FailedRequests ``ErrorCode`` is dotted,
  ``<Family>.<Resource>`` (:data:`STATE_REFUSED`, :data:`NOT_FOUND`); top-level errors (HTTP 400
  of a one-WorkSpace call) keep their ``…Exception`` names.
- "Try again shortly": with the ``in_progress_first`` knob, the first N ModifyWorkspaceProperties
  / MigrateWorkspace calls naming a WorkSpace answer ``OperationInProgressException`` and change
  nothing (:func:`refuse_while_busy`).
- Standby WorkSpaces (CreateStandbyWorkspaces): a copy of a primary, kept STOPPED, never
  connected; its ``RelatedWorkspaces`` names the primary with ``Type: PRIMARY`` and the primary's
  names the standby with ``Type: STANDBY`` (:func:`add_standby`, :func:`create_standby`).

Pure and synchronous like the fleet: called under the simulator's lock.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Protocol

from fleetops.sim._validate import ApiError
from fleetops.sim._workspace import WorkSpace

__all__ = [
    "IN_PROGRESS",
    "NOT_FOUND",
    "STATE_REFUSED",
    "add_standby",
    "add_standbys",
    "create_standby",
    "refuse_while_busy",
]

STATE_REFUSED = "InvalidResourceState.Workspace"
NOT_FOUND = "ResourceNotFound.Workspace"
IN_PROGRESS = "OperationInProgressException"
_MSG_BUSY = "The WorkSpace is busy with another operation. Try again shortly."


class _Config(Protocol):
    @property
    def in_progress_first(self) -> int: ...


class Fleet(Protocol):
    """What these rules read and change of the fleet (``_fleet.Fleet``)."""

    region: str
    busy_answers: dict[str, int]
    order: list[str]

    @property
    def config(self) -> _Config: ...

    @property
    def directory_ids(self) -> frozenset[str]: ...

    def get(self, ws_id: str) -> WorkSpace | None: ...

    def new_workspace_id(self) -> str: ...

    def add_workspace(self, ws: WorkSpace) -> None: ...


def refuse_while_busy(fleet: Fleet, ws_id: str) -> None:
    """Raise ``OperationInProgressException`` for the first ``in_progress_first`` calls that
    name ``ws_id`` (the WorkSpace is left as it was)."""
    limit = fleet.config.in_progress_first
    if limit <= 0:
        return
    seen = fleet.busy_answers.get(ws_id, 0)
    if seen < limit:
        fleet.busy_answers[ws_id] = seen + 1
        raise ApiError(IN_PROGRESS, _MSG_BUSY)


def _related(ws: WorkSpace, region: str, kind: str) -> dict[str, str]:
    return {"WorkspaceId": ws.id, "Region": region, "State": ws.state, "Type": kind}


def add_standby(
    fleet: Fleet, primary: WorkSpace, primary_region: str, directory_id: str | None = None
) -> WorkSpace:
    """A standby WorkSpace for ``primary``, added to the fleet: STOPPED, AUTO_STOP, never
    connected; each of the two names the other in its ``RelatedWorkspaces``."""
    standby = replace(
        primary,
        id=fleet.new_workspace_id(),
        directory_id=directory_id or primary.directory_id,
        state="STOPPED",
        running_mode="AUTO_STOP",
        auto_stop_timeout=primary.auto_stop_timeout or 60,
        connection_state="DISCONNECTED",
        last_connection=None,
        tags=dict(primary.tags),
        protocols=list(primary.protocols),
        end_state=None,
        on_done=None,
        related=[_related(primary, primary_region, "PRIMARY")],
    )
    primary.related = [*primary.related, _related(standby, fleet.region, "STANDBY")]
    fleet.add_workspace(standby)
    return standby


def add_standbys(fleet: Fleet, count: int) -> None:
    """Standbys for the first ``count`` generated WorkSpaces (in id order) that are AVAILABLE or
    STOPPED and not ALWAYS_ON: primaries of this region, their standbys beside them."""
    made = 0
    for ws_id in list(fleet.order):
        if made >= count:
            return
        primary = fleet.get(ws_id)
        if primary is None or primary.related or primary.running_mode == "ALWAYS_ON":
            continue
        if primary.state in {"AVAILABLE", "STOPPED"}:
            add_standby(fleet, primary, fleet.region)
            made += 1


def create_standby(fleet: Fleet, body: dict[str, Any]) -> dict[str, Any]:
    """CreateStandbyWorkspaces: one standby per request whose primary this fleet holds."""
    pending: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    region = body["PrimaryRegion"]
    for request in body["StandbyWorkspaces"]:
        primary = fleet.get(request["PrimaryWorkspaceId"])
        code, message = "", ""
        if primary is None:
            code, message = NOT_FOUND, "The primary WorkSpace could not be found."
        elif request["DirectoryId"] not in fleet.directory_ids:
            code, message = "ResourceNotFound.Directory", "The directory could not be found."
        elif any(r.get("Type") == "STANDBY" for r in primary.related):
            code, message = "ResourceAlreadyExists.Workspace", "The primary has a standby."
        if code or primary is None:
            failed.append(
                {"StandbyWorkspaceRequest": request, "ErrorCode": code, "ErrorMessage": message}
            )
            continue
        standby = add_standby(fleet, primary, region, request["DirectoryId"])
        pending.append(
            {
                "UserName": standby.user_name,
                "DirectoryId": standby.directory_id,
                "State": standby.state,
                "WorkspaceId": standby.id,
            }
        )
    return {"FailedStandbyRequests": failed, "PendingStandbyRequests": pending}
