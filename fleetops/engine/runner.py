"""Running a job: plan → submit → verify, resumable at any instant, over one scope or several.

The durability rule: the items of a batch are committed ``in_flight`` (attempt counted) *before*
the call, and the call's outcome is committed afterwards in one transaction shielded from
cancellation (:class:`fleetops.engine.commit.Committer`). A process killed between the two leaves
``in_flight`` items, which the next run reconciles by describing them before anything is re-sent.

Tasks of one run::

    heartbeat   renews the job's lease
    writer      group-commits every state change (the store's writer)
    per scope (fleetops.engine.scope.ScopeRun: an account in a region), in parallel, each with
    its own client and quota bucket:
      submitter   pending items → batches of the model's max → one task per call
      verifier    submitted items → DescribeWorkspaces 25 ids a call, when they should settle
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager

import anyio

from fleetops.aws.client import ClientStats
from fleetops.catalogue.actions import get_action
from fleetops.catalogue.options import JobOptions, error_budget
from fleetops.catalogue.targets import Candidate, Targets
from fleetops.engine import windows as window_time
from fleetops.engine.calls import AuditedCall
from fleetops.engine.commit import Committer
from fleetops.engine.context import RunContext
from fleetops.engine.planner import (
    NOT_FOUND_ANYWHERE,
    NOT_FOUND_REASON,
    PlanSummary,
    plan_row,
)
from fleetops.engine.rollout import RolloutLedger, RolloutRun
from fleetops.engine.scope import ScopeRun
from fleetops.engine.steps import StepBudget, StepRun, is_recipe
from fleetops.engine.types import ApiClient, RunStats, Scope, StopSignal
from fleetops.errors import (
    AssumeRoleError,
    AwsError,
    CredentialsError,
    Interrupted,
    LeaseHeldError,
)
from fleetops.records import JobRecord, iso
from fleetops.states import ACTED_ON_ITEM_STATES, ItemState, JobStatus, RunEnd, final_status
from fleetops.store.protocol import EngineStore
from fleetops.store.repo import lease_owner_id

__all__ = ["JobRunner", "RunStats", "StopSignal", "merge_summaries"]

log = logging.getLogger(__name__)

LEASE_TTL = 30.0


def _throttles_of(stats: ClientStats) -> Callable[[], int]:
    return lambda: stats.throttles


def _aws_error(group: BaseExceptionGroup[BaseException]) -> AwsError | None:
    """The API error a task group's failure stands for (None: something else failed too)."""
    matched, rest = group.split(AwsError)
    if matched is None or rest is not None:
        return None
    leaf: BaseException = matched
    while isinstance(leaf, BaseExceptionGroup):
        leaf = leaf.exceptions[0]
    return leaf if isinstance(leaf, AwsError) else None


def api_failure(exc: AwsError, where: str) -> str:
    """The job's message for an API that failed for good, naming the operation and the error."""
    operation = exc.operation or "an API call"
    return f"{where}: {operation} failed with {exc.code}: {exc.message.strip()[:300]}"


class JobRunner:
    """Runs (or resumes) one job to its end, or to a graceful stop.

    ``clients`` maps each of the job's scopes (``"region"``, or ``"account/region"``) to its
    client; a single client serves a single-region job. A client is anything with the
    ``call(operation, *, idempotent, **params)`` of :class:`fleetops.aws.client.WorkSpacesClient`.
    """

    def __init__(
        self,
        store: EngineStore,
        clients: ApiClient | Mapping[str, ApiClient],
        job: JobRecord,
        *,
        stop: StopSignal | None = None,
        redo_in_doubt: bool = False,
    ) -> None:
        if not isinstance(clients, Mapping):
            clients = {job.region: clients}
        self.store = store
        self.clients: dict[str, ApiClient] = dict(clients)
        self.job = job
        self.stop = stop or StopSignal()
        self.redo_in_doubt = redo_in_doubt
        self.stats = RunStats()
        self.owner = lease_owner_id()
        self.writer = store.writer()
        self.committer = Committer(self.writer, self.stats)
        self.plan_summary: PlanSummary | None = None
        self.next_window_at: float | None = None  # set when the run ends waiting for a window
        self.ctx = RunContext(
            store=store,
            committer=self.committer,
            job=job,
            action=get_action(job.action),
            params=job.params,
            options=JobOptions.from_dict(job.options),
            targets=Targets.from_dict(job.targets),
            stop=self.stop,
            stats=self.stats,
        )
        self.scope_runs = [
            ScopeRun(
                self.ctx, Scope.parse(key), client.call, policy=getattr(client, "policy", None)
            )
            for key, client in self.clients.items()
        ]
        for scope_run in self.scope_runs:
            scope_run.collect_not_found = len(self.scope_runs) > 1
        #: a rollout's scopes share their facts and meet before updates and rollbacks
        self.rollout: RolloutLedger | None = None
        #: a recipe's scopes share one error budget, of the WorkSpaces that end failed
        self.step_budget = StepBudget(self.ctx)
        if job.action == "rollout":
            self.rollout = RolloutLedger(self.ctx, list(self.clients))
        for client in self.clients.values():
            client_stats = getattr(client, "stats", None)
            if isinstance(client_stats, ClientStats):
                self.stats.throttle_sources.append(_throttles_of(client_stats))

    @property
    def client(self) -> ApiClient:
        """The first scope's client."""
        return next(iter(self.clients.values()))

    def client_stats(self) -> ClientStats:
        """The run's API calls, from the audit rows it stored: what ``jobs show`` reports
        (``calls`` logical calls, ``retries`` attempts beyond the first), and throttles."""
        counts = self.stats.calls
        return ClientStats(
            calls=counts.calls,
            throttles=self.stats.throttles,
            retries=counts.retries,
            errors_by_code=counts.errors_by_code.copy(),
        )

    # -- the whole run ---------------------------------------------------------------------

    async def run(self) -> JobRecord:
        async with self._leased():
            async with self._services():
                status, message = await self._run_phases()
        log.info("job %s ends %s%s", self.job.id, status, f": {message}" if message else "")
        await self.store.update_job(
            self.job.id,
            status=status,
            message=message,
            finished_at=(
                None if status in (JobStatus.INTERRUPTED, JobStatus.WAITING) else time.time()
            ),
            next_window_at=self.next_window_at if status is JobStatus.WAITING else None,
        )
        self.job = await self.store.get_job(self.job.id)
        return self.job

    async def plan_only(self) -> JobRecord:
        """Plan the job (record every item) without running it; a planned job is left as is.
        A plan the API refused leaves the job ``failed``, with the operation and error; a plan
        stopped half-way (Ctrl-C) raises :class:`Interrupted`, the job left unplanned."""
        async with self._leased(), self._services():
            if self.job.planned_at is None:
                await self._plan()
        if self.ctx.failure is not None:
            await self.store.update_job(
                self.job.id,
                status=JobStatus.FAILED,
                message=self.ctx.failure,
                finished_at=time.time(),
            )
            self.job = await self.store.get_job(self.job.id)
        elif self.job.planned_at is None and self.stop.is_set:
            raise Interrupted(
                f"{self.stop.reason} while planning job {self.job.id}: nothing was planned"
            )
        return self.job

    @asynccontextmanager
    async def _leased(self) -> AsyncIterator[None]:
        holder = await self.store.acquire_lease(self.job.id, self.owner, LEASE_TTL)
        if holder is not None:
            raise LeaseHeldError(
                f"job {self.job.id} is being run by another process ({holder}); "
                "wait for it or stop it first"
            )
        try:
            yield
        finally:
            with anyio.CancelScope(shield=True):
                await self.store.release_lease(self.job.id, self.owner)

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
        if self.job.planned_at is None:
            await self._plan()
            if self.ctx.failure is not None:
                return JobStatus.FAILED, self.ctx.failure
            if self.job.planned_at is None:  # stopped while planning
                return JobStatus.INTERRUPTED, (
                    f"{self.stop.reason} while planning: resume with "
                    f"`fleetops jobs resume {self.job.id}`"
                )
        windows = self.ctx.options.windows()
        opening = window_time.next_opening(windows)
        if opening is not None:  # closed at start: nothing is sent until it opens
            return self._waiting(opening)
        await self.store.update_job(
            self.job.id,
            status=JobStatus.RUNNING,
            started_at=self.job.started_at or time.time(),
            finished_at=None,
            message=None,
            next_window_at=None,
        )
        counts = await self.store.counts(self.job.id)
        self.stats.reset_counts(counts)
        self.ctx.budget = error_budget(
            self.ctx.options.max_errors, sum(counts[state] for state in ACTED_ON_ITEM_STATES)
        )
        async with anyio.create_task_group() as beside:
            if windows.spans:  # the watcher marks the run when the window closes
                beside.start_soon(window_time.watch, windows, self.ctx, self.job.id)
            async with anyio.create_task_group() as tg:
                for scope_run in self.scope_runs:
                    tg.start_soon(self._run_scope, scope_run)
            beside.cancel_scope.cancel()
        status, message = await self._final_status()
        if status is JobStatus.INTERRUPTED and self.ctx.window_closed and not self.stop.is_set:
            counts = await self.store.counts(self.job.id)
            if not counts[ItemState.IN_DOUBT]:  # items in doubt await the operator first
                return self._waiting(windows.next_open(window_time.clock()))
        return status, message

    def _waiting(self, opening: float) -> tuple[JobStatus, str | None]:
        """Outside the job's maintenance windows: ``waiting`` until ``opening``."""
        self.next_window_at = opening
        return JobStatus.WAITING, (
            f"outside its maintenance window: continues at {iso(opening)} "
            f"(`fleetops jobs resume {self.job.id}`)"
        )

    async def _run_scope(self, scope_run: ScopeRun) -> None:
        try:
            try:
                client = self.clients[scope_run.scope.key]
                if is_recipe(self.ctx.action):  # several steps per item
                    steps = StepRun(
                        self.ctx, scope_run.scope, client.call, scope_run.policy, self.step_budget
                    )
                    await steps.run(redo_in_doubt=self.redo_in_doubt)
                elif self.rollout is not None:  # each scope's bundle updated first
                    audited = AuditedCall(self.ctx, scope_run.scope, client.call, scope_run.policy)
                    rollout = RolloutRun(self.ctx, scope_run, audited, self.rollout)
                    await rollout.run(redo_in_doubt=self.redo_in_doubt)
                else:
                    await scope_run.reconcile(redo_in_doubt=self.redo_in_doubt)
                    await scope_run.execute()
            except BaseExceptionGroup as group:
                error = _aws_error(group)
                if error is None:
                    raise
                raise error from group
        except AssumeRoleError as exc:
            # This account cannot be reached: its items fail with the reason; the others go on.
            self.ctx.unreachable[scope_run.scope.key] = f"{exc.code}: {exc.message}"
            await scope_run.fail_unreachable(exc)
        except CredentialsError as exc:
            # One scope's credentials failing stops every scope: the job pauses, resumable.
            self.stop.set(f"credentials rejected in {scope_run.scope} ({exc.code})")
        except AwsError as exc:
            self.ctx.fail(api_failure(exc, f"in {scope_run.scope}"))

    async def _final_status(self) -> tuple[JobStatus, str | None]:
        counts = await self.store.counts(self.job.id)
        self.stats.reset_counts(counts)
        return final_status(
            RunEnd(
                job_id=self.job.id,
                counts=counts,
                failure=self.ctx.failure,
                aborted=self.ctx.aborted,
                max_errors=self.ctx.options.max_errors,
                stop_reason=self.stop.reason if self.stop.is_set else None,
                waits=not self.ctx.options.no_wait,
                unreachable=tuple(dict.fromkeys(self.ctx.unreachable.values())),
            )
        )

    # -- plan ------------------------------------------------------------------------------

    async def _plan(self) -> None:
        """Plan every scope (in parallel); ``planned_at`` is set only when all are recorded,
        so a plan cut short starts over. An API failure ends the plan: the job fails."""
        self.stats.phase = "planning"
        await self.store.delete_items(self.job.id)
        by_key = {run.scope.key: run for run in self.scope_runs}
        summaries: list[PlanSummary] = []

        async def plan_scope(key: str) -> PlanSummary | None:
            scope_run = by_key[key]
            try:
                try:
                    return await scope_run.plan()
                except BaseExceptionGroup as group:
                    error = _aws_error(group)
                    if error is None:
                        raise
                    raise error from group
            except AssumeRoleError:
                raise  # the fan-out records the scope as unreachable
            except AwsError as exc:  # credentials missing or rejected included
                self.ctx.fail(api_failure(exc, f"planning failed in {scope_run.scope}"))
                return None

        def not_planned(key: str, exc: AssumeRoleError) -> str:
            # This account cannot be reached: nothing to plan there; the others go on.
            account = by_key[key].scope.account
            reason = (
                f"{exc.code}: {exc.message} (not planned: once the role can be assumed, "
                f"run a job for account {account})"
            )
            log.info("scope %s not planned: %s", by_key[key].scope, reason)
            self.ctx.unreachable[key] = reason
            return reason

        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as tg:

                async def cancel_on_stop() -> None:
                    await self.stop.event.wait()
                    scope.cancel()

                tg.start_soon(cancel_on_stop)
                summaries = await plan_scopes(
                    list(by_key), plan_scope, self.job.action, self.ctx.options, not_planned
                )
                tg.cancel_scope.cancel()
        if scope.cancelled_caught or len(summaries) != len(self.scope_runs):
            if self.ctx.failure is not None:
                await self.store.delete_items(self.job.id)
            return
        if len(self.scope_runs) > 1:
            await self._record_not_found(summaries)
        self.plan_summary = merge_summaries(summaries)
        await self.store.update_job(self.job.id, planned_at=time.time())
        self.job = await self.store.get_job(self.job.id)
        self.ctx.job = self.job

    async def _record_not_found(self, summaries: list[PlanSummary]) -> None:
        """A job over several scopes: a named WorkSpace that no scope holds is recorded once,
        skipped as not found anywhere (each scope left out the ones it does not hold)."""
        planned = [w for w in self.scope_runs if w.scope.key not in self.ctx.unreachable]
        missing = sorted(set.intersection(*(w.not_found for w in planned))) if planned else []
        for summary in summaries:
            summary.skipped.pop(NOT_FOUND_REASON, None)
            summary.examples.pop(f"skipped: {NOT_FOUND_REASON}", None)
        if not missing:
            return
        first = planned[0]
        now = time.time()
        # With an account that could not be reached, a WorkSpace not found elsewhere may be
        # one of its own: it fails with that account's reason instead of being skipped.
        unreachable = sorted(self.ctx.unreachable.items())
        rows = []
        for ws_id in missing:
            row = plan_row(
                self.job.id,
                first.region,
                Candidate(workspace={"WorkspaceId": ws_id}),
                None if unreachable else NOT_FOUND_ANYWHERE,
                now,
            )
            if first.scope.account is not None:
                row["account"] = first.scope.account
            if unreachable:
                key, reason = unreachable[0]
                row.update(
                    state=ItemState.FAILED.value,
                    error_code=reason.partition(":")[0] or "AccessDenied",
                    error_message=(
                        f"not found in the reachable accounts and regions; {key} could not be "
                        f"reached: {reason}"
                    ),
                )
            rows.append(row)
        await self.store.add_items(rows)
        target = next((s for s in summaries if s.scope == first.scope.key), summaries[0])
        if not unreachable:
            target.skipped[NOT_FOUND_ANYWHERE] += len(missing)
            target.examples[f"skipped: {NOT_FOUND_ANYWHERE}"] = missing[:5]
        log.info("%d named WorkSpaces found in none of the job's reachable scopes", len(missing))


async def plan_scopes(
    keys: Sequence[str],
    plan_scope: Callable[[str], Awaitable[PlanSummary | None]],
    action: str,
    options: JobOptions,
    reason: Callable[[str, AssumeRoleError], str] = lambda key, exc: f"{exc.code}: {exc.message}",
) -> list[PlanSummary]:
    """Every scope planned at once (a run's plan and a dry run alike): each summary names its
    scope; a scope whose account's role cannot be assumed is a summary saying so (``reason``),
    and the others go on. A scope whose ``plan_scope`` answers None (it failed, and said so)
    has no summary."""
    summaries: list[PlanSummary] = []

    async def one(key: str) -> None:
        try:
            summary = await plan_scope(key)
        except AssumeRoleError as exc:
            summary = PlanSummary(
                action=action,
                rate=options.rate,
                burst=options.burst,
                unreachable={key: reason(key, exc)},
            )
        if summary is not None:
            summary.scope = key
            summaries.append(summary)

    async with anyio.create_task_group() as tg:
        for key in keys:
            tg.start_soon(one, key)
    return summaries


def merge_summaries(summaries: list[PlanSummary]) -> PlanSummary:
    """One summary for a job planned over several scopes."""
    if len(summaries) == 1:
        return summaries[0]
    merged = PlanSummary(
        action=summaries[0].action, rate=summaries[0].rate, burst=summaries[0].burst
    )
    for s in summaries:
        if s.scope is not None:
            merged.by_scope[s.scope] = s
        merged.unreachable.update(s.unreachable)
        merged.eligible += s.eligible
        merged.skipped.update(s.skipped)
        for group, examples in s.examples.items():
            merged.examples.setdefault(group, []).extend(examples)
        merged.planning_calls += s.planning_calls
        merged.snapshot_calls += s.snapshot_calls
        merged.submit_calls += s.submit_calls
        merged.verify_calls += s.verify_calls
        merged.calls_needed += s.calls_needed
    return merged
