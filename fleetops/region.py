"""One region of a running job: its client, its plan, its submitter and its verifier.

A job spans one region or several; each region has its own client and quota bucket and runs in
parallel with the others (:class:`fleetops.runner.JobRunner` coordinates them). Everything a
region shares with the others — the store and its group writer, the stop signal, the live
counters and the error budget — lives in :class:`JobContext`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
from anyio.abc import TaskGroup

from fleetops.actions import ActionSpec
from fleetops.aws import NOT_EXECUTED_CODES, WorkSpacesClient
from fleetops.errors import AwsError, CredentialsError, TransientAwsError
from fleetops.options import JobOptions
from fleetops.planner import PlanSummary, plan
from fleetops.retry import is_throttling_code
from fleetops.states import ItemState
from fleetops.store import EventRow, GroupWriter, ItemRecord, ItemUpdate, JobRecord, Store
from fleetops.targets import Targets
from fleetops.verify import DESCRIBE_MAX, Verifier

if TYPE_CHECKING:
    from fleetops.runner import RunStats, StopSignal

__all__ = ["GRACE_SECONDS", "JobContext", "RegionWorker"]

log = logging.getLogger(__name__)

GRACE_SECONDS = 10.0
PLAN_WRITE_ROWS = 1000  # plan rows buffered per insert (one transaction each)


@dataclass
class JobContext:
    """What every region of one run shares."""

    store: Store
    writer: GroupWriter
    job: JobRecord
    action: ActionSpec
    params: Mapping[str, Any]
    options: JobOptions
    targets: Targets
    stop: StopSignal
    stats: RunStats
    budget: int | None = None
    aborted: bool = False
    rows: dict[str, dict[str, Any]] | None = field(default=None)  # create: CSV rows by key
    rows_loaded: bool = False

    def halted(self) -> bool:
        """Stop taking new batches: a stop was asked for, or max-errors tripped."""
        return self.stop.is_set or self.aborted

    def over_budget(self) -> bool:
        return self.budget is not None and self.stats.failed > self.budget

    def check_budget(self) -> None:
        if self.over_budget() and not self.aborted:
            log.warning(
                "job %s: %d failures exceed --max-errors %s: aborting",
                self.job.id,
                self.stats.failed,
                self.options.max_errors,
            )
            self.aborted = True

    def request_rows(self) -> dict[str, dict[str, Any]] | None:
        """create: the CSV rows by item key, read once per run (None for other actions)."""
        if not self.rows_loaded:
            rows = self.action.plan_rows(self.params)
            self.rows = None if rows is None else {row["key"]: row for row in rows}
            self.rows_loaded = True
        return self.rows


class RegionWorker:
    """Plans, reconciles, submits and verifies the items of one region."""

    def __init__(self, ctx: JobContext, region: str, client: WorkSpacesClient) -> None:
        self.ctx = ctx
        self.region = region
        self.client = client
        self.action = ctx.action
        self.params = ctx.params
        self.options = ctx.options
        self.store = ctx.store
        self.writer = ctx.writer
        self.stats = ctx.stats
        self.job_id = ctx.job.id
        # In-flight API calls of a region never exceed --concurrency (the limiter, in _call);
        # the semaphore keeps the number of waiting submit tasks bounded too.
        self._limiter = anyio.CapacityLimiter(self.options.concurrency)
        self._slots = anyio.Semaphore(self.options.concurrency)
        self._outstanding = 0
        self._batch_done = anyio.Event()
        self._retry_after: dict[int, float] = {}
        self._claimed: set[int] = set()  # items handed to a batch task, not yet settled
        self.verifier = Verifier(
            action=self.action,
            params=self.params,
            verify_timeout=self.options.verify_timeout,
            call=self._call,
            writer=self.writer,
            stats=self.stats,
            concurrency=self.options.concurrency,
            on_failures=ctx.check_budget,
            on_credentials=self._credentials_failed,
        )

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
            job_id=self.job_id,
            region=self.region,
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

    def _credentials_failed(self, exc: CredentialsError) -> None:
        self.ctx.stop.set(f"credentials rejected ({exc.code})")

    # -- plan ------------------------------------------------------------------------------

    async def plan(self) -> PlanSummary:
        """Resolve the job's targets in this region and record every item."""
        buffer: list[Mapping[str, Any]] = []

        async def sink(rows: Sequence[Mapping[str, Any]]) -> None:
            buffer.extend(rows)
            if len(buffer) >= PLAN_WRITE_ROWS:
                await flush()

        async def flush() -> None:
            if buffer:
                await self.store.add_items(buffer)
                buffer.clear()

        summary = await plan(
            action=self.action,
            targets=self.ctx.targets,
            options=self.options,
            call=self._call,
            job_id=self.job_id,
            region=self.region,
            sink=sink,
            params=self.params,
        )
        await flush()
        return summary

    # -- reconcile what was in flight ------------------------------------------------------

    async def reconcile(self, *, redo_in_doubt: bool) -> None:
        if redo_in_doubt:
            async for page in self.store.iter_items(
                self.job_id, states=[ItemState.IN_DOUBT], region=self.region
            ):
                await self.writer.write(
                    [
                        ItemUpdate(
                            ids=[i.id for i in page], state=ItemState.PENDING, clear_error=True
                        )
                    ]
                )
        async for page in self.store.iter_items(
            self.job_id, states=[ItemState.IN_FLIGHT], region=self.region
        ):
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

    async def execute(self) -> None:
        self.stats.phase = "running"
        verifying = not self.options.no_wait and self.action.verifies
        if verifying:
            # Items already submitted (by an earlier run) are verified first.
            now = time.monotonic()
            async for page in self.store.iter_items(
                self.job_id, states=[ItemState.SUBMITTED], region=self.region
            ):
                for item in page:
                    self.verifier.watch(item, now, due=now)
        verifier_scope = anyio.CancelScope()
        verifier_done = anyio.Event()
        watch_scope = anyio.CancelScope()

        async def verifier() -> None:
            try:
                with verifier_scope:
                    await self.verifier.run()
            finally:
                verifier_done.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(verifier)
            tg.start_soon(self._stop_watch, tg.cancel_scope, verifier_scope, watch_scope)
            try:
                await self._submitter(tg)
            finally:
                await self._wait_quiet(verify=False)
                self.verifier.done_feeding()
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
            await self.ctx.stop.event.wait()
            verifier_scope.cancel()
            with anyio.move_on_after(GRACE_SECONDS):
                await self.ctx.stop.hard.wait()
            run_scope.cancel()

    async def _wave_bounds(self) -> list[int | None]:
        """The last item id of each wave (None: to the end), over the items still pending."""
        if not self.options.waves:
            return [None]
        bounds: list[int | None] = []
        counted = 0
        pending_ids: list[int] = []
        async for page in self.store.iter_items(
            self.job_id, states=[ItemState.PENDING], region=self.region
        ):
            pending_ids.extend(item.id for item in page)
        for size in self.options.waves:
            if size is None or counted + size >= len(pending_ids):
                bounds.append(None)
                break
            counted += size
            bounds.append(pending_ids[counted - 1])
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
                if self.ctx.over_budget():
                    self.ctx.aborted = True
            if self.ctx.halted():
                return

    async def _submit_until(self, tg: TaskGroup, upper: int | None) -> None:
        """Submit every pending item with id ≤ ``upper``, including those sent back to pending."""
        size = self.action.max_batch
        halted = self.ctx.halted
        while not halted():
            cursor = 0
            sent_any = False
            waiting_retry = False
            while not halted():
                page = await self.store.items_page(
                    self.job_id,
                    states=[ItemState.PENDING],
                    after_id=cursor,
                    limit=size * 40,
                    region=self.region,
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
                    if halted():
                        return
                    batch = ready[start : start + size]
                    await self._slots.acquire()
                    if halted():  # tripped while waiting for a slot: send nothing more
                        self._slots.release()
                        return
                    self._outstanding += 1
                    self._claimed.update(item.id for item in batch)
                    tg.start_soon(self._submit_batch, batch)
                    sent_any = True
            if halted():
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
        while self._outstanding or (verify and self.verifier.busy and not self.ctx.stop.is_set):
            await anyio.sleep(0.05)

    async def _submit_batch(self, batch: Sequence[ItemRecord]) -> None:
        try:
            try:
                await self._submit_batch_leased(batch)
            finally:
                self._slots.release()
        except CredentialsError as exc:
            self._credentials_failed(exc)
        finally:
            # The outcome is committed (or the items are still in_flight): a rescan of pending
            # items may see them again only if they were sent back to pending.
            self._claimed.difference_update(item.id for item in batch)
            self._outstanding -= 1
            self._batch_done.set()

    async def _submit_batch_leased(self, batch: Sequence[ItemRecord]) -> None:
        rows = self.ctx.request_rows()
        missing = [item for item in batch if rows is not None and item.workspace_id not in rows]
        if missing:
            await self._fail(missing, "RowNotFound", "the row is no longer in the CSV file")
            batch = [item for item in batch if item not in missing]
            if not batch:
                return
        ids = [item.id for item in batch]
        keys = [item.workspace_id for item in batch]
        # 1. Durable intent: committed in_flight, attempt counted, before the call.
        with anyio.CancelScope(shield=True):
            await self.writer.write(
                [ItemUpdate(ids=ids, state=ItemState.IN_FLIGHT, attempts_inc=1)]
            )
        if self.ctx.halted():
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
        self.ctx.check_budget()

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
        if self.options.no_wait or not self.action.verifies:
            return
        for item in await self._reload(ids):
            if item.state is ItemState.SUBMITTED:
                now = time.monotonic()
                self.verifier.watch(item, now, now + self.verifier.settle.first_delay())

    async def _reload(self, ids: Sequence[int]) -> list[ItemRecord]:
        wanted = set(ids)
        lo = min(ids)
        page = await self.store.items_page(self.job_id, after_id=lo - 1, limit=max(ids) - lo + 1)
        return [item for item in page if item.id in wanted]

    def _retry_later(self, item: ItemRecord) -> None:
        # item.attempts is the count before this batch's attempt
        self._retry_after[item.id] = time.monotonic() + min(30.0, 0.5 * 2**item.attempts)

    async def _requeue_or_fail(self, batch: Sequence[ItemRecord], code: str, message: str) -> None:
        again, give_up = [], []
        for item in batch:
            if item.attempts + 1 >= self.options.item_attempts:
                give_up.append(item.id)
            else:
                again.append(item.id)
                self._retry_later(item)
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
            self.ctx.check_budget()

    async def _record_response(
        self,
        batch: Sequence[ItemRecord],
        failures: Mapping[str, tuple[str, str]],
        results: Mapping[str, str],
    ) -> None:
        accepted = [item for item in batch if item.workspace_id not in failures]
        updates: list[ItemUpdate] = []
        retried = failed = 0
        for item in batch:
            if item.workspace_id not in failures:
                continue
            code, message = failures[item.workspace_id]
            if self.client.policy.is_retryable_code(code) and (
                item.attempts + 1 < self.options.item_attempts
            ):
                updates.append(
                    ItemUpdate(
                        ids=[item.id],
                        state=ItemState.PENDING,
                        error_code=code,
                        error_message=message,
                    )
                )
                self._retry_later(item)
                retried += 1
            else:
                updates.append(
                    ItemUpdate(
                        ids=[item.id],
                        state=ItemState.FAILED,
                        error_code=code,
                        error_message=message,
                    )
                )
                failed += 1
        # Without a transition to watch (tag), an accepted call is the end of the item.
        done_state = ItemState.SUBMITTED if self.action.verifies else ItemState.SUCCEEDED
        plain = [i.id for i in accepted if i.workspace_id not in results]
        updates.append(ItemUpdate(ids=plain, state=done_state, submitted=True, clear_error=True))
        updates.extend(
            ItemUpdate(
                ids=[i.id],
                state=done_state,
                submitted=True,
                clear_error=True,
                result=results[i.workspace_id],
            )
            for i in accepted
            if i.workspace_id in results
        )
        with anyio.CancelScope(shield=True):
            await self.writer.write(updates)
        self.stats.submitted += len(accepted)
        if not self.action.verifies:
            self.stats.succeeded += len(accepted)
        self.stats.retried_items += retried
        self.stats.failed += failed
        if failed:
            self.ctx.check_budget()
        if not self.options.no_wait and self.action.verifies:
            self.verifier.watch_new(accepted, results)
