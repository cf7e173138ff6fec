"""Verification: watching submitted WorkSpaces until they reach their end state.

DescribeWorkspaces takes 25 ids a call; the quota spent on polling is quota not spent on work,
so polls are timed by :class:`SettleModel` — learned from the transitions observed in this job —
and filled with every item due at about the same time.
"""

from __future__ import annotations

import heapq
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio

from fleetops.actions import GONE, ActionSpec
from fleetops.engine_types import CallFn
from fleetops.errors import AwsError, CredentialsError
from fleetops.model import list_member_max
from fleetops.states import ItemState
from fleetops.store import ItemRecord, ItemUpdate

__all__ = ["DESCRIBE_MAX", "CommitFn", "SettleModel", "Verifier", "Watch"]

log = logging.getLogger(__name__)

DESCRIBE_MAX = list_member_max("DescribeWorkspaces", "WorkspaceIds")

#: Applies item updates durably (one shielded transaction) and counts them.
CommitFn = Callable[[Sequence[ItemUpdate]], Awaitable[None]]

#: Seconds after which a WorkSpace still in its pre-call failure state is judged (see
#: ``Verifier._stuck_reason``).
STUCK_AFTER = 60.0


@dataclass(order=True)
class Watch:
    """A submitted item the verifier is waiting on."""

    due: float
    item_id: int = field(compare=False)
    ids: tuple[str, ...] = field(compare=False)  # described to verify it; the first is judged
    seen_state: str | None = field(compare=False)
    submitted_at: float = field(compare=False)
    polls: int = field(default=0, compare=False)


class SettleModel:
    """When to poll, learned from the transitions observed in this job.

    The first poll of a batch comes ``estimate`` seconds after its submission; an item found
    done at its first poll nudges the estimate down, one that needed more polls sets it to what
    it took. So most batches need one poll whether transitions take 2 s or 5 min.
    """

    def __init__(self, initial: float = 1.0, floor: float = 0.25, cap: float = 120.0) -> None:
        self.estimate: float | None = None
        self.initial = initial
        self.floor = floor
        self.cap = cap

    def first_delay(self) -> float:
        return self.estimate if self.estimate is not None else self.initial

    def next_delay(self, watch: Watch, now: float) -> float:
        waited = now - watch.submitted_at
        if self.estimate is not None and waited < self.estimate:
            return max(self.floor, self.estimate - waited)
        # Back off geometrically past the estimate: 25 % of what it has taken so far.
        return min(self.cap, max(self.floor, waited * 0.25))

    def observe(self, watch: Watch, now: float) -> None:
        took = now - watch.submitted_at
        target = took * 0.97 if watch.polls <= 1 else took  # done at first poll: creep down
        if self.estimate is None:
            self.estimate = max(self.floor, target)
        else:
            self.estimate = max(self.floor, 0.8 * self.estimate + 0.2 * target)


class Verifier:
    """The verification loop of one scope of one run.

    ``call`` makes one logical API call; ``commit`` applies the verdicts (the run's commit path:
    durable, shielded, counted). The verdict itself is the action's (``judge_observed``).
    """

    def __init__(
        self,
        *,
        action: ActionSpec,
        params: Mapping[str, Any],
        verify_timeout: float,
        call: CallFn,
        commit: CommitFn,
        concurrency: int,
        on_credentials: Callable[[CredentialsError], None],
    ) -> None:
        self.action = action
        self.params = params
        self.verify_timeout = verify_timeout
        self._call = call
        self._commit = commit
        self._on_credentials = on_credentials
        self.settle = SettleModel()
        self._watches: list[Watch] = []  # a heap by due time
        self._ready: deque[Watch] = deque()  # due, gathering into the next poll
        self._added = anyio.Event()
        self._slots = anyio.Semaphore(concurrency)
        self.polls_in_flight = 0
        self.feeding = True  # items may still arrive (the submitter is running)

    @property
    def busy(self) -> bool:
        return bool(self._watches) or bool(self._ready) or self.polls_in_flight > 0

    def watch(
        self, item: ItemRecord, submitted_at: float, due: float, result: str | None = None
    ) -> None:
        ids = self.action.watch_ids(item.workspace_id, result or item.result)
        heapq.heappush(self._watches, Watch(due, item.id, ids, item.seen_state, submitted_at))
        self._added.set()

    def watch_new(self, items: Sequence[ItemRecord], results: Mapping[str, str]) -> None:
        """Items just accepted by the API: first poll when the model says they should settle."""
        now = time.monotonic()
        due = now + self.settle.first_delay()
        for item in items:
            self.watch(item, now, due, results.get(item.workspace_id))

    def done_feeding(self) -> None:
        self.feeding = False
        self._added.set()

    async def _wait(self, timeout: float) -> None:
        self._added = anyio.Event()
        with anyio.move_on_after(timeout):
            await self._added.wait()

    async def run(self) -> None:
        """Poll until nothing is watched and nothing more can arrive.

        Due items gather in ``ready``; a poll goes out when 25 ids are ready, or when the oldest
        ready item has waited ``grace`` (half the learned settle time, at least 0.25 s), or when
        nothing else can arrive: a DescribeWorkspaces carries 25 ids whenever the pace of
        submissions allows, instead of one per batch of a one-per-call action.
        """
        ready = self._ready
        ready_ids = 0
        async with anyio.create_task_group() as polls:
            while True:
                now = time.monotonic()
                while self._watches and self._watches[0].due <= now:
                    watch = heapq.heappop(self._watches)
                    ready.append(watch)
                    ready_ids += len(watch.ids)
                if not ready:
                    if not self._watches:
                        if not self.feeding and self.polls_in_flight == 0:
                            return
                        await self._wait(0.2)
                    else:
                        await self._wait(self._watches[0].due - now)
                    continue
                grace = max(0.25, 0.5 * self.settle.first_delay())
                overdue = now - ready[0].due >= grace
                last = not self.feeding and not self._watches
                if ready_ids < DESCRIBE_MAX and not overdue and not last:
                    wake = ready[0].due + grace
                    if self._watches:
                        wake = min(wake, self._watches[0].due)
                    await self._wait(max(0.0, wake - now))
                    continue
                chunk: list[Watch] = []
                described = 0
                while ready and described + len(ready[0].ids) <= DESCRIBE_MAX:
                    watch = ready.popleft()
                    chunk.append(watch)
                    described += len(watch.ids)
                ready_ids -= described
                await self._slots.acquire()
                self.polls_in_flight += 1
                polls.start_soon(self._poll, chunk)

    async def _poll(self, chunk: list[Watch]) -> None:
        try:
            ids = list(dict.fromkeys(i for w in chunk for i in w.ids))
            try:
                response = await self._call("DescribeWorkspaces", ids, WorkspaceIds=ids)
            except CredentialsError as exc:
                self._on_credentials(exc)
                return
            except AwsError as exc:
                # Could not look: try again later (the timeout still applies).
                now = time.monotonic()
                log.warning("verification describe failed: %s", exc)
                for w in chunk:
                    w.due = now + max(1.0, self.settle.next_delay(w, now))
                    heapq.heappush(self._watches, w)
                return
            await self._judge(chunk, response)
        finally:
            self._slots.release()
            self.polls_in_flight -= 1
            self._added.set()

    def _stuck_reason(self, w: Watch, state: str, now: float) -> str | None:
        """A WorkSpace still in the failure state it had before the call (UNHEALTHY before a
        reboot, say) may not have started its transition yet; but when it still shows no sign
        of one long after the others settled, the call did not take: fail it now rather than at
        the verify timeout."""
        if state != w.seen_state or state not in self.action.failure_states:
            return None
        waited = now - w.submitted_at
        if waited < max(STUCK_AFTER, 3 * self.settle.first_delay()):
            return None
        return f"still {state} {int(waited)} s after the call, with no transition seen"

    async def _judge(self, chunk: list[Watch], response: Mapping[str, Any]) -> None:
        now = time.monotonic()
        by_id = {ws["WorkspaceId"]: ws for ws in response.get("Workspaces", [])}
        ok: dict[str, list[int]] = {}
        failed: list[ItemUpdate] = []

        def fail(w: Watch, state: str, code: str, message: str | None) -> None:
            failed.append(
                ItemUpdate(
                    ids=[w.item_id],
                    state=ItemState.FAILED,
                    last_state=state,
                    error_code=code,
                    error_message=message,
                )
            )

        for w in chunk:
            w.polls += 1
            observed = tuple(by_id.get(i) for i in w.ids)
            first = observed[0]
            state = str(first.get("State", "")) if first is not None else GONE
            verdict = self.action.judge_observed(observed, w.seen_state, self.params)
            if verdict.done:
                self.settle.observe(w, now)
                if verdict.succeeded:
                    ok.setdefault(state, []).append(w.item_id)
                else:
                    fail(w, state, "VerificationFailed", verdict.reason)
                continue
            if now - w.submitted_at >= self.verify_timeout:
                reason = self.action.timeout_reason(observed, now - w.submitted_at)
                fail(
                    w,
                    state,
                    "VerifyTimeout",
                    f"{reason} (--verify-timeout {self.verify_timeout:g} s)",
                )
                continue
            stuck = self._stuck_reason(w, state, now)
            if stuck is not None:
                fail(w, state, "VerificationFailed", stuck)
                continue
            w.due = now + self.settle.next_delay(w, now)
            heapq.heappush(self._watches, w)
        updates = [
            ItemUpdate(ids=ids, state=ItemState.SUCCEEDED, last_state=state)
            for state, ids in ok.items()
        ]
        updates.extend(failed)
        if updates:
            succeeded = sum(len(ids) for ids in ok.values())
            log.info("verified %d items, %d failed verification", succeeded, len(failed))
            await self._commit(updates)
