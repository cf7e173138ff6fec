"""The action catalogue: one :class:`ActionSpec` per fleet action.

Everything here is pure data and pure functions of data: which states are eligible, how a
request is built, which API batch size applies (read from botocore's model), which states mean
"still moving", "done" and "failed", and what counts as evidence that a call happened when a
job resumes after a crash. The runner is generic over these specs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fleetops.errors import UsageError
from fleetops.model import list_member_max

__all__ = [
    "ACTIONS",
    "GONE",
    "ActionSpec",
    "Verdict",
    "get_action",
]

#: The pseudo-state of a WorkSpace that DescribeWorkspaces no longer returns.
GONE = "GONE"

Workspace = Mapping[str, Any]

_MANAGED_RUNNING_MODES = frozenset({"AUTO_STOP", "MANUAL"})


@dataclass(frozen=True)
class Verdict:
    """What one observation of a WorkSpace means for its item during verification."""

    done: bool
    succeeded: bool = False
    reason: str | None = None


_WAIT = Verdict(done=False)
_OK = Verdict(done=True, succeeded=True)


def _running_mode(ws: Workspace) -> str | None:
    props = ws.get("WorkspaceProperties") or {}
    mode = props.get("RunningMode")
    return str(mode) if mode is not None else None


@dataclass(frozen=True)
class ActionSpec:
    """One fleet action.

    ``operation``/``request_member`` name the API call and its list member (None for the
    one-WorkSpace-per-call operations, whose request is the parameters themselves).
    """

    name: str
    operation: str
    request_member: str | None
    eligible_states: frozenset[str]
    transitional_states: frozenset[str]
    end_states: frozenset[str]
    evidence_states: frozenset[str]
    destructive: bool = False
    interrupts_session: bool = False
    needs_snapshot: bool = False
    gone_is_success: bool = False
    running_modes: frozenset[str] | None = None  # None: any running mode
    already_done_states: frozenset[str] = frozenset()
    failure_states: frozenset[str] = frozenset({"ERROR", "UNHEALTHY"})
    entry: Callable[[str, Mapping[str, Any]], dict[str, Any]] = field(
        default=lambda ws_id, params: {"WorkspaceId": ws_id}
    )

    @property
    def max_batch(self) -> int:
        """How many WorkSpaces one call may carry, from botocore's service model."""
        return list_member_max(self.operation, self.request_member)

    @property
    def batchable(self) -> bool:
        return self.request_member is not None

    def build_request(self, workspace_ids: list[str], params: Mapping[str, Any]) -> dict[str, Any]:
        """The API parameters for one call over ``workspace_ids``."""
        if self.request_member is None:
            if len(workspace_ids) != 1:
                raise ValueError(f"{self.operation} takes one WorkSpace per call")
            return self.entry(workspace_ids[0], params)
        return {self.request_member: [self.entry(ws_id, params) for ws_id in workspace_ids]}

    def skip_reason(self, ws: Workspace) -> str | None:
        """Why ``ws`` is not eligible for this action (None: eligible). Pure."""
        state = str(ws.get("State", ""))
        if state in self.already_done_states:
            return f"already {state}"
        if state == "ADMIN_MAINTENANCE" and self.name in _BLOCKED_BY_MAINTENANCE:
            return f"state ADMIN_MAINTENANCE blocks {self.name}"
        if state not in self.eligible_states:
            wanted = ", ".join(sorted(self.eligible_states))
            return f"state {state} is not eligible for {self.name} (needs {wanted})"
        if self.running_modes is not None:
            mode = _running_mode(ws)
            if mode not in self.running_modes:
                return f"running mode {mode} cannot be {self.name}ed (needs AUTO_STOP or MANUAL)"
        return None

    def judge(self, state: str, prev_state: str | None) -> Verdict:
        """What observing ``state`` (or :data:`GONE`) after the call means. Pure.

        A failure state equal to the state seen at plan time may simply mean the transition has
        not started yet, so it is waited on (until the verify timeout), not failed at once.
        """
        if state == GONE:
            if self.gone_is_success:
                return _OK
            return Verdict(done=True, succeeded=False, reason="the WorkSpace no longer exists")
        if state in self.end_states:
            return _OK
        if state in self.failure_states and state != prev_state:
            return Verdict(done=True, succeeded=False, reason=f"the WorkSpace went {state}")
        return _WAIT

    def has_evidence(self, state: str) -> bool:
        """On resume: does ``state`` prove that the in-flight call reached the API?"""
        if state == GONE:
            return self.gone_is_success
        return state in self.evidence_states


_BLOCKED_BY_MAINTENANCE = frozenset({"reboot", "start", "stop", "rebuild", "restore"})


def _actions() -> dict[str, ActionSpec]:
    specs = [
        ActionSpec(
            name="reboot",
            operation="RebootWorkspaces",
            request_member="RebootWorkspaceRequests",
            eligible_states=frozenset({"AVAILABLE", "UNHEALTHY"}),
            transitional_states=frozenset({"REBOOTING"}),
            end_states=frozenset({"AVAILABLE"}),
            evidence_states=frozenset({"REBOOTING"}),
            interrupts_session=True,
        ),
        ActionSpec(
            name="start",
            operation="StartWorkspaces",
            request_member="StartWorkspaceRequests",
            eligible_states=frozenset({"STOPPED"}),
            transitional_states=frozenset({"STARTING"}),
            end_states=frozenset({"AVAILABLE"}),
            evidence_states=frozenset({"STARTING", "AVAILABLE"}),
            running_modes=_MANAGED_RUNNING_MODES,
            already_done_states=frozenset({"AVAILABLE", "STARTING"}),
        ),
        ActionSpec(
            name="stop",
            operation="StopWorkspaces",
            request_member="StopWorkspaceRequests",
            eligible_states=frozenset({"AVAILABLE", "IMPAIRED", "UNHEALTHY", "ERROR"}),
            transitional_states=frozenset({"STOPPING"}),
            end_states=frozenset({"STOPPED"}),
            evidence_states=frozenset({"STOPPING", "STOPPED"}),
            failure_states=frozenset({"ERROR"}),
            running_modes=_MANAGED_RUNNING_MODES,
            already_done_states=frozenset({"STOPPED", "STOPPING"}),
            interrupts_session=True,
        ),
        ActionSpec(
            name="terminate",
            operation="TerminateWorkspaces",
            request_member="TerminateWorkspaceRequests",
            eligible_states=frozenset(
                {
                    "PENDING",
                    "AVAILABLE",
                    "IMPAIRED",
                    "UNHEALTHY",
                    "REBOOTING",
                    "STARTING",
                    "REBUILDING",
                    "RESTORING",
                    "MAINTENANCE",
                    "ADMIN_MAINTENANCE",
                    "STOPPING",
                    "STOPPED",
                    "ERROR",
                    "UPDATING",
                }
            ),  # every state but SUSPENDED (and those already terminating)
            transitional_states=frozenset({"TERMINATING"}),
            end_states=frozenset({"TERMINATED"}),
            evidence_states=frozenset({"TERMINATING", "TERMINATED"}),
            failure_states=frozenset({"ERROR"}),
            already_done_states=frozenset({"TERMINATING", "TERMINATED"}),
            destructive=True,
            interrupts_session=True,
            gone_is_success=True,
        ),
        ActionSpec(
            name="rebuild",
            operation="RebuildWorkspaces",
            request_member="RebuildWorkspaceRequests",
            eligible_states=frozenset({"AVAILABLE", "ERROR", "UNHEALTHY", "STOPPED", "REBOOTING"}),
            transitional_states=frozenset({"REBUILDING"}),
            end_states=frozenset({"AVAILABLE"}),
            evidence_states=frozenset({"REBUILDING"}),
            destructive=True,
            interrupts_session=True,
            needs_snapshot=True,
        ),
        ActionSpec(
            name="restore",
            operation="RestoreWorkspace",
            request_member=None,
            eligible_states=frozenset({"AVAILABLE", "ERROR", "UNHEALTHY", "STOPPED"}),
            transitional_states=frozenset({"RESTORING"}),
            end_states=frozenset({"AVAILABLE"}),
            evidence_states=frozenset({"RESTORING"}),
            destructive=True,
            interrupts_session=True,
            needs_snapshot=True,
        ),
    ]
    return {spec.name: spec for spec in specs}


ACTIONS: dict[str, ActionSpec] = _actions()


def get_action(name: str) -> ActionSpec:
    try:
        return ACTIONS[name]
    except KeyError:
        known = ", ".join(sorted(ACTIONS))
        raise UsageError(f"unknown action {name!r} (known: {known})") from None
