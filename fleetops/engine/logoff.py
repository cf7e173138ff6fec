"""Waiting for users to log off (``--wait-for-logoff DURATION``) before an action that would
end their session.

Without it, a WorkSpace with a connected user is skipped at plan time. With it, such a
WorkSpace is planned like any other, and every batch of the action is checked right before it
is sent: the connection state of its WorkSpaces is read again (DescribeWorkspacesConnectionStatus,
25 ids a call, through the scope's quota), and those still ``CONNECTED`` are held back —
pending, re-read later with a backoff (:data:`POLL_FIRST` doubling up to :data:`POLL_CAP`, never
past the deadline) — while the others go on. A WorkSpace is never acted on while its user is
seen connected; one still connected when its wait (counted from when it was first held in this
run) runs out is ``skipped: user still connected after 30m``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from fleetops.catalogue.cron import format_duration
from fleetops.records import ItemRecord, ItemUpdate
from fleetops.states import ItemState

__all__ = ["POLL_CAP", "POLL_FIRST", "LogoffGate", "still_connected_reason"]

log = logging.getLogger(__name__)

#: Seconds before a held WorkSpace's connection is read again, doubled each time up to the cap.
POLL_FIRST = 30.0
POLL_CAP = 300.0
#: DescribeWorkspacesConnectionStatus takes at most this many ids.
STATUS_MAX = 25

Call = Callable[..., Awaitable[dict[str, Any]]]
Commit = Callable[[Sequence[ItemUpdate]], Awaitable[None]]


def still_connected_reason(wait: float) -> str:
    return f"user still connected after {format_duration(wait)}"


class LogoffGate:
    """Holds back, batch by batch, the WorkSpaces whose user is connected."""

    def __init__(
        self,
        call: Call,
        commit: Commit,
        wait: float,
        retry_after: dict[int, float],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.call = call
        self.commit = commit
        self.wait = wait
        self.retry_after = retry_after  # the scope's: a held item is not sent before its time
        self.clock = clock
        self.held_since: dict[int, float] = {}
        self.rereads: dict[int, int] = {}

    @property
    def holding(self) -> int:
        """How many WorkSpaces wait for their user to log off now."""
        return len(self.held_since)

    async def _states(self, keys: Sequence[str]) -> dict[str, str]:
        states: dict[str, str] = {}
        for start in range(0, len(keys), STATUS_MAX):
            chunk = list(keys[start : start + STATUS_MAX])
            answer = await self.call(
                "DescribeWorkspacesConnectionStatus", chunk, WorkspaceIds=chunk
            )
            for status in answer.get("WorkspacesConnectionStatus") or []:
                states[str(status.get("WorkspaceId"))] = str(status.get("ConnectionState"))
        return states

    async def admit(self, batch: Sequence[ItemRecord]) -> list[ItemRecord]:
        """The items of ``batch`` whose user is not connected now; the others are held (or, past
        their wait, skipped)."""
        states = await self._states([item.workspace_id for item in batch])
        now = self.clock()
        ready: list[ItemRecord] = []
        expired: list[int] = []
        for item in batch:
            if states.get(item.workspace_id) != "CONNECTED":
                self.held_since.pop(item.id, None)
                ready.append(item)
                continue
            since = self.held_since.setdefault(item.id, now)
            left = since + self.wait - now
            if left <= 0:
                expired.append(item.id)
                continue
            tries = self.rereads.get(item.id, 0)
            self.rereads[item.id] = tries + 1
            self.retry_after[item.id] = now + min(POLL_FIRST * 2**tries, POLL_CAP, left)
        if expired:
            for item_id in expired:
                self.held_since.pop(item_id, None)
            log.info("%d WorkSpaces skipped: %s", len(expired), still_connected_reason(self.wait))
            reason = still_connected_reason(self.wait)
            await self.commit([ItemUpdate(ids=expired, state=ItemState.SKIPPED, reason=reason)])
        held = len(batch) - len(ready) - len(expired)
        if held:
            log.info("%d WorkSpaces wait for their user to log off", held)
        return ready
