"""Workers: processes on any host that take queued jobs and run them to their end.

``fleetops worker`` runs a procrastinate worker (:mod:`fleetops.queue.tasks`) whose one task resumes
a fleetops job by id with the ordinary runner. What each layer guarantees:

* procrastinate hands each queue entry to one worker (``FOR UPDATE SKIP LOCKED``), runs up to
  ``--concurrency`` of them at once, and records a heartbeat per worker. A worker that stops
  heartbeating for ``--lease-seconds`` (SIGKILL, a host gone) is *stalled*: every live worker
  sweeps once a second and puts a stalled worker's entries back on the queue, where another
  worker claims them.
* The fleetops job lease (owner ``host:pid:token``, renewed by the runner every third of its
  life) makes sure only one runner acts on a job: the new worker waits until the dead one's
  lease has expired (at once when the dead process was on the same host), then resumes the job
  by the resume rule — ``in_flight`` items are described before anything is re-sent, and a
  destructive call without evidence is held ``in_doubt``.
* SIGTERM (or Ctrl-C) drains: no new claims, each running job stops taking batches, calls in
  flight finish, the job is recorded ``interrupted`` and put back on the queue for another
  worker; then the worker exits. A second signal stops without waiting for calls in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass

import anyio
import procrastinate

from fleetops import api
from fleetops.engine.runner import StopSignal
from fleetops.errors import AwaitsApprovalError, FleetOpsError, LeaseHeldError
from fleetops.queue.tasks import (
    QUEUE,
    TASK,
    build_app,
    conninfo,
    enqueue,
    ensure_schema,
    require_postgresql,
    waiting_job_ids,
)
from fleetops.states import ENDED_STATUSES, JobStatus
from fleetops.store import Store, lease_owner_id

__all__ = ["DRAIN_REASON", "WorkerConfig", "WorkerRuntime", "serve"]

log = logging.getLogger(__name__)

DRAIN_REASON = "worker stopping (SIGTERM)"
#: Statuses a worker leaves alone: the job has ended.
ENDED = ENDED_STATUSES
#: How often each worker looks for stalled workers' jobs.
RECOVER_INTERVAL = 1.0
#: How often each worker puts ``queued`` jobs missing from the queue (a crash of `run --queue`
#: between its two writes) back on it.
SWEEP_INTERVAL = 10.0


@dataclass(frozen=True)
class WorkerConfig:
    concurrency: int = 1
    once: bool = False  # take what is queued now, then exit
    lease_seconds: float = 30.0  # a dead worker's jobs are taken over after this long
    schedule_interval: float = 5.0  # how often due schedules are queued (0: this worker never)


class WorkerRuntime:
    """What the queue's task runs with, one per worker process."""

    def __init__(self, store: Store, app: procrastinate.App, config: WorkerConfig) -> None:
        self.store = store
        self.app = app
        self.config = config
        self.draining = False
        self.hard = False
        self._stops: set[StopSignal] = set()
        self.ran: list[str] = []  # job ids this worker ran (for --once's summary)

    def drain(self) -> None:
        """Stop every running job gracefully; they go back on the queue."""
        self.draining = True
        for stop in self._stops:
            stop.set(DRAIN_REASON)

    def stop_hard(self) -> None:
        self.drain()
        self.hard = True
        for stop in self._stops:
            stop.set_hard()

    async def run(self, job_id: str) -> None:
        """The task: run ``job_id`` once its lease is free; requeue it if this worker drains."""
        lease = self.config.lease_seconds
        give_up = time.monotonic() + 2 * lease + 5
        while True:
            job = await self.store.get_job(job_id)
            if job.status in ENDED:
                log.info("job %s is %s: nothing to run", job.id, job.status.value)
                return
            if self.draining:
                await self._requeue(job.id, "this worker is stopping")
                return
            stop = StopSignal()
            self._stops.add(stop)
            try:
                log.info("job %s: claimed (was %s)", job.id, job.status.value)
                # run_job shares each account-region's quota with the other runners
                job = await api.run_job(self.store, job.id, stop=stop, wait_window=False)
            except LeaseHeldError:
                held = await self.store.get_job(job_id)
                if time.monotonic() > give_up:
                    # Its holder keeps renewing: alive (a CLI resume, a slow worker). Look again
                    # later; if it dies meanwhile, this entry takes the job over.
                    await self._requeue(job_id, f"still held by {held.lease_owner}", delay=lease)
                    return
                wait = (held.lease_expires_at or time.time()) - time.time() + 0.1
                log.info(
                    "job %s: lease held by %s; taking over in %.1f s if it is not renewed",
                    job_id,
                    held.lease_owner,
                    max(wait, 0.2),
                )
                await anyio.sleep(min(max(wait, 0.2), lease))
                continue
            except AwaitsApprovalError as exc:  # the plan stays as it is, until approved
                log.error("job %s: %s", job_id, exc)
                return
            except FleetOpsError as exc:
                log.error("job %s: %s", job_id, exc)
                await self.store.update_job(
                    job_id, status=JobStatus.INTERRUPTED, message=f"worker: {exc}"
                )
                return
            finally:
                self._stops.discard(stop)
            self.ran.append(job.id)
            log.info("job %s: %s", job.id, job.status.value)
            if job.status is JobStatus.INTERRUPTED and stop.reason == DRAIN_REASON:
                await self._requeue(job.id, "this worker is stopping")
            if job.status is JobStatus.WAITING:  # for its next window (schedule_in)
                opening = job.next_window_at or time.time()
                await self._requeue(
                    job.id, "outside its maintenance window", delay=max(opening - time.time(), 0)
                )
            return

    async def _requeue(self, job_id: str, why: str, *, delay: float = 0.0) -> None:
        with anyio.CancelScope(shield=True):
            await enqueue(self.app, job_id, delay=delay)
        log.info("job %s: back on the queue (%s)", job_id, why)

    async def recover_stalled(self) -> int:
        """Put the jobs of workers that stopped heartbeating back on the queue."""
        stalled = await self.app.job_manager.get_stalled_jobs(
            queue=QUEUE, task_name=TASK, seconds_since_heartbeat=self.config.lease_seconds
        )
        retried = 0
        for entry in stalled:
            try:
                await self.app.job_manager.retry_job(entry)
            except procrastinate.exceptions.ConnectorException:
                continue  # another worker retried it first
            retried += 1
            log.info(
                "job %s: its worker stopped heartbeating; back on the queue for takeover",
                entry.task_kwargs.get("job_id"),
            )
        return retried

    async def sweep_queued(self) -> int:
        """Queue ``queued`` jobs that have no queue entry (a crash between the two writes)."""
        waiting = await waiting_job_ids(self.app)
        added = 0
        for job in await self.store.list_jobs(status=JobStatus.QUEUED.value, limit=500):
            if job.id not in waiting and await enqueue(self.app, job.id):
                added += 1
                log.info("job %s: queued but missing from the queue; added", job.id)
        return added


async def _maintain(runtime: WorkerRuntime) -> None:
    last_sweep = 0.0
    while True:
        try:
            await runtime.recover_stalled()
            if time.monotonic() - last_sweep >= SWEEP_INTERVAL:
                last_sweep = time.monotonic()
                await runtime.sweep_queued()
        except Exception as exc:  # the database away for a moment: try again next round
            log.warning("worker maintenance failed: %s", exc)
        await anyio.sleep(RECOVER_INTERVAL)


def worker_options(config: WorkerConfig, name: str, runtime: WorkerRuntime) -> dict[str, object]:
    lease = config.lease_seconds
    return {
        "queues": [QUEUE],
        "name": name,
        "concurrency": config.concurrency,
        "wait": not config.once,
        "install_signal_handlers": False,
        "additional_context": {"fleetops": runtime},
        "update_heartbeat_interval": max(0.5, lease / 3),
        "stalled_worker_timeout": lease,
        "fetch_job_polling_interval": min(5.0, max(0.5, lease / 5)),
        "abort_job_polling_interval": 5.0,
        "delete_jobs": "successful",
    }


async def serve(store: Store, config: WorkerConfig) -> WorkerRuntime:
    """Run a worker until it is stopped by a signal (or, with ``once``, the queue is empty)."""
    require_postgresql(store)
    _set_lease_ttl(config.lease_seconds)
    # procrastinate's listener is cancelled on shutdown; psycopg warns about that, needlessly.
    logging.getLogger("psycopg").setLevel(logging.ERROR)
    dsn = conninfo(store)
    await ensure_schema(dsn)
    app = build_app(dsn, pool_size=config.concurrency + 4)
    runtime = WorkerRuntime(store, app, config)
    name = lease_owner_id()
    async with app.open_async():
        await runtime.recover_stalled()
        await runtime.sweep_queued()
        log.info(
            "worker %s: concurrency %d, lease %g s%s",
            name,
            config.concurrency,
            config.lease_seconds,
            ", until the queue is empty" if config.once else "",
        )
        work = asyncio.ensure_future(
            app.run_worker_async(**worker_options(config, name, runtime))  # type: ignore[arg-type]
        )
        with _signals(runtime, work):
            async with anyio.create_task_group() as tg:
                if not config.once:
                    tg.start_soon(_maintain, runtime)
                if not config.once and config.schedule_interval > 0:
                    from fleetops.queue.schedules import run_schedules

                    tg.start_soon(
                        lambda: run_schedules(store, app, interval=config.schedule_interval)
                    )
                with contextlib.suppress(asyncio.CancelledError):
                    await work
                tg.cancel_scope.cancel()
    log.info("worker %s: stopped", name)
    return runtime


@contextlib.contextmanager
def _signals(runtime: WorkerRuntime, work: asyncio.Future[None]) -> Iterator[None]:
    """SIGTERM / SIGINT: drain (no new claims, running jobs stop gracefully and are requeued);
    a second one: stop without waiting for calls in flight."""
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        if runtime.draining:
            log.warning("second %s: stopping now", signal.Signals(signum).name)
            runtime.stop_hard()
            return
        log.info(
            "%s: draining (no new jobs; running ones stop and go back on the queue)",
            signal.Signals(signum).name,
        )
        runtime.drain()
        work.cancel()  # procrastinate stops fetching and waits for the running jobs

    installed = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, on_signal, signum)
            installed.append(signum)
    try:
        yield None
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)


def _set_lease_ttl(seconds: float) -> None:
    """The runner's job lease lasts ``--lease-seconds`` in a worker process."""
    import fleetops.engine.runner

    fleetops.engine.runner.LEASE_TTL = seconds
