"""Running a job: plan → submit → verify, as one anyio task group, resumable at any instant.

The durability rule (DESIGN.md): the items of a batch are committed ``in_flight`` (attempt
counted) *before* the call, and the call's outcome is committed afterwards in one transaction
shielded from cancellation. A process killed between the two leaves ``in_flight`` items, which
the next run reconciles by describing them before anything is re-sent.

Tasks of one run::

    heartbeat   renews the job's lease
    writer      group-commits every state change (store.GroupWriter)
    submitter   pending items → batches of the model's max → one task per call (capacity limiter)
    verifier    submitted items → DescribeWorkspaces 25 ids a call, when they should have settled
"""

from __future__ import annotations

import heapq
import logging
import math
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
from anyio.abc import TaskGroup

from fleetops.actions import GONE, ActionSpec, get_action
from fleetops.aws import NOT_EXECUTED_CODES, WorkSpacesClient
from fleetops.errors import (
    AwsError,
    CredentialsError,
    LeaseHeldError,
    TransientAwsError,
)
from fleetops.model import list_member_max
from fleetops.options import JobOptions
from fleetops.planner import PlanSummary, plan
from fleetops.retry import is_throttling_code
from fleetops.states import ItemState, JobStatus
from fleetops.store import EventRow, GroupWriter, ItemRecord, ItemUpdate, JobRecord, Store
from fleetops.store.repo import lease_owner_id
from fleetops.targets import Targets

__all__ = ["JobRunner", "RunStats", "StopSignal"]

log = logging.getLogger(__name__)

LEASE_TTL = 30.0
GRACE_SECONDS = 10.0
DESCRIBE_MAX = list_member_max("DescribeWorkspaces", "WorkspaceIds")


class StopSignal:
    """Set by the CLI's signal handler (or a test) to stop a run gracefully."""

    def __init__(self) -> None:
        self.event = anyio.Event()
        self.hard = anyio.Event()  # a second signal: stop without waiting for calls in flight
        self.reason: str | None = None

    def set(self, reason: str = "interrupted") -> None:
        if not self.event.is_set():
            self.reason = reason
            self.event.set()

    def set_hard(self) -> None:
        self.set()
        self.hard.set()

    @property
    def is_set(self) -> bool:
        return self.event.is_set()


@dataclass
class RunStats:
    """Live counters of a run, for progress displays (read, never written, by the CLI)."""

    total: int = 0
    skipped: int = 0
    eligible: int = 0
    submitted: int = 0
    succeeded: int = 0
    failed: int = 0
    in_doubt: int = 0
    retried_items: int = 0
    polls: int = 0
    wave: int = 0
    waves: int = 0
    phase: str = "starting"
    started: float = field(default_factory=time.monotonic)


@dataclass(order=True)
class _Watch:
    """A submitted item the verifier is waiting on."""

    due: float
    item_id: int = field(compare=False)
    ids: tuple[str, ...] = field(compare=False)  # described to verify it; the first is judged
    seen_state: str | None = field(compare=False)
    submitted_at: float = field(compare=False)
    polls: int = field(default=0, compare=False)


class _SettleModel:
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

    def next_delay(self, watch: _Watch, now: float) -> float:
        waited = now - watch.submitted_at
        if self.estimate is not None and waited < self.estimate:
            return max(self.floor, self.estimate - waited)
        # Back off geometrically past the estimate: 25 % of what it has taken so far.
        return min(self.cap, max(self.floor, waited * 0.25))

    def observe(self, watch: _Watch, now: float) -> None:
        took = now - watch.submitted_at
        if watch.polls <= 1:
            target = took * 0.97  # done at first poll: the truth is earlier; creep down
        else:
            target = took
        if self.estimate is None:
            self.estimate = max(self.floor, target)
        else:
            self.estimate = max(self.floor, 0.8 * self.estimate + 0.2 * target)


class JobRunner:
    """Runs (or resumes) one job to its end, or to a graceful stop."""

    def __init__(
        self,
        store: Store,
        client: WorkSpacesClient,
        job: JobRecord,
        *,
        stop: StopSignal | None = None,
        redo_in_doubt: bool = False,
    ) -> None:
        self.store = store
        self.client = client
        self.job = job
        self.action: ActionSpec = get_action(job.action)
        self.params: Mapping[str, Any] = job.params
        self._rows: dict[str, dict[str, Any]] | None = None  # create: CSV rows by item key
        self.options = JobOptions.from_dict(job.options)
        self.targets = Targets.from_dict(job.targets)
        self.stop = stop or StopSignal()
        self.redo_in_doubt = redo_in_doubt
        self.stats = RunStats()
        self.owner = lease_owner_id()
        self.writer: GroupWriter = store.writer()
        self.settle = _SettleModel()
        self.plan_summary: PlanSummary | None = None
        # In-flight API calls of this run never exceed --concurrency (the limiter, in _call);
        # the semaphores keep the number of waiting submit / poll tasks bounded too.
        self._limiter = anyio.CapacityLimiter(self.options.concurrency)
        self._slots = anyio.Semaphore(self.options.concurrency)
        self._poll_slots = anyio.Semaphore(self.options.concurrency)
        self._watches: list[_Watch] = []
        self._watch_added = anyio.Event()
        self._outstanding = 0
        self._batch_done = anyio.Event()
        self._retry_after: dict[int, float] = {}
        self._claimed: set[int] = set()  # items handed to a batch task, not yet settled
        self._aborted = False
        self._failure: BaseException | None = None
        self._budget: int | None = None

    # -- the whole run ---------------------------------------------------------------------

    async def run(self) -> JobRecord:
        holder = await self.store.acquire_lease(self.job.id, self.owner, LEASE_TTL)
        if holder is not None:
            raise LeaseHeldError(
                f"job {self.job.id} is being run by another process ({holder}); "
                "wait for it or stop it first"
            )
        try:
            status, message = await self._run_leased()
        finally:
            with anyio.CancelScope(shield=True):
                await self.store.release_lease(self.job.id, self.owner)
        now = time.time()
        await self.store.update_job(
            self.job.id,
            status=status,
            message=message,
            finished_at=now if status is not JobStatus.INTERRUPTED else None,
        )
        self.job = await self.store.get_job(self.job.id)
        return self.job

    async def plan_only(self) -> JobRecord:
        """Plan the job (record every item) without running it; a planned job is left as is."""
        holder = await self.store.acquire_lease(self.job.id, self.owner, LEASE_TTL)
        if holder is not None:
            raise LeaseHeldError(f"job {self.job.id} is being run by another process ({holder})")
        try:
            async with self._services():
                if self.job.planned_at is None:
                    await self._plan()
        finally:
            with anyio.CancelScope(shield=True):
                await self.store.release_lease(self.job.id, self.owner)
        return self.job

    async def _run_leased(self) -> tuple[JobStatus, str | None]:
        async with self._services():
            return await self._run_phases()

    @asynccontextmanager
    async def _services(self) -> AsyncIterator[None]:
        """The writer (group commits) and the lease heartbeat, for the duration of the body."""
        heartbeat = anyio.CancelScope()
        writer_done = anyio.Event()

        async def run_writer() -> None:
            try:
                await self.writer.run()
            finally:
                writer_done.set()

        async def run_heartbeat() -> None:
            with heartbeat:
                await self._heartbeat()

        async with anyio.create_task_group() as outer:
            outer.start_soon(run_heartbeat)
            outer.start_soon(run_writer)
            try:
                yield
            finally:
                # Every write was awaited by its caller; the writer drains what is left, if
                # anything, and exits. Only then is the heartbeat stopped.
                self.writer.close()
                with anyio.CancelScope(shield=True):
                    await writer_done.wait()
                heartbeat.cancel()

    async def _heartbeat(self) -> None:
        while True:
            await anyio.sleep(LEASE_TTL / 3)
            with anyio.CancelScope(shield=True):
                renewed = await self.store.renew_lease(self.job.id, self.owner, LEASE_TTL)
            if not renewed:
                log.error("lost the lease of job %s: stopping", self.job.id)
                self.stop.set("lost the job's lease to another runner")

    async def _run_phases(self) -> tuple[JobStatus, str | None]:
        try:
            if self.job.planned_at is None:
                await self._plan()
                if self.job.planned_at is None:  # stopped while planning
                    return JobStatus.INTERRUPTED, (
                        f"{self.stop.reason} while planning: resume with "
                        f"`fleetops jobs resume {self.job.id}`"
                    )
            await self.store.update_job(
                self.job.id,
                status=JobStatus.RUNNING,
                started_at=self.job.started_at or time.time(),
                finished_at=None,
                message=None,
            )
            counts = await self.store.counts(self.job.id)
            self._sync_stats(counts)
            self._budget = self.options.error_budget(
                counts[ItemState.PENDING]
                + counts[ItemState.IN_FLIGHT]
                + counts[ItemState.SUBMITTED]
                + counts[ItemState.SUCCEEDED]
                + counts[ItemState.FAILED]
                + counts[ItemState.IN_DOUBT]
            )
            await self._reconcile()
            await self._execute()
        except CredentialsError as exc:
            return JobStatus.INTERRUPTED, (
                f"credentials rejected ({exc.code}): renew them and run `fleetops jobs resume "
                f"{self.job.id}`"
            )
        return await self._final_status()

    def _sync_stats(self, counts: Mapping[str, int]) -> None:
        s = self.stats
        s.total = sum(counts.values())
        s.skipped = counts[ItemState.SKIPPED]
        s.eligible = s.total - s.skipped - counts[ItemState.CANCELLED]
        s.succeeded = counts[ItemState.SUCCEEDED]
        s.failed = counts[ItemState.FAILED]
        s.in_doubt = counts[ItemState.IN_DOUBT]
        s.submitted = s.succeeded + s.failed + counts[ItemState.SUBMITTED]

    async def _final_status(self) -> tuple[JobStatus, str | None]:
        counts = await self.store.counts(self.job.id)
        self._sync_stats(counts)
        if self._aborted:
            return JobStatus.ABORTED, (
                f"aborted: {counts[ItemState.FAILED]} failed items exceed --max-errors "
                f"{self.options.max_errors}"
            )
        if self.stop.is_set:
            return (
                JobStatus.INTERRUPTED,
                f"{self.stop.reason}: resume with `fleetops jobs resume {self.job.id}`",
            )
        if counts[ItemState.IN_DOUBT]:
            return JobStatus.INTERRUPTED, (
                f"{counts[ItemState.IN_DOUBT]} items in doubt await the operator: check them, then "
                f"`fleetops jobs resume {self.job.id} --redo-in-doubt` to send them again"
            )
        unfinished = counts[ItemState.PENDING] + counts[ItemState.IN_FLIGHT]
        if not self.options.no_wait:
            unfinished += counts[ItemState.SUBMITTED]
        if unfinished:
            return JobStatus.INTERRUPTED, f"{unfinished} items unfinished"
        if counts[ItemState.FAILED]:
            return JobStatus.FAILED, f"{counts[ItemState.FAILED]} items failed"
        return JobStatus.SUCCEEDED, None

    # -- API calls with an audit trail -----------------------------------------------------

    async def _call(self, operation: str, ids: Sequence[str], /, **params: Any) -> dict[str, Any]:
        """One logical call (retries inside), recorded in the event log."""
        async with self._limiter:
            started = time.monotonic()
            try:
                result = await self.client.call(operation, **params)
            except AwsError as exc:
                await self._event(operation, ids, "error", exc.code, exc.request_id, 0, started)
                raise
        failed = result.response.get("FailedRequests") or []
        outcome = "partial" if failed else "ok"
        await self._event(
            operation, ids, outcome, None, result.request_id, result.attempts, started
        )
        return result.response

    async def _event(
        self,
        operation: str,
        ids: Sequence[str],
        outcome: str,
        code: str | None,
        request_id: str | None,
        attempts: int,
        started: float,
    ) -> None:
        row = EventRow(
            job_id=self.job.id,
            region=self.job.region,
            operation=operation,
            workspace_ids=list(ids),
            outcome=outcome,
            error_code=code,
            request_id=request_id,
            attempts=attempts,
            duration_ms=int((time.monotonic() - started) * 1000),
        )
        with anyio.CancelScope(shield=True):
            await self.writer.write((), (row,))

    # -- plan ------------------------------------------------------------------------------

    async def _plan(self) -> None:
        self.stats.phase = "planning"
        await self.store.delete_items(self.job.id)  # a plan cut short starts over
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as tg:

                async def cancel_on_stop() -> None:
                    await self.stop.event.wait()
                    scope.cancel()

                tg.start_soon(cancel_on_stop)
                self.plan_summary = await self._plan_items()
                tg.cancel_scope.cancel()
        if scope.cancelled_caught or self.plan_summary is None:
            return
        now = time.time()
        await self.store.update_job(self.job.id, planned_at=now)
        self.job = await self.store.get_job(self.job.id)

    async def _plan_items(self) -> PlanSummary:
        return await plan(
            action=self.action,
            targets=self.targets,
            options=self.options,
            call=self._call,
            job_id=self.job.id,
            region=self.job.region,
            sink=self.store.add_items,
            params=self.params,
        )

    # -- resume: reconcile what was in flight ----------------------------------------------

    async def _reconcile(self) -> None:
        if self.redo_in_doubt:
            async for page in self.store.iter_items(self.job.id, states=[ItemState.IN_DOUBT]):
                await self.writer.write(
                    [
                        ItemUpdate(
                            ids=[i.id for i in page], state=ItemState.PENDING, clear_error=True
                        )
                    ]
                )
        async for page in self.store.iter_items(self.job.id, states=[ItemState.IN_FLIGHT]):
            self.stats.phase = "reconciling"
            for start in range(0, len(page), DESCRIBE_MAX):
                await self._reconcile_chunk(page[start : start + DESCRIBE_MAX])

    async def _reconcile_chunk(self, chunk: Sequence[ItemRecord]) -> None:
        """Describe in-flight items: evidence of the call → submitted; none → sent again if that
        is safe (non-destructive, or idempotent in effect), else held in doubt."""
        evidence: list[ItemUpdate] = []
        resend, doubt = [], []
        if self.action.reconcile_by_user:
            found = await self._user_evidence(chunk)
        else:
            ids = [item.workspace_id for item in chunk]
            response = await self._call("DescribeWorkspaces", ids, WorkspaceIds=ids)
            by_id = {ws["WorkspaceId"]: ws for ws in response.get("Workspaces", [])}
            found = {
                item.id: item.workspace_id
                for item in chunk
                if self.action.evidence(by_id.get(item.workspace_id), self.params)
            }
        for item in chunk:
            if item.id in found:
                result = found[item.id]
                evidence.append(
                    ItemUpdate(
                        ids=[item.id],
                        state=ItemState.SUBMITTED,
                        submitted=True,
                        result=result if result != item.workspace_id else None,
                    )
                )
            elif not self.action.destructive or self.action.retry_safe:
                resend.append(item.id)
            else:
                doubt.append(item.id)
        await self.writer.write(
            [
                *evidence,
                ItemUpdate(ids=resend, state=ItemState.PENDING),
                ItemUpdate(
                    ids=doubt,
                    state=ItemState.IN_DOUBT,
                    reason=(
                        f"{self.action.operation} may or may not have been sent before the last "
                        "run stopped, and the WorkSpace shows no sign of it"
                    ),
                ),
            ]
        )

    async def _user_evidence(self, chunk: Sequence[ItemRecord]) -> dict[int, str]:
        """Item id → the WorkSpace proving the call happened (migrate: the new WorkSpace of the
        same user and directory with the target bundle; create: the user's WorkSpace), found by
        DescribeWorkspaces(DirectoryId, UserName): one call per item."""
        found: dict[int, str] = {}
        for item in chunk:
            if not item.directory_id or not item.user_name:
                continue
            response = await self._call(
                "DescribeWorkspaces",
                [item.workspace_id],
                DirectoryId=item.directory_id,
                UserName=item.user_name,
            )
            result = self.action.user_evidence(
                item.workspace_id, list(response.get("Workspaces", [])), self.params
            )
            if result is not None:
                found[item.id] = result
        return found

    # -- execute: submit and verify together -----------------------------------------------

    async def _execute(self) -> None:
        self.stats.phase = "running"
        # Items already submitted (by an earlier run) are verified first.
        if not self.options.no_wait:
            now = time.monotonic()
            async for page in self.store.iter_items(self.job.id, states=[ItemState.SUBMITTED]):
                for item in page:
                    self._watch_item(item, now, due=now)
        verifier_scope = anyio.CancelScope()
        verifier_done = anyio.Event()
        watch_scope = anyio.CancelScope()

        async def verifier() -> None:
            try:
                await self._verifier(verifier_scope)
            finally:
                verifier_done.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(verifier)
            tg.start_soon(self._stop_watch, tg.cancel_scope, verifier_scope, watch_scope)
            try:
                await self._submitter(tg)
            finally:
                self._submitting_done = True
                self._watch_added.set()
            await self._wait_quiet(verify=False)
            await verifier_done.wait()
            watch_scope.cancel()

    async def _stop_watch(
        self,
        run_scope: anyio.CancelScope,
        verifier_scope: anyio.CancelScope,
        watch_scope: anyio.CancelScope,
    ) -> None:
        """Two-stage shutdown: on stop, no new batch starts and polling ends at once; calls in
        flight get GRACE_SECONDS to finish (a second signal ends them at once), then are cut.
        Their items stay in_flight and are reconciled on resume."""
        with watch_scope:
            await self.stop.event.wait()
            verifier_scope.cancel()
            with anyio.move_on_after(GRACE_SECONDS):
                await self.stop.hard.wait()
            run_scope.cancel()

    _submitting_done = False

    def _watch_item(
        self, item: ItemRecord, submitted_at: float, due: float, result: str | None = None
    ) -> None:
        ids = self.action.watch_ids(item.workspace_id, result or item.result)
        heapq.heappush(self._watches, _Watch(due, item.id, ids, item.seen_state, submitted_at))
        self._watch_added.set()

    async def _wave_bounds(self) -> list[int | None]:
        """The last item id of each wave (None: to the end), over the items still pending."""
        if not self.options.waves:
            return [None]
        bounds: list[int | None] = []
        counted = 0
        last_id = 0
        sizes = list(self.options.waves)
        pending_ids: list[int] = []
        async for page in self.store.iter_items(self.job.id, states=[ItemState.PENDING]):
            pending_ids.extend(item.id for item in page)
        for size in sizes:
            if size is None or counted + size >= len(pending_ids):
                bounds.append(None)
                break
            counted += size
            last_id = pending_ids[counted - 1]
            bounds.append(last_id)
        if bounds and bounds[-1] is not None:
            bounds.append(None)  # whatever the waves did not name still runs, as a last wave
        return bounds

    async def _submitter(self, tg: TaskGroup) -> None:
        bounds = await self._wave_bounds()
        self.stats.waves = len(bounds) if self.options.waves else 0
        for number, upper in enumerate(bounds, start=1):
            self.stats.wave = number if self.options.waves else 0
            await self._submit_until(tg, upper)
            if self.options.waves:
                await self._wait_quiet(verify=True)
                if self._over_budget():
                    self._aborted = True
            if self._halted():
                return

    async def _submit_until(self, tg: TaskGroup, upper: int | None) -> None:
        """Submit every pending item with id ≤ ``upper``, including those sent back to pending."""
        size = self.action.max_batch
        while not self._halted():
            cursor = 0
            sent_any = False
            waiting_retry = False
            while not self._halted():
                page = await self.store.items_page(
                    self.job.id, states=[ItemState.PENDING], after_id=cursor, limit=size * 40
                )
                if upper is not None:
                    page = [item for item in page if item.id <= upper]
                if not page:
                    break
                cursor = page[-1].id
                now = time.monotonic()
                ready = []
                for item in page:
                    if item.id in self._claimed:
                        # Handed to a batch whose in_flight commit has not landed yet.
                        continue
                    if self._retry_after.get(item.id, 0.0) > now:
                        waiting_retry = True
                    else:
                        ready.append(item)
                for start in range(0, len(ready), size):
                    if self._halted():
                        return
                    batch = ready[start : start + size]
                    await self._slots.acquire()
                    if self._halted():  # tripped while waiting for a slot: send nothing more
                        self._slots.release()
                        return
                    self._outstanding += 1
                    self._claimed.update(item.id for item in batch)
                    tg.start_soon(self._submit_batch, batch)
                    sent_any = True
            if self._halted():
                return
            if self._outstanding:
                await self._wait_batches()
                continue
            if waiting_retry:
                await anyio.sleep(0.2)
                continue
            if not sent_any:
                return

    async def _wait_batches(self) -> None:
        self._batch_done = anyio.Event()
        await self._batch_done.wait()

    async def _wait_quiet(self, *, verify: bool) -> None:
        """Wait until no submit is outstanding (and, with ``verify``, nothing is being verified)."""
        while self._outstanding or (
            verify and (self._watches or self._polls_in_flight) and not self.stop.is_set
        ):
            await anyio.sleep(0.05)

    def _halted(self) -> bool:
        """Stop taking new batches: a stop was asked for, or max-errors tripped."""
        return self.stop.is_set or self._aborted

    def _over_budget(self) -> bool:
        return self._budget is not None and self.stats.failed > self._budget

    async def _submit_batch(self, batch: Sequence[ItemRecord]) -> None:
        try:
            try:
                await self._submit_batch_leased(batch)
            finally:
                self._slots.release()
        except CredentialsError as exc:
            self._failure = exc
            self.stop.set(f"credentials rejected ({exc.code})")
        finally:
            # The outcome is committed (or the items are still in_flight): a rescan of pending
            # items may see them again only if they were sent back to pending.
            self._claimed.difference_update(item.id for item in batch)
            self._outstanding -= 1
            self._batch_done.set()

    async def _submit_batch_leased(self, batch: Sequence[ItemRecord]) -> None:
        ids = [item.id for item in batch]
        keys = [item.workspace_id for item in batch]
        rows = self._request_rows()
        missing = [item for item in batch if rows is not None and item.workspace_id not in rows]
        if missing:
            await self._fail(missing, "RowNotFound", "the row is no longer in the CSV file")
            batch = [item for item in batch if item not in missing]
            ids, keys = [i.id for i in batch], [i.workspace_id for i in batch]
            if not batch:
                return
        # 1. Durable intent: committed in_flight, attempt counted, before the call.
        with anyio.CancelScope(shield=True):
            await self.writer.write(
                [ItemUpdate(ids=ids, state=ItemState.IN_FLIGHT, attempts_inc=1)]
            )
        if self._halted():
            # Stopped (or max-errors tripped) while waiting for the write: nothing was sent.
            with anyio.CancelScope(shield=True):
                await self.writer.write([ItemUpdate(ids=ids, state=ItemState.PENDING)])
            return
        failed: dict[str, tuple[str, str]] = {}
        results: dict[str, str] = {}
        for request in self.action.requests(keys, self.params, rows or {}):
            try:
                response = await self._call(
                    request.operation, keys, idempotent=self.action.retry_safe, **request.params
                )
            except CredentialsError:
                with anyio.CancelScope(shield=True):
                    await self.writer.write([ItemUpdate(ids=ids, state=ItemState.PENDING)])
                raise
            except TransientAwsError as exc:
                await self._after_transient(batch, exc)
                return
            except AwsError as exc:
                await self._fail(batch, exc.code, exc.message)
                return
            outcome = self.action.interpret(keys, response)
            failed.update(outcome.failed)
            results.update(outcome.results)
        await self._record_response(batch, failed, results)

    async def _fail(self, items: Sequence[ItemRecord], code: str, message: str) -> None:
        with anyio.CancelScope(shield=True):
            await self.writer.write(
                [
                    ItemUpdate(
                        ids=[i.id for i in items],
                        state=ItemState.FAILED,
                        error_code=code,
                        error_message=message,
                    )
                ]
            )
        self.stats.failed += len(items)
        self._check_budget()

    def _request_rows(self) -> dict[str, dict[str, Any]] | None:
        """create: the CSV rows by item key, read once per run (None for other actions)."""
        if self._rows is None:
            rows = self.action.plan_rows(self.params)
            if rows is None:
                return None
            self._rows = {row["key"]: row for row in rows}
        return self._rows

    async def _after_transient(self, batch: Sequence[ItemRecord], exc: TransientAwsError) -> None:
        """Retries ran out. Throttled or refused: nothing happened, send again later. Otherwise
        the call may have happened: retry-safe actions are sent again, the others are reconciled
        by describing them (destructive ones without evidence are held in doubt)."""
        ids = [item.id for item in batch]
        not_executed = is_throttling_code(exc.code) or exc.code in NOT_EXECUTED_CODES
        if not_executed or self.action.retry_safe:
            await self._requeue_or_fail(batch, exc.code, exc.message)
            return
        try:
            await self._reconcile_chunk(batch)
        except AwsError:
            with anyio.CancelScope(shield=True):
                await self.writer.write(
                    [
                        ItemUpdate(
                            ids=ids,
                            state=ItemState.IN_DOUBT,
                            error_code=exc.code,
                            error_message=exc.message,
                            reason="the call's outcome is unknown and the WorkSpace could not be "
                            "described",
                        )
                    ]
                )
            return
        # Those reconciled to submitted must be verified.
        for item in await self._reload(ids):
            if item.state is ItemState.SUBMITTED and not self.options.no_wait:
                now = time.monotonic()
                self._watch_item(item, now, now + self.settle.first_delay())

    async def _reload(self, ids: Sequence[int]) -> list[ItemRecord]:
        out: list[ItemRecord] = []
        lo = min(ids)
        for item in await self.store.items_page(
            self.job.id, after_id=lo - 1, limit=max(ids) - lo + 1
        ):
            if item.id in ids:
                out.append(item)
        return out

    async def _requeue_or_fail(self, batch: Sequence[ItemRecord], code: str, message: str) -> None:
        again, give_up = [], []
        for item in batch:
            # item.attempts is the count before this batch's attempt
            if item.attempts + 1 >= self.options.item_attempts:
                give_up.append(item.id)
            else:
                again.append(item.id)
                self._retry_after[item.id] = time.monotonic() + min(
                    30.0, 0.5 * 2 ** (item.attempts)
                )
        with anyio.CancelScope(shield=True):
            await self.writer.write(
                [
                    ItemUpdate(
                        ids=again, state=ItemState.PENDING, error_code=code, error_message=message
                    ),
                    ItemUpdate(
                        ids=give_up, state=ItemState.FAILED, error_code=code, error_message=message
                    ),
                ]
            )
        self.stats.retried_items += len(again)
        self.stats.failed += len(give_up)
        if give_up:
            self._check_budget()

    async def _record_response(
        self,
        batch: Sequence[ItemRecord],
        failures: Mapping[str, tuple[str, str]],
        results: Mapping[str, str],
    ) -> None:
        accepted = [item for item in batch if item.workspace_id not in failures]
        retry_items: list[ItemRecord] = []
        failed_updates: list[ItemUpdate] = []
        for item in batch:
            if item.workspace_id not in failures:
                continue
            code, message = failures[item.workspace_id]
            if self.client.policy.is_retryable_code(code) and (
                item.attempts + 1 < self.options.item_attempts
            ):
                retry_items.append(item)
            else:
                failed_updates.append(
                    ItemUpdate(
                        ids=[item.id],
                        state=ItemState.FAILED,
                        error_code=code,
                        error_message=message,
                    )
                )
        # Without a transition to watch (tag), an accepted call is the end of the item.
        done_state = ItemState.SUBMITTED if self.action.verifies else ItemState.SUCCEEDED
        plain = [i.id for i in accepted if i.workspace_id not in results]
        updates = [
            ItemUpdate(ids=plain, state=done_state, submitted=True, clear_error=True),
            *(
                ItemUpdate(
                    ids=[i.id],
                    state=done_state,
                    submitted=True,
                    clear_error=True,
                    result=results[i.workspace_id],
                )
                for i in accepted
                if i.workspace_id in results
            ),
            *failed_updates,
        ]
        for item in retry_items:
            code, message = failures[item.workspace_id]
            updates.append(
                ItemUpdate(
                    ids=[item.id], state=ItemState.PENDING, error_code=code, error_message=message
                )
            )
            self._retry_after[item.id] = time.monotonic() + min(30.0, 0.5 * 2**item.attempts)
        with anyio.CancelScope(shield=True):
            await self.writer.write(updates)
        self.stats.submitted += len(accepted)
        if not self.action.verifies:
            self.stats.succeeded += len(accepted)
        self.stats.retried_items += len(retry_items)
        self.stats.failed += len(failed_updates)
        if failed_updates:
            self._check_budget()
        if not self.options.no_wait and self.action.verifies:
            now = time.monotonic()
            due = now + self.settle.first_delay()
            for item in accepted:
                self._watch_item(item, now, due, results.get(item.workspace_id))

    def _check_budget(self) -> None:
        if self._over_budget() and not self._aborted:
            log.warning(
                "job %s: %d failures exceed --max-errors %s: aborting",
                self.job.id,
                self.stats.failed,
                self.options.max_errors,
            )
            self._aborted = True

    # -- verify ----------------------------------------------------------------------------

    async def _verifier(self, scope: anyio.CancelScope) -> None:
        with scope:
            async with anyio.create_task_group() as polls:
                while True:
                    if not self._watches:
                        if self._submitting_done and not self._outstanding:
                            # wait for polls in flight to re-queue or finish their items
                            if self._polls_in_flight == 0:
                                return
                        self._watch_added = anyio.Event()
                        with anyio.move_on_after(0.2):
                            await self._watch_added.wait()
                        continue
                    now = time.monotonic()
                    head = self._watches[0]
                    if head.due > now:
                        self._watch_added = anyio.Event()
                        with anyio.move_on_after(head.due - now):
                            await self._watch_added.wait()
                        continue
                    # Take up to 25 due items; fill the call with items due soon (one call
                    # instead of two a moment apart).
                    horizon = now + max(0.25, 0.2 * self.settle.first_delay())
                    chunk: list[_Watch] = []
                    described = 0
                    while self._watches and described + len(self._watches[0].ids) <= DESCRIBE_MAX:
                        if self._watches[0].due > horizon:
                            break
                        watch = heapq.heappop(self._watches)
                        chunk.append(watch)
                        described += len(watch.ids)
                    await self._poll_slots.acquire()
                    self._polls_in_flight += 1
                    polls.start_soon(self._poll, chunk)

    _polls_in_flight = 0

    async def _poll(self, chunk: list[_Watch]) -> None:
        try:
            ids = list(dict.fromkeys(i for w in chunk for i in w.ids))
            try:
                response = await self._call("DescribeWorkspaces", ids, WorkspaceIds=ids)
            except CredentialsError as exc:
                self._failure = exc
                self.stop.set(f"credentials rejected ({exc.code})")
                return
            except AwsError as exc:
                # Could not look: try again later (the timeout still applies).
                now = time.monotonic()
                log.warning("verification describe failed: %s", exc)
                for w in chunk:
                    w.due = now + max(1.0, self.settle.next_delay(w, now))
                    heapq.heappush(self._watches, w)
                return
            self.stats.polls += 1
            await self._judge(chunk, response)
        finally:
            self._poll_slots.release()
            self._polls_in_flight -= 1
            self._watch_added.set()

    async def _judge(self, chunk: list[_Watch], response: Mapping[str, Any]) -> None:
        now = time.monotonic()
        by_id = {ws["WorkspaceId"]: ws for ws in response.get("Workspaces", [])}
        ok: dict[str, list[int]] = {}
        failed: list[ItemUpdate] = []
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
                    failed.append(
                        ItemUpdate(
                            ids=[w.item_id],
                            state=ItemState.FAILED,
                            last_state=state,
                            error_code="VerificationFailed",
                            error_message=verdict.reason,
                        )
                    )
                continue
            if now - w.submitted_at >= self.options.verify_timeout:
                reason = self.action.timeout_reason(observed, now - w.submitted_at)
                failed.append(
                    ItemUpdate(
                        ids=[w.item_id],
                        state=ItemState.FAILED,
                        last_state=state,
                        error_code="VerifyTimeout",
                        error_message=(
                            f"{reason} (--verify-timeout {self.options.verify_timeout:g} s)"
                        ),
                    )
                )
                continue
            w.due = now + self.settle.next_delay(w, now)
            heapq.heappush(self._watches, w)
        updates = [
            ItemUpdate(ids=ids, state=ItemState.SUCCEEDED, last_state=state)
            for state, ids in ok.items()
        ]
        updates.extend(failed)
        if updates:
            with anyio.CancelScope(shield=True):
                await self.writer.write(updates)
        self.stats.succeeded += sum(len(ids) for ids in ok.values())
        self.stats.failed += len(failed)
        if failed:
            self._check_budget()


def quota_seconds(calls: int, rate: float | None, burst: int) -> float:
    """The least time ``calls`` calls can take under a quota of ``rate``/s with ``burst``."""
    if not rate:
        return 0.0
    return max(0, calls - burst) / rate


def batches_needed(count: int, size: int) -> int:
    return math.ceil(count / size) if count else 0
