"""Planning: selectors → items, each eligible (``pending``) or ``skipped`` with its reason.

The plan streams: WorkSpaces arrive a DescribeWorkspaces page at a time and are written a chunk
at a time, so a 100,000-WorkSpace plan never holds the fleet in memory.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

import anyio

from fleetops.aws.model import list_member_max
from fleetops.catalogue.actions import ActionSpec
from fleetops.catalogue.options import JobOptions
from fleetops.catalogue.targets import CallFn, Candidate, Targets, enrich, epoch, select_chunks
from fleetops.errors import AwsError, CredentialsError, TransientAwsError
from fleetops.states import ItemState

__all__ = [
    "PlanSummary",
    "guardrail_reason",
    "plan",
    "snapshot_reason",
    "standby_of",
    "standby_reason",
]

Params = Mapping[str, Any]
DESCRIBE_MAX = list_member_max("DescribeWorkspaces", "WorkspaceIds")
#: Chunks (of 25 WorkSpaces) whose own calls run while the next describe pages are read.
PLAN_PIPELINE = 4

CONNECTED_REASON = "a user is connected (use --include-connected to act anyway)"
EXAMPLES_PER_GROUP = 5


#: The skip reason of a named WorkSpace that one scope (account and region) does not hold.
NOT_FOUND_REASON = "not found in this region"
#: The skip reason of a named WorkSpace that none of a job's scopes holds.
NOT_FOUND_ANYWHERE = "not found in any of the job's accounts and regions"


@dataclass
class PlanSummary:
    """What a plan found: for ``--dry-run`` output and the job's first progress line."""

    action: str
    eligible: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    planning_calls: int = 0  # made to plan (snapshot checks included)
    snapshot_calls: int = 0  # of which DescribeWorkspaceSnapshots (one per WorkSpace)
    submit_calls: int = 0  # the action's own calls, at the model's batch size
    verify_calls: int = 0  # DescribeWorkspaces polls, at least one per 25 watched
    calls_needed: int = 0  # to run: submit + verify
    rate: float | None = None
    burst: int = 0
    scope: str | None = None  # the scope planned ("region" or "account/region")
    #: A job over several scopes: each scope's own summary (its counts, calls and quota time).
    by_scope: dict[str, PlanSummary] = field(default_factory=dict)
    #: Scopes that could not be planned (a role that cannot be assumed): the reason.
    unreachable: dict[str, str] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return self.eligible + sum(self.skipped.values())

    @property
    def seconds_at_quota(self) -> float:
        """How long the quota lets the remaining calls take (the burst is spent first). Scopes
        run in parallel, each on its own quota: a job over several takes its slowest one's."""
        if self.by_scope:
            return max(s.seconds_at_quota for s in self.by_scope.values())
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
            "snapshot_calls": self.snapshot_calls,
            "submit_calls": self.submit_calls,
            "verify_calls": self.verify_calls,
            "calls_needed": self.calls_needed,
            "seconds_at_quota": round(self.seconds_at_quota, 1),
            **({"scopes": self.scope_rows()} if self.by_scope else {}),
            **({"unreachable": dict(self.unreachable)} if self.unreachable else {}),
        }

    def scope_rows(self) -> list[dict[str, Any]]:
        """The spread over accounts and regions: each scope's counts, calls and quota time."""
        rows = []
        for key, s in sorted(self.by_scope.items()):
            account, _, region = key.rpartition("/")
            rows.append(
                {
                    "scope": key,
                    "account": account or None,
                    "region": region,
                    "eligible": s.eligible,
                    "skipped": sum(s.skipped.values()),
                    "calls_needed": s.calls_needed,
                    "seconds_at_quota": round(s.seconds_at_quota, 1),
                    **({"unreachable": s.unreachable[key]} if key in s.unreachable else {}),
                }
            )
        return rows


def guardrail_reason(
    action: ActionSpec, cand: Candidate, options: JobOptions, params: Params | None = None
) -> str | None:
    """Why a WorkSpace is skipped (None: eligible), from what selection learned. Pure."""
    ws = cand.workspace
    params = params or {}
    if ws.get("State") == "NOT_FOUND":
        return NOT_FOUND_REASON
    reason = action.skip_reason(ws, params)
    if reason is not None:
        return reason
    if (
        action.interrupts(params)
        and not options.include_connected
        and not options.wait_for_logoff  # held until the user logs off (fleetops.engine.logoff)
        and cand.connection_state == "CONNECTED"
    ):
        return CONNECTED_REASON
    return None


def standby_of(ws: Mapping[str, Any]) -> str | None:
    """The primary a standby WorkSpace stands by for (None: not a standby). A WorkSpace's
    ``RelatedWorkspaces`` describes the *other* one: a standby names its primary, ``PRIMARY``."""
    for related in ws.get("RelatedWorkspaces") or ():
        if related.get("Type") == "PRIMARY":
            return str(related.get("WorkspaceId") or "?")
    return None


def standby_reason(ws: Mapping[str, Any], targets: Targets, options: JobOptions) -> str | None:
    """Why a standby WorkSpace is skipped (None: it is not one, or it is acted on): selectors
    never pick one (its user never connects to it, so idleness says nothing either), unless
    ``--include-standby``; a standby named by id is acted on. Pure."""
    if options.include_standby or targets.workspace_ids:
        return None
    primary = standby_of(ws)
    if primary is None:
        return None
    return f"standby of {primary} (use --include-standby)"


def snapshot_reason(
    action: ActionSpec, response: Mapping[str, Any], options: JobOptions, now: float
) -> str | None:
    """The snapshot-age guardrail over a DescribeWorkspaceSnapshots answer (None: fresh). Pure."""
    snapshots = response.get(action.snapshot_kind) or []
    times = [t for t in (epoch(s.get("SnapshotTime")) for s in snapshots) if t is not None]
    if not times:
        return f"no snapshot to {action.name} from ({IGNORE_HINT})"
    age_h = (now - max(times)) / 3600
    if age_h > options.max_snapshot_age:
        limit = options.max_snapshot_age
        return f"last snapshot {age_h:.1f} h old (> --max-snapshot-age {limit:g})"
    return None


IGNORE_HINT = "--ignore-snapshot-age to act anyway"


def plan_row(
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


async def _from_rows(rows: list[dict[str, Any]]) -> AsyncGenerator[list[Candidate], None]:
    """Items of a create job: one per CSV row, keyed by its placeholder."""
    for start in range(0, len(rows), 500):
        yield [
            Candidate(
                workspace={
                    "WorkspaceId": row["key"],
                    "DirectoryId": row["directory_id"],
                    "UserName": row["user_name"],
                    "BundleId": row["bundle_id"],
                }
            )
            for row in rows[start : start + 500]
        ]


async def plan(
    *,
    action: ActionSpec,
    targets: Targets,
    options: JobOptions,
    call: CallFn,
    job_id: str,
    region: str,
    sink: Any = None,
    params: Params | None = None,
) -> PlanSummary:
    """Resolve ``targets`` and decide every WorkSpace's fate.

    ``sink`` is an async callable taking a list of item rows (the store's ``add_items``); None is
    a dry run: nothing is written.
    """
    params = params or {}
    summary = PlanSummary(action=action.name, rate=options.rate, burst=options.burst)
    counting = _CountingCall(call)
    want_connection = action.interrupts(params) and not options.include_connected
    check_snapshots = action.needs_snapshot and not options.ignore_snapshot_age
    rows = action.plan_rows(params)

    def reason_of(cand: Candidate) -> str | None:
        return standby_reason(cand.workspace, targets, options) or guardrail_reason(
            action, cand, options, params
        )

    async def decide(chunk: list[Candidate]) -> list[dict[str, Any]]:
        """The enriched chunk's rows (eligible or skipped with the reason)."""
        if rows is None:
            chunk = await enrich(
                targets,
                chunk,
                counting,
                want_connection=want_connection,
                # Connection status only matters for WorkSpaces the action would act on.
                status_for=lambda cand: reason_of(cand) is None,
            )
        reasons = {c.workspace_id: reason_of(c) for c in chunk}
        if check_snapshots:
            eligible = [c.workspace_id for c in chunk if reasons[c.workspace_id] is None]
            stale = await _snapshot_reasons(action, eligible, counting, options)
            summary.snapshot_calls += len(eligible)
            reasons.update(stale)
        now = time.time()
        out = []
        for cand in chunk:
            reason = reasons[cand.workspace_id]
            if reason is None:
                summary.eligible += 1
                summary.note(f"{action.name}", cand.workspace_id)
            else:
                summary.skipped[reason] += 1
                summary.note(f"skipped: {reason}", cand.workspace_id)
            out.append(plan_row(job_id, region, cand, reason, now))
        return out

    # A connection-status call takes 25 ids: chunks hold 25 WorkSpaces that need one (when
    # idleness is asked, every WorkSpace does: plain chunks of 25).
    needs_status = (
        None
        if targets.idle_days is not None
        else lambda cand: reason_of(cand) is None
    )
    source = (
        _from_rows(rows)
        if rows is not None
        else select_chunks(targets, counting, counts=needs_status if want_connection else None)
    )
    await _pipeline(source, decide, sink, width=max(1, min(PLAN_PIPELINE, options.concurrency)))
    summary.planning_calls = counting.calls
    summary.submit_calls = batches(summary.eligible, action.max_batch) * action.calls_per_batch(
        params
    )
    if options.no_wait or not action.verifies:
        summary.verify_calls = 0
    else:
        # At least one DescribeWorkspaces poll per 25 WorkSpaces watched (more if slow).
        watched = len(action.watch_ids("ws-x", "ws-y"))
        summary.verify_calls = batches(summary.eligible * watched, DESCRIBE_MAX)
    summary.calls_needed = summary.submit_calls + summary.verify_calls
    return summary


def batches(count: int, size: int) -> int:
    return math.ceil(count / size) if count else 0


async def _snapshot_reasons(
    action: ActionSpec, ws_ids: list[str], call: CallFn, options: JobOptions
) -> dict[str, str | None]:
    """DescribeWorkspaceSnapshots for each WorkSpace (one per call: the API takes one id),
    ``options.concurrency`` at a time."""
    out: dict[str, str | None] = {}
    limiter = anyio.Semaphore(options.concurrency)

    async def check(ws_id: str) -> None:
        async with limiter:
            try:
                response = await call("DescribeWorkspaceSnapshots", [ws_id], WorkspaceId=ws_id)
            except (TransientAwsError, CredentialsError):
                raise
            except AwsError as exc:
                out[ws_id] = f"snapshots could not be read ({exc.code})"
                return
        out[ws_id] = snapshot_reason(action, response, options, time.time())

    async with anyio.create_task_group() as tg:
        for ws_id in ws_ids:
            tg.start_soon(check, ws_id)
    return out


async def _pipeline(
    source: AsyncGenerator[list[Candidate], None],
    decide: Callable[[list[Candidate]], Awaitable[list[dict[str, Any]]]],
    sink: Any,
    *,
    width: int,
) -> None:
    """Describe pages are read one after the other (NextToken), but each chunk's own calls
    (connection status, tags, snapshots) run while the next pages are read, ``width`` chunks at
    a time; rows reach ``sink`` in the order of the pages, so item ids follow the fleet's order.
    """
    send, receive = anyio.create_memory_object_stream[tuple[int, list[Candidate]]](width)
    done: dict[int, list[dict[str, Any]]] = {}
    next_out = 0
    writing = anyio.Lock()

    async def produce() -> None:
        async with send, aclosing(source) as chunks:
            seq = 0
            async for chunk in chunks:
                await send.send((seq, chunk))
                seq += 1

    async def flush() -> None:
        nonlocal next_out
        async with writing:
            while next_out in done:
                out = done.pop(next_out)
                next_out += 1
                if sink is not None and out:
                    await sink(out)

    async def consume(stream: Any) -> None:
        async with stream:
            async for seq, chunk in stream:
                done[seq] = await decide(chunk)
                await flush()

    async with anyio.create_task_group() as tg:
        tg.start_soon(produce)
        for _ in range(width):
            tg.start_soon(consume, receive.clone())
        receive.close()


class _CountingCall:
    def __init__(self, call: CallFn) -> None:
        self._call = call
        self.calls = 0

    async def __call__(self, operation: str, ids: Any, /, **params: Any) -> Mapping[str, Any]:
        self.calls += 1
        return await self._call(operation, ids, **params)
