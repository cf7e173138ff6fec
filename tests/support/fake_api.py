"""A small WorkSpaces fake at the client's edge, for unit tests of whole jobs.

:class:`FakeApi` has the client's ``call(operation, *, idempotent, **params)`` and retries each
attempt by the real policy (:func:`fleetops.aws.retry.retrying`, without waiting), so the number of
requests a job makes is the engine's real figure. It knows the operations a reboot or rebuild
job uses: DescribeWorkspaces (by ids), RebootWorkspaces and RebuildWorkspaces. A WorkSpace acted
on shows its transitional state at the next describe, then its end state.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.lowlevel

from fleetops.aws.client import CallResult, not_executed
from fleetops.aws.retry import RetryPolicy, retrying
from fleetops.errors import AwsError, CredentialsError, TransientAwsError

TRANSITION = {"RebootWorkspaces": "REBOOTING", "RebuildWorkspaces": "REBUILDING"}
REQUEST_MEMBER = {
    "RebootWorkspaces": "RebootWorkspaceRequests",
    "RebuildWorkspaces": "RebuildWorkspaceRequests",
}


async def _no_wait(seconds: float) -> None:
    await anyio.lowlevel.checkpoint()


@dataclass
class FakeApi:
    """WorkSpaces ``ws-0000`` … by state; knobs say what fails and how."""

    states: dict[str, str]
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    #: operation → error code every attempt of it answers (a broken operation)
    broken: dict[str, str] = field(default_factory=dict)
    #: WorkSpace id → (code, how many times) its request is refused in FailedRequests
    refuse: dict[str, tuple[str, int]] = field(default_factory=dict)
    #: operation → the number of its call (1-based) that blocks until cancelled
    block: dict[str, int] = field(default_factory=dict)
    #: how many attempts of each operation are answered ThrottlingException first
    throttle_first: int = 0
    requests: int = 0  # HTTP attempts
    calls: Counter[str] = field(default_factory=Counter)  # logical calls by operation
    acted: Counter[str] = field(default_factory=Counter)  # WorkSpace id → times acted on
    batches: list[list[str]] = field(default_factory=list)  # ids of each action call
    blocked: anyio.Event = field(default_factory=anyio.Event)
    _pending_end: dict[str, str] = field(default_factory=dict)
    _throttled: Counter[str] = field(default_factory=Counter)

    async def call(self, operation: str, *, idempotent: bool = True, **params: Any) -> CallResult:
        self.calls[operation] += 1
        number = self.calls[operation]
        attempts = 0
        retry_on = None if idempotent else not_executed
        async for attempt in retrying(self.policy, sleep=_no_wait, retry_on=retry_on):
            with attempt:
                attempts += 1
                self.requests += 1
                if self.block.get(operation) == number:
                    self.blocked.set()
                    await anyio.sleep_forever()
                response = self._answer(operation, params)
        return CallResult(
            response=response, request_id=f"req-{self.requests}", attempts=attempts, duration=0.0
        )

    def _answer(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        if operation in self.broken:
            code = self.broken[operation]
            if code.startswith("MissingAuthentication"):
                raise CredentialsError(code, "no credentials")
            raise TransientAwsError(code, "<html>500 Internal Server Error</html>")
        if self._throttled[operation] < self.throttle_first:
            self._throttled[operation] += 1
            raise TransientAwsError("ThrottlingException", "Rate exceeded")
        if operation == "DescribeWorkspaces":
            wanted = params.get("WorkspaceIds") or sorted(self.states)  # no filter: the fleet
            return {"Workspaces": [self._describe(ws) for ws in wanted if ws in self.states]}
        if operation in TRANSITION:
            return self._act(
                operation, [r["WorkspaceId"] for r in params[REQUEST_MEMBER[operation]]]
            )
        raise AwsError("UnknownOperation", operation)

    def _describe(self, ws_id: str) -> dict[str, Any]:
        state = self.states[ws_id]
        if ws_id in self._pending_end:  # seen transitional once: settled at the next look
            self.states[ws_id] = self._pending_end.pop(ws_id)
        return {
            "WorkspaceId": ws_id,
            "State": state,
            "DirectoryId": "d-1234567890",
            "UserName": f"user-{ws_id}",
            "BundleId": "wsb-00000000",
            "WorkspaceProperties": {"RunningMode": "AUTO_STOP"},
        }

    def _act(self, operation: str, ids: list[str]) -> dict[str, Any]:
        self.batches.append(ids)
        failed = []
        for ws_id in ids:
            code, times = self.refuse.get(ws_id, ("", 0))
            if times > 0:
                self.refuse[ws_id] = (code, times - 1)
                failed.append({"WorkspaceId": ws_id, "ErrorCode": code, "ErrorMessage": code})
                continue
            if ws_id not in self.states:
                failed.append(
                    {
                        "WorkspaceId": ws_id,
                        "ErrorCode": "ResourceNotFoundException",
                        "ErrorMessage": "gone",
                    }
                )
                continue
            self.acted[ws_id] += 1
            self._pending_end[ws_id] = self.states[ws_id]
            self.states[ws_id] = TRANSITION[operation]
        return {"FailedRequests": failed}


def fleet(n: int, state: str = "AVAILABLE") -> dict[str, str]:
    return {f"ws-{i:08d}": state for i in range(n)}
