"""Planning: selectors → items, each eligible (``pending``) or ``skipped`` with its reason.

The plan streams: WorkSpaces arrive a DescribeWorkspaces page at a time and are written a chunk
at a time, so a 100,000-WorkSpace plan never holds the fleet in memory.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fleetops.actions import ActionSpec
from fleetops.options import JobOptions
from fleetops.states import ItemState
from fleetops.targets import CallFn, Candidate, Targets, resolve

__all__ = ["PlanSummary", "guardrail_reason", "plan"]

CONNECTED_REASON = "a user is connected (use --include-connected to act anyway)"
EXAMPLES_PER_GROUP = 5


@dataclass
class PlanSummary:
    """What a plan found: for ``--dry-run`` output and the job's first progress line."""

    action: str
    eligible: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    planning_calls: int = 0
    calls_needed: int = 0
    rate: float | None = None
    burst: int = 0

    @property
    def total(self) -> int:
        return self.eligible + sum(self.skipped.values())

    @property
    def seconds_at_quota(self) -> float:
        """How long the quota lets the remaining calls take (the burst is spent first)."""
        if not self.rate:
            return 0.0
        return max(0, self.calls_needed - self.burst) / self.rate

    def note(self, group: str, ws_id: str) -> None:
        examples = self.examples.setdefault(group, [])
        if len(examples) < EXAMPLES_PER_GROUP:
            examples.append(ws_id)

    def as_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "total": self.total,
            "eligible": self.eligible,
            "skipped": dict(self.skipped),
            "examples": self.examples,
            "planning_calls": self.planning_calls,
            "calls_needed": self.calls_needed,
            "seconds_at_quota": round(self.seconds_at_quota, 1),
        }


def guardrail_reason(action: ActionSpec, cand: Candidate, options: JobOptions) -> str | None:
    """Why a WorkSpace is skipped (None: eligible). Pure."""
    ws = cand.workspace
    if ws.get("State") == "NOT_FOUND":
        return "not found in this region"
    reason = action.skip_reason(ws)
    if reason is not None:
        return reason
    if (
        action.interrupts_session
        and not options.include_connected
        and cand.connection_state == "CONNECTED"
    ):
        return CONNECTED_REASON
    return None


def _row(
    job_id: str, region: str, cand: Candidate, reason: str | None, now: float
) -> dict[str, Any]:
    ws = cand.workspace
    return {
        "job_id": job_id,
        "workspace_id": cand.workspace_id,
        "region": region,
        "state": (ItemState.SKIPPED if reason else ItemState.PENDING).value,
        "attempts": 0,
        "seen_state": ws.get("State"),
        "user_name": ws.get("UserName"),
        "directory_id": ws.get("DirectoryId"),
        "bundle_id": ws.get("BundleId"),
        "reason": reason,
        "updated_at": now,
    }


async def plan(
    *,
    action: ActionSpec,
    targets: Targets,
    options: JobOptions,
    call: CallFn,
    job_id: str,
    region: str,
    sink: Any = None,
) -> PlanSummary:
    """Resolve ``targets`` and decide every WorkSpace's fate.

    ``sink`` is an async callable taking a list of item rows (the store's ``add_items``); None is
    a dry run: nothing is written.
    """
    summary = PlanSummary(action=action.name, rate=options.rate, burst=options.burst)
    counting = _CountingCall(call)
    want_connection = action.interrupts_session and not options.include_connected
    async for chunk in resolve(targets, counting, want_connection=want_connection):
        now = time.time()
        rows = []
        for cand in chunk:
            reason = guardrail_reason(action, cand, options)
            if reason is None:
                summary.eligible += 1
                summary.note(f"{action.name}", cand.workspace_id)
            else:
                summary.skipped[reason] += 1
                summary.note(f"skipped: {reason}", cand.workspace_id)
            rows.append(_row(job_id, region, cand, reason, now))
        if sink is not None and rows:
            await sink(rows)
    summary.planning_calls = counting.calls
    submit_calls = math.ceil(summary.eligible / action.max_batch)
    verify_calls = 0 if options.no_wait else math.ceil(summary.eligible / 25)
    summary.calls_needed = submit_calls + verify_calls
    return summary


class _CountingCall:
    def __init__(self, call: CallFn) -> None:
        self._call = call
        self.calls = 0

    async def __call__(self, operation: str, ids: Any, /, **params: Any) -> Mapping[str, Any]:
        self.calls += 1
        return await self._call(operation, ids, **params)
