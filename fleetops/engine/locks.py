"""WorkSpaces locked across jobs: one job acts on a WorkSpace at a time.

A WorkSpace whose item is ``in_flight`` or ``submitted`` in another job that is running under a
live lease is *busy* (the store answers, :func:`fleetops.store.coord.busy_workspaces`, and claims
the free ones in the same serialised transaction, so two jobs checking at the same instant cannot
both go). Just before a batch is committed ``in_flight``, :func:`hold_busy` keeps its busy
WorkSpaces out of it: they stay ``pending`` and are tried again (about once a second) for up to
:data:`BUSY_WAIT` seconds, then skipped with the reason ``busy in job J``. This holds for any mix
of CLI runs and workers sharing the database, and across crashes: a dead job's hold ends with its
lease.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import anyio

from fleetops.states import ItemState
from fleetops.store import ItemRecord, ItemUpdate

__all__ = ["BUSY_POLL", "BUSY_WAIT", "BusyGate", "hold_busy"]

log = logging.getLogger(__name__)

#: How long an item waits for another job's hold on its WorkSpace before it is skipped.
BUSY_WAIT = 120.0
#: How often a batch whose WorkSpaces are all busy looks again.
BUSY_POLL = 1.0

BusyQuery = Callable[[str, str, Sequence[str]], Awaitable[dict[str, str]]]
Commit = Callable[[Sequence[ItemUpdate]], Awaitable[None]]


class BusyGate:
    """The hold check of one scope of one run (it remembers since when each item waits)."""

    def __init__(
        self,
        busy: BusyQuery,
        commit: Commit,
        job_id: str,
        region: str,
        *,
        wait: float = BUSY_WAIT,
        poll: float = BUSY_POLL,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        self._busy = busy
        self._commit = commit
        self.job_id = job_id
        self.region = region
        self.wait = wait
        self.poll = poll
        self._clock = clock
        self._sleep = sleep
        self._since: dict[int, float] = {}
        self.skipped = 0

    async def admit(self, batch: Sequence[ItemRecord]) -> list[ItemRecord]:
        """The items of ``batch`` that may be sent now; the others wait or are skipped."""
        if not batch:
            return []
        busy = await self._busy(self.job_id, self.region, [i.workspace_id for i in batch])
        if not busy:
            for item in batch:
                self._since.pop(item.id, None)
            return list(batch)
        now = self._clock()
        free: list[ItemRecord] = []
        skip: dict[str, list[int]] = {}
        waiting: dict[str, int] = {}
        for item in batch:
            holder = busy.get(item.workspace_id)
            if holder is None:
                self._since.pop(item.id, None)
                free.append(item)
            elif now - self._since.setdefault(item.id, now) >= self.wait:
                skip.setdefault(holder, []).append(item.id)
                self._since.pop(item.id, None)
            else:
                waiting[holder] = waiting.get(holder, 0) + 1
        if skip:
            await self._commit(
                [
                    ItemUpdate(ids=ids, state=ItemState.SKIPPED, reason=f"busy in job {holder}")
                    for holder, ids in skip.items()
                ]
            )
            for holder, ids in skip.items():
                log.info(
                    "%d WorkSpaces in %s skipped: busy in job %s for over %g s",
                    len(ids),
                    self.region,
                    holder,
                    self.wait,
                )
                self.skipped += len(ids)
        for holder, count in waiting.items():
            log.info(
                "%d WorkSpaces in %s busy in job %s: waiting (up to %g s)",
                count,
                self.region,
                holder,
                self.wait,
            )
        if not free and waiting:
            await self._sleep(self.poll)  # nothing to send: pace the next look
        return free


_GATES: weakref.WeakKeyDictionary[Any, BusyGate] = weakref.WeakKeyDictionary()


async def hold_busy(scope_run: Any, batch: Sequence[ItemRecord]) -> list[ItemRecord]:
    """The engine's hook (a scope run, just before a batch's ``in_flight`` commit): the items
    of ``batch`` whose WorkSpaces no other live job holds. Busy ones stay pending (and are seen
    again on the next pass) or, after :data:`BUSY_WAIT`, are skipped ``busy in job J``."""
    gate = _GATES.get(scope_run)
    if gate is None:
        store = scope_run.store
        if not hasattr(store, "busy_workspaces"):
            return list(batch)
        gate = _GATES[scope_run] = BusyGate(
            store.busy_workspaces, scope_run.ctx.commit, scope_run.job_id, scope_run.region
        )
    return await gate.admit(batch)  # skips go through the run's commit path (its figures too)
