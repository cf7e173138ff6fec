"""One scope of a running job (an account in a region): its plan, reconcile, submit and verify.

A job spans one scope or several; each has its own client and quota bucket and runs in parallel
with the others (:class:`fleetops.engine.runner.JobRunner` coordinates them). Everything the
scopes share — the store and the commit path, the stop signal, the figures, the error budget —
lives in :class:`~fleetops.engine.context.RunContext`. The decisions are made elsewhere
(:mod:`fleetops.engine.decide`, :mod:`fleetops.aws.retry`); a scope run gathers observations,
asks, and commits the answer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import anyio
from anyio.abc import TaskGroup

from fleetops.aws.client import not_executed
from fleetops.aws.retry import RetryPolicy, item_backoff, retry_item
from fleetops.catalogue.options import wave_sizes
from fleetops.engine.calls import AuditedCall
from fleetops.engine.context import RunContext
from fleetops.engine.decide import AfterTransient, after_transient, failed_request
from fleetops.engine.decide import reconcile_verdict as decide_reconcile
from fleetops.engine.locks import BusyGate
from fleetops.engine.logoff import LogoffGate
from fleetops.engine.planner import NOT_FOUND_REASON, PlanSummary, plan
from fleetops.engine.refusals import Looks, look_at_refused
from fleetops.engine.types import ApiCall, Scope
from fleetops.engine.verify import DESCRIBE_MAX, Verifier
from fleetops.engine.windows import window_gate
from fleetops.errors import (
    AssumeRoleError,
    AwsError,
    CredentialsError,
    TransientAwsError,
    WindowClosed,
)
from fleetops.records import ItemRecord, ItemUpdate
from fleetops.states import UNFINISHED_ITEM_STATES, ItemState

__all__ = ["GRACE_SECONDS", "ScopeRun"]

log = logging.getLogger(__name__)

GRACE_SECONDS = 10.0
PLAN_WRITE_ROWS = 1000  # plan rows buffered per insert (one transaction each)
DOUBT_REASON = (
    "{op} may or may not have been sent before the last run stopped, and the WorkSpace shows no "
    "sign of it"
)


class ScopeRun:
    """Plans, reconciles, submits and verifies the items of one scope."""

    def __init__(
        self,
        ctx: RunContext,
        scope: Scope | str,
        call: ApiCall,
        *,
        policy: RetryPolicy | None = None,
    ) -> None:
        self.ctx = ctx
        self.scope = scope if isinstance(scope, Scope) else Scope.parse(scope)
        #: Set by the runner for a job over several scopes: named WorkSpaces this scope does
        #: not hold are collected here instead of being recorded as skipped.
        self.collect_not_found = False
        self.not_found: set[str] = set()
        self.region = self.scope.region
        self.policy = policy or RetryPolicy()
        self.action = ctx.action
        self.params = ctx.params
        self.options = ctx.options
        self.store = ctx.store
        self.stats = ctx.stats
        self.job_id = ctx.job.id
        # In-flight API calls of a scope never exceed --concurrency (the limiter, in _call);
        # the semaphore keeps the number of waiting submit tasks bounded too.
        self._call = AuditedCall(ctx, self.scope, call, self.policy)
        self.breaker = self._call.breaker
        self._slots = anyio.Semaphore(self.options.concurrency)
        self._outstanding = 0
        self._batch_done = anyio.Event()
        self._retry_after: dict[int, float] = {}
        self._claimed: set[int] = set()  # items handed to a batch task, not yet settled
        #: WorkSpaces busy in another live job wait for it (or are skipped after a while); the
        #: skips go through the run's commit path, its figures too
        self.busy = BusyGate(self.store.busy_workspaces, ctx.commit, self.job_id, self.region)
        #: with --wait-for-logoff, WorkSpaces in use are held until their user logs off
        self.logoff: LogoffGate | None = None
        if self.options.wait_for_logoff and not self.options.include_connected:
            if self.action.interrupts(self.params):
                self.logoff = LogoffGate(
                    self._call, ctx.commit, self.options.wait_for_logoff, self._retry_after
                )
        #: with maintenance windows, each action request asks them right before it goes out
        self._gate = window_gate(self.options.windows()) if self.options.window else {}
        self.verifier = Verifier(
            action=self.action,
            params=self.params,
            verify_timeout=self.options.verify_timeout,
            call=self._call,
            commit=self.ctx.commit,
            concurrency=self.options.concurrency,
            on_credentials=self._credentials_failed,
        )

    def _credentials_failed(self, exc: CredentialsError) -> None:
        self.ctx.stop.set(f"credentials rejected in {self.scope} ({exc.code})")

    # -- reading items (every item read is noted by the commit path) -----------------------

    async def _page(
        self, states: Sequence[ItemState] | None, after_id: int, limit: int
    ) -> tuple[list[ItemRecord], int | None]:
        """This scope's items of one page, and the last id read (None: no more)."""
        page = await self.store.items_page(
            self.job_id, states=states, after_id=after_id, limit=limit, region=self.region
        )
        if not page:
            return [], None
        mine = [item for item in page if item.account == self.scope.account]
        self.ctx.committer.note(mine)
        return mine, page[-1].id

    async def _items(self, states: Sequence[ItemState]) -> list[ItemRecord]:
        out: list[ItemRecord] = []
        after: int | None = 0
        while after is not None:
            page, after = await self._page(states, after, 1000)
            out.extend(page)
        return out

    # -- plan ------------------------------------------------------------------------------

    async def plan(self) -> PlanSummary:
        """Resolve the job's targets in this scope and record every item."""
        buffer: list[Mapping[str, Any]] = []
        account = self.scope.account

        async def sink(rows: Sequence[Mapping[str, Any]]) -> None:
            if self.collect_not_found:
                # A job over several scopes: a named WorkSpace is held by one of them at most.
                # The runner records those that none holds, once (see JobRunner._plan).
                self.not_found.update(
                    row["workspace_id"] for row in rows if row.get("reason") == NOT_FOUND_REASON
                )
                rows = [row for row in rows if row.get("reason") != NOT_FOUND_REASON]
            if account is not None:
                rows = [{**row, "account": account} for row in rows]
            buffer.extend(rows)
            self.stats.plan_found += len(rows)
            if len(buffer) >= PLAN_WRITE_ROWS:
                await flush()

        async def flush() -> None:
            if buffer:
                await self.store.add_items(buffer)
                buffer.clear()

        async def call(operation: str, ids: Sequence[str], /, **params: Any) -> dict[str, Any]:
            if operation == "DescribeWorkspaces" and "WorkspaceIds" not in params:
                self.stats.plan_pages += 1
            return await self._call(operation, ids, **params)

        summary = await plan(
            action=self.action,
            targets=self.action.targets_in(self.ctx.targets, self.params, self.scope.key),
            options=self.options,
            call=call,
            job_id=self.job_id,
            region=self.region,
            sink=sink,
            params=self.params,
        )
        await flush()
        log.info(
            "planned %s in %s: %d eligible, %d skipped, %d planning calls",
            self.action.name,
            self.scope,
            summary.eligible,
            sum(summary.skipped.values()),
            summary.planning_calls,
        )
        return summary

    # -- reconcile what was in flight ------------------------------------------------------

    async def reconcile(self, *, redo_in_doubt: bool) -> None:
        if redo_in_doubt:
            doubt = await self._items([ItemState.IN_DOUBT])
            if doubt:
                log.info(
                    "%d items in doubt sent again in %s (--redo-in-doubt)", len(doubt), self.scope
                )
            await self.ctx.commit(
                [ItemUpdate(ids=[i.id for i in doubt], state=ItemState.PENDING, clear_error=True)]
            )
        in_flight = await self._items([ItemState.IN_FLIGHT])
        if in_flight:
            self.stats.phase = "reconciling"
        for start in range(0, len(in_flight), DESCRIBE_MAX):
            await self._reconcile_chunk(in_flight[start : start + DESCRIBE_MAX])

    async def _evidence(self, chunk: Sequence[ItemRecord]) -> tuple[dict[int, str], dict[int, str]]:
        """Item id → the WorkSpace proving the call happened (itself, or a new one), and item id
        → the state that proved it (kept as last_state, so that verification counts it)."""
        if self.action.reconcile_by_user:
            return await self._user_evidence(chunk), {}
        ids = [item.workspace_id for item in chunk]
        response = await self._call("DescribeWorkspaces", ids, WorkspaceIds=ids)
        by_id = {ws["WorkspaceId"]: ws for ws in response.get("Workspaces", [])}
        found: dict[int, str] = {}
        states: dict[int, str] = {}
        for item in chunk:
            ws = by_id.get(item.workspace_id)
            if self.action.evidence(ws, self.params):
                found[item.id] = item.workspace_id
                if ws is not None and ws.get("State"):
                    states[item.id] = str(ws["State"])
        return found, states

    async def _reconcile_chunk(self, chunk: Sequence[ItemRecord]) -> None:
        """Describe in-flight items and commit the reconcile verdict of each."""
        found, states = await self._evidence(chunk)
        updates: list[ItemUpdate] = []
        verdicts: dict[ItemState, int] = {}
        for item in chunk:
            verdict = decide_reconcile(
                evidence=item.id in found,
                destructive=self.action.destructive,
                retry_safe=self.action.retry_safe,
            )
            verdicts[verdict] = verdicts.get(verdict, 0) + 1
            if verdict is ItemState.SUBMITTED:
                result = found[item.id]
                updates.append(
                    ItemUpdate(
                        ids=[item.id],
                        state=verdict,
                        submitted=True,
                        result=result if result != item.workspace_id else None,
                        last_state=states.get(item.id),
                    )
                )
            elif verdict is ItemState.IN_DOUBT:
                reason = DOUBT_REASON.format(op=self.action.operation)
                updates.append(ItemUpdate(ids=[item.id], state=verdict, reason=reason))
            else:
                updates.append(ItemUpdate(ids=[item.id], state=verdict))
        log.info(
            "reconciled %d in-flight items in %s: %s",
            len(chunk),
            self.scope,
            ", ".join(f"{n} {state}" for state, n in sorted(verdicts.items())),
        )
        await self.ctx.commit(updates)

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
        if not self.options.no_wait and self.action.verifies:
            # Items already submitted (by an earlier run) are verified first.
            now = time.monotonic()
            for item in await self._items([ItemState.SUBMITTED]):
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
        pending_ids = [item.id for item in await self._items([ItemState.PENDING])]
        for size in wave_sizes(self.options.waves, len(pending_ids)):
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
            if self.options.waves:
                log.info("wave %d/%d of %s starts", number, len(bounds), self.scope)
            await self._submit_until(tg, upper)
            if self.options.waves:
                await self._wait_quiet(verify=True)
                self.ctx.check_budget()
            if self.ctx.halted():
                return

    def _ready(
        self, page: Sequence[ItemRecord], upper: int | None
    ) -> tuple[list[ItemRecord], bool]:
        """The items of ``page`` to send now, and whether some wait for their retry time."""
        now = time.monotonic()
        ready: list[ItemRecord] = []
        waiting = False
        for item in page:
            if upper is not None and item.id > upper:
                continue
            if item.id in self._claimed:
                continue  # handed to a batch whose in_flight commit has not landed yet
            if self._retry_after.get(item.id, 0.0) > now:
                waiting = True
            else:
                ready.append(item)
        return ready, waiting

    async def _submit_until(self, tg: TaskGroup, upper: int | None) -> None:
        """Submit every pending item with id ≤ ``upper``, including those sent back to pending."""
        size = self.action.max_batch
        halted = self.ctx.halted
        verifying = not self.options.no_wait and self.action.verifies
        while not halted():
            cursor: int | None = 0
            sent_any = False
            waiting_retry = False
            while cursor is not None and not halted():
                page, cursor = await self._page([ItemState.PENDING], cursor, size * 40)
                ready, waiting = self._ready(page, upper)
                waiting_retry = waiting_retry or waiting
                for start in range(0, len(ready), size):
                    batch = ready[start : start + size]
                    if verifying:
                        await self.verifier.room(halted)  # verification keeps up
                    await self._slots.acquire()
                    if halted():  # tripped while waiting for a slot: send nothing more
                        self._slots.release()
                        return
                    self._outstanding += 1
                    self._claimed.update(item.id for item in batch)
                    tg.start_soon(self._submit_batch, batch)
                    sent_any = True
                if upper is not None and page and page[-1].id >= upper:
                    break
            if halted():
                return
            if self._outstanding:
                await self._wait_batches()
            elif waiting_retry:
                await anyio.sleep(0.2)
            elif not sent_any:
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
                await self._send(batch)
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

    async def _send(self, batch: Sequence[ItemRecord]) -> None:
        """One batch: committed in_flight (attempt counted) before the call, its outcome after."""
        rows = self.ctx.request_rows()
        missing = [item for item in batch if rows is not None and item.workspace_id not in rows]
        if missing:
            await self._fail(missing, "RowNotFound", "the row is no longer in the CSV file")
            batch = [item for item in batch if item not in missing]
            if not batch:
                return
        batch = await self.busy.admit(batch)  # WorkSpaces busy in another live job wait
        if batch and self.logoff is not None:  # WorkSpaces in use wait for their user
            batch = await self.logoff.admit(batch)
            self.stats.logoff_waiting = self.logoff.holding
        if not batch:
            return
        ids = [item.id for item in batch]
        keys = [item.workspace_id for item in batch]
        await self.ctx.commit([ItemUpdate(ids=ids, state=ItemState.IN_FLIGHT, attempts_inc=1)])
        if self.ctx.halted():
            # Stopped (or max-errors tripped) while waiting for the write: nothing was sent.
            await self.ctx.commit([ItemUpdate(ids=ids, state=ItemState.PENDING)])
            return
        failed: dict[str, tuple[str, str]] = {}
        results: dict[str, str] = {}
        for request in self.action.requests(keys, self.params, rows or {}):
            try:
                response = await self._call(
                    request.operation,
                    keys,
                    idempotent=self.action.retry_safe,
                    **request.params,
                    **self._gate,
                )
            except WindowClosed:  # not sent: pending again, for the next opening
                self.ctx.window_closed = True
                await self.ctx.commit([ItemUpdate(ids=ids, state=ItemState.PENDING)])
                return
            except CredentialsError:
                await self.ctx.commit([ItemUpdate(ids=ids, state=ItemState.PENDING)])
                raise
            except TransientAwsError as exc:
                await self._after_transient(batch, exc)
                return
            except AwsError as exc:
                if len(batch) == 1:  # a one-WorkSpace call's error is that WorkSpace's answer
                    failed[keys[0]] = (exc.code, exc.message)
                    break
                await self._fail(batch, exc.code, exc.message)
                return
            outcome = self.action.interpret(keys, response)
            failed.update(outcome.failed)
            results.update(outcome.results)
        log.info(
            "%s batch of %d in %s: %d accepted, %d refused",
            self.action.operation,
            len(batch),
            self.scope,
            len(batch) - len(failed),
            len(failed),
        )
        await self._record_response(batch, failed, results)

    async def fail_unreachable(self, exc: AssumeRoleError) -> int:
        """This scope's account cannot be reached: every unfinished item fails with the reason
        (their state cannot be known without the role); returns how many."""
        items = await self._items(sorted(UNFINISHED_ITEM_STATES))
        if items:
            await self._fail(items, exc.code, exc.message)
        return len(items)

    async def _fail(self, items: Sequence[ItemRecord], code: str, message: str) -> None:
        ids = [i.id for i in items]
        log.info("%d items failed in %s: %s", len(ids), self.scope, code)
        await self.ctx.commit(
            [ItemUpdate(ids=ids, state=ItemState.FAILED, error_code=code, error_message=message)]
        )

    async def _after_transient(self, batch: Sequence[ItemRecord], exc: TransientAwsError) -> None:
        """Retries ran out: send again later, or describe first when the call may have happened
        (destructive ones without evidence are then held in doubt)."""
        verdict = after_transient(not_executed=not_executed(exc), retry_safe=self.action.retry_safe)
        log.info(
            "%s failed transiently (%s) in %s: %s", exc.operation, exc.code, self.scope, verdict
        )
        if verdict is AfterTransient.REQUEUE:
            await self._requeue_or_fail(batch, exc.code, exc.message)
            return
        ids = [item.id for item in batch]
        try:
            await self._reconcile_chunk(batch)
        except AwsError:
            await self.ctx.commit(
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
        page, _ = await self._page(None, lo - 1, max(ids) - lo + 1)
        return [item for item in page if item.id in wanted]

    def _retry_later(self, item: ItemRecord) -> None:
        # item.attempts is the count before this batch's attempt
        self._retry_after[item.id] = time.monotonic() + item_backoff(item.attempts)

    async def _requeue_or_fail(self, batch: Sequence[ItemRecord], code: str, message: str) -> None:
        again, give_up = [], []
        for item in batch:
            if retry_item(True, item.attempts, self.options.item_attempts):
                again.append(item.id)
                self._retry_later(item)
            else:
                give_up.append(item.id)
        await self.ctx.commit(
            [
                ItemUpdate(
                    ids=again, state=ItemState.PENDING, error_code=code, error_message=message
                ),
                ItemUpdate(
                    ids=give_up, state=ItemState.FAILED, error_code=code, error_message=message
                ),
            ]
        )

    def _refused(
        self,
        batch: Sequence[ItemRecord],
        failures: Mapping[str, tuple[str, str]],
        looks: Looks | None = None,
    ) -> list[ItemUpdate]:
        """The updates of the items the API refused (FailedRequests), each by its outcome."""
        updates: list[ItemUpdate] = []
        for item in batch:
            if item.workspace_id not in failures:
                continue
            code, message = failures[item.workspace_id]
            now = (looks or {}).get(item.workspace_id)
            outcome = failed_request(
                code,
                message,
                retryable=self.policy.is_retryable_code(code),
                attempts=item.attempts,
                max_attempts=self.options.item_attempts,
                found=None if now is None else now != "",
                now_state=now or None,
            )
            if outcome.state is ItemState.PENDING:
                self._retry_later(item)
                log.info(
                    "%s refused in %s (%s): sent again in %.1f s",
                    item.workspace_id,
                    self.scope,
                    code,
                    item_backoff(item.attempts),
                )
            if outcome.state is ItemState.SKIPPED:
                log.info("%s skipped in %s: %s", item.workspace_id, self.scope, outcome.reason)
                updates.append(
                    ItemUpdate(ids=[item.id], state=outcome.state, reason=outcome.reason)
                )
                continue
            updates.append(
                ItemUpdate(
                    ids=[item.id], state=outcome.state, error_code=code, error_message=message
                )
            )
        return updates

    async def _record_response(
        self,
        batch: Sequence[ItemRecord],
        failures: Mapping[str, tuple[str, str]],
        results: Mapping[str, str],
    ) -> None:
        accepted = [item for item in batch if item.workspace_id not in failures]
        looks = await look_at_refused(self._call, failures) if failures else None
        updates = self._refused(batch, failures, looks)
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
        await self.ctx.commit(updates)
        if not self.options.no_wait and self.action.verifies:
            self.verifier.watch_new(accepted, results)
