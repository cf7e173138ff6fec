"""What the WorkSpaces refused by the API look like now: the Describe that names their state.

A state refusal (``InvalidResourceState*``) rarely says the state the WorkSpace is in, and a
bare ``ResourceNotFoundException`` of a one-WorkSpace call does not say *what* was not found.
:func:`look_at_refused` describes those WorkSpaces (25 ids a call, through the scope's audited
call: within the quota and in the event log) so that each refusal is judged on evidence by
:func:`fleetops.engine.decide.failed_request`. The Describe is a courtesy to the operator: when
it fails, the refusals are judged on the answer alone (never lost, never retried here).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Protocol

from fleetops.engine.decide import needs_describe
from fleetops.engine.verify import DESCRIBE_MAX
from fleetops.errors import AwsError, CredentialsError

__all__ = ["Looks", "look_at_refused"]

log = logging.getLogger(__name__)

#: WorkSpace id → its state now ("" when it is gone: not found, or TERMINATED).
Looks = dict[str, str]


class _Call(Protocol):
    async def __call__(self, operation: str, ids: Any, /, **params: Any) -> dict[str, Any]: ...


async def look_at_refused(call: _Call, failures: Mapping[str, tuple[str, str]]) -> Looks:
    """The state now of each refused WorkSpace whose refusal needs a look (absent: not looked
    at, or the Describe failed)."""
    ids = [ws_id for ws_id, (code, message) in failures.items() if needs_describe(code, message)]
    looks: Looks = {}
    for start in range(0, len(ids), DESCRIBE_MAX):
        chunk = ids[start : start + DESCRIBE_MAX]
        try:
            response = await call("DescribeWorkspaces", chunk, WorkspaceIds=chunk)
        except CredentialsError:
            raise
        except AwsError as exc:
            log.info("refused WorkSpaces could not be described (%s): judged as answered", exc)
            continue
        shown = {
            ws["WorkspaceId"]: str(ws.get("State") or "") for ws in response.get("Workspaces", [])
        }
        for ws_id in chunk:
            state = shown.get(ws_id, "")
            looks[ws_id] = "" if state == "TERMINATED" else state
    return looks
