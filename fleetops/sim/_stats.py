"""Introspection counters: exact under concurrency because only the event loop thread writes them.

Counting rules: ``total_calls`` counts every request that reached ``POST /`` (throttled, rejected
and faulted ones included); ``calls_by_operation`` counts requests admitted past the quota (a
throttled request did not reach the service and counts only in ``throttled``); an injected 500
counts in ``calls_by_operation`` and in ``errors_500``. ``calls_by_workspace`` counts, per
operation, every WorkSpace id a request named (batch items, WorkspaceIds, WorkspaceId,
SourceWorkspaceId, a ``ws-`` ResourceId), whatever the outcome. ``call_times`` holds when each
admitted request arrived, per operation (what a test of maintenance windows checks).
``timeline`` counts requests by the second they arrived in, counted from the first request since
the counters were reset: ``admitted`` (past the quota) and ``throttled``, one list entry a second
(what the benchmark reads to tell how soon a client learned a quota lower than it was told).
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict, deque
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["TIMELINE_SECONDS", "Counters", "SimStats"]

#: The timeline's length: later requests count in its last second.
TIMELINE_SECONDS = 86_400


@dataclass(frozen=True)
class SimStats:
    """A snapshot of the simulator's counters."""

    calls_by_operation: dict[str, int] = field(default_factory=dict)
    calls_by_workspace: dict[str, dict[str, int]] = field(default_factory=dict)
    throttled: int = 0
    errors_500: int = 0
    largest_batch: dict[str, int] = field(default_factory=dict)
    max_concurrent: int = 0
    states: dict[str, int] = field(default_factory=dict)
    total_calls: int = 0
    sts_calls: dict[str, int] = field(default_factory=dict)  # signed with this account's keys
    sessions_issued: int = 0  # temporary credentials AssumeRole issued for this account
    #: when each admitted call arrived (epoch seconds), per operation: the last 10,000
    call_times: dict[str, list[float]] = field(default_factory=dict)
    #: requests per second since the first one: {"start": epoch, "admitted": [...],
    #: "throttled": [...]} (empty before any request)
    timeline: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Counters:
    """The live, mutable counters behind ``SimStats``."""

    def __init__(self) -> None:
        self.reset()
        self.in_flight = 0

    def reset(self) -> None:
        self.calls_by_operation: Counter[str] = Counter()
        self.calls_by_workspace: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.throttled = 0
        self.errors_500 = 0
        self.largest_batch: dict[str, int] = {}
        self.max_concurrent = getattr(self, "in_flight", 0)
        self.total_calls = 0
        self.call_times: defaultdict[str, deque[float]] = defaultdict(lambda: deque(maxlen=10_000))
        self.started: float | None = None  # the first request since the reset (epoch seconds)
        self.admitted_by_second: list[int] = []
        self.throttled_by_second: list[int] = []

    def enter(self) -> None:
        self.total_calls += 1
        self.in_flight += 1
        self.max_concurrent = max(self.max_concurrent, self.in_flight)

    def _second(self, now: float) -> int:
        """The timeline's entry for ``now`` (both lists grown to hold it)."""
        if self.started is None:
            self.started = now
        second = min(int(now - self.started), TIMELINE_SECONDS - 1)
        while len(self.admitted_by_second) <= second:
            self.admitted_by_second.append(0)
            self.throttled_by_second.append(0)
        return second

    def throttle(self) -> None:
        """A request refused by the quota (ThrottlingException)."""
        self.throttled += 1
        self.throttled_by_second[self._second(time.time())] += 1

    def timeline(self) -> dict[str, Any]:
        if self.started is None:
            return {}
        return {
            "start": self.started,
            "admitted": list(self.admitted_by_second),
            "throttled": list(self.throttled_by_second),
        }

    def leave(self) -> None:
        self.in_flight -= 1

    def admitted(self, operation: str, batch: int, workspace_ids: list[str]) -> None:
        self.calls_by_operation[operation] += 1
        now = time.time()
        self.call_times[operation].append(now)
        self.admitted_by_second[self._second(now)] += 1
        if batch > self.largest_batch.get(operation, 0):
            self.largest_batch[operation] = batch
        if workspace_ids:
            per_ws = self.calls_by_workspace[operation]
            for ws_id in workspace_ids:
                per_ws[ws_id] += 1

    def snapshot(
        self, states: dict[str, int], sts_calls: dict[str, int] | None = None, sessions: int = 0
    ) -> SimStats:
        return SimStats(
            calls_by_operation=dict(self.calls_by_operation),
            calls_by_workspace={op: dict(c) for op, c in self.calls_by_workspace.items()},
            throttled=self.throttled,
            errors_500=self.errors_500,
            largest_batch=dict(self.largest_batch),
            max_concurrent=self.max_concurrent,
            states=dict(sorted(states.items())),
            total_calls=self.total_calls,
            sts_calls=dict(sts_calls or {}),
            sessions_issued=sessions,
            call_times={op: list(times) for op, times in self.call_times.items()},
            timeline=self.timeline(),
        )
