"""Running a job: plan → submit → verify, resumable at any instant, over one region or several.

The durability rule (DESIGN.md): the items of a batch are committed ``in_flight`` (attempt
counted) *before* the call, and the call's outcome is committed afterwards in one transaction
shielded from cancellation. A process killed between the two leaves ``in_flight`` items, which
the next run reconciles by describing them before anything is re-sent.

Tasks of one run::

    heartbeat   renews the job's lease
    writer      group-commits every state change (store.GroupWriter)
    per region (fleetops.region.RegionWorker), in parallel, each with its own client and bucket:
      submitter   pending items → batches of the model's max → one task per call
      verifier    submitted items → DescribeWorkspaces 25 ids a call, when they should settle
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio

from fleetops.actions import get_action
from fleetops.aws import ClientStats, WorkSpacesClient
from fleetops.errors import CredentialsError, LeaseHeldError
from fleetops.options import JobOptions
from fleetops.planner import PlanSummary
from fleetops.region import JobContext, RegionWorker
from fleetops.states import ItemState, JobStatus
from fleetops.store import JobRecord, Store
from fleetops.store.repo import lease_owner_id
from fleetops.targets import Targets

__all__ = ["JobRunner", "RunStats", "StopSignal", "merge_summaries"]

log = logging.getLogger(__name__)

LEASE_TTL = 30.0


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


class JobRunner:
    """Runs (or resumes) one job to its end, or to a graceful stop.

    ``clients`` maps each of the job's regions to its client (a single client serves a
    single-region job).
    """

    def __init__(
        self,
        store: Store,
        clients: WorkSpacesClient | Mapping[str, WorkSpacesClient],
        job: JobRecord,
        *,
        stop: StopSignal | None = None,
        redo_in_doubt: bool = False,
    ) -> None:
        if isinstance(clients, WorkSpacesClient):
            clients = {job.region: clients}
        self.store = store
        self.clients = dict(clients)
        self.job = job
        self.stop = stop or StopSignal()
        self.redo_in_doubt = redo_in_doubt
        self.stats = RunStats()
        self.owner = lease_owner_id()
        self.writer = store.writer()
        self.plan_summary: PlanSummary | None = None
        self.ctx = JobContext(
            store=store,
            writer=self.writer,
            job=job,
            action=get_action(job.action),
            params=job.params,
            options=JobOptions.from_dict(job.options),
            targets=Targets.from_dict(job.targets),
            stop=self.stop,
            stats=self.stats,
        )
        self.workers = [
            RegionWorker(self.ctx, region, client) for region, client in clients.items()
        ]

    @property
    def client(self) -> WorkSpacesClient:
        """The first region's client."""
        return next(iter(self.clients.values()))

    def client_stats(self) -> ClientStats:
        """Calls, throttles and retries of every region, summed (for progress displays)."""
        total = ClientStats()
        for client in self.clients.values():
            total.calls += client.stats.calls
            total.throttles += client.stats.throttles
            total.retries += client.stats.retries
            total.errors_by_code.update(client.stats.errors_by_code)
        return total

    # -- the whole run ---------------------------------------------------------------------

    async def run(self) -> JobRecord:
        async with self._leased():
            async with self._services():
                status, message = await self._run_phases()
        await self.store.update_job(
            self.job.id,
            status=status,
            message=message,
            finished_at=time.time() if status is not JobStatus.INTERRUPTED else None,
        )
        self.job = await self.store.get_job(self.job.id)
        return self.job

    async def plan_only(self) -> JobRecord:
        """Plan the job (record every item) without running it; a planned job is left as is."""
        async with self._leased(), self._services():
            if self.job.planned_at is None:
                await self._plan()
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
            acted_on = sum(
                counts[state]
                for state in (
                    ItemState.PENDING,
                    ItemState.IN_FLIGHT,
                    ItemState.SUBMITTED,
                    ItemState.SUCCEEDED,
                    ItemState.FAILED,
                    ItemState.IN_DOUBT,
                )
            )
            self.ctx.budget = self.ctx.options.error_budget(acted_on)
            async with anyio.create_task_group() as tg:
                for worker in self.workers:
                    tg.start_soon(self._run_region, worker)
        except CredentialsError as exc:
            self.stop.set(f"credentials rejected ({exc.code})")
        return await self._final_status()

    async def _run_region(self, worker: RegionWorker) -> None:
        try:
            await worker.reconcile(redo_in_doubt=self.redo_in_doubt)
            await worker.execute()
        except CredentialsError as exc:
            # One region's credentials failing stops every region: the job pauses, resumable.
            self.stop.set(f"credentials rejected in {worker.region} ({exc.code})")

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
        if self.ctx.aborted:
            return JobStatus.ABORTED, (
                f"aborted: {counts[ItemState.FAILED]} failed items exceed --max-errors "
                f"{self.ctx.options.max_errors}"
            )
        if self.stop.is_set:
            renew = " (renew them first)" if "credentials" in (self.stop.reason or "") else ""
            return (
                JobStatus.INTERRUPTED,
                f"{self.stop.reason}: resume with `fleetops jobs resume {self.job.id}`{renew}",
            )
        if counts[ItemState.IN_DOUBT]:
            return JobStatus.INTERRUPTED, (
                f"{counts[ItemState.IN_DOUBT]} items in doubt await the operator: check them, then "
                f"`fleetops jobs resume {self.job.id} --redo-in-doubt` to send them again"
            )
        unfinished = counts[ItemState.PENDING] + counts[ItemState.IN_FLIGHT]
        if not self.ctx.options.no_wait:
            unfinished += counts[ItemState.SUBMITTED]
        if unfinished:
            return JobStatus.INTERRUPTED, f"{unfinished} items unfinished"
        if counts[ItemState.FAILED]:
            return JobStatus.FAILED, f"{counts[ItemState.FAILED]} items failed"
        return JobStatus.SUCCEEDED, None

    # -- plan ------------------------------------------------------------------------------

    async def _plan(self) -> None:
        """Plan every region (in parallel); ``planned_at`` is set only when all are recorded,
        so a plan cut short starts over."""
        self.stats.phase = "planning"
        await self.store.delete_items(self.job.id)
        summaries: list[PlanSummary] = []

        async def plan_region(worker: RegionWorker) -> None:
            summaries.append(await worker.plan())

        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as tg:

                async def cancel_on_stop() -> None:
                    await self.stop.event.wait()
                    scope.cancel()

                tg.start_soon(cancel_on_stop)
                async with anyio.create_task_group() as regions:
                    for worker in self.workers:
                        regions.start_soon(plan_region, worker)
                tg.cancel_scope.cancel()
        if scope.cancelled_caught or len(summaries) != len(self.workers):
            return
        self.plan_summary = merge_summaries(summaries)
        await self.store.update_job(self.job.id, planned_at=time.time())
        self.job = await self.store.get_job(self.job.id)
        self.ctx.job = self.job


def merge_summaries(summaries: list[PlanSummary]) -> PlanSummary:
    """One summary for a job planned over several regions."""
    if len(summaries) == 1:
        return summaries[0]
    merged = PlanSummary(
        action=summaries[0].action, rate=summaries[0].rate, burst=summaries[0].burst
    )
    for s in summaries:
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
