"""``fleetops worker``: take queued jobs from a shared PostgreSQL store and run them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from fleetops.cli.common import fail, print_json, resolve_db, run_async, with_store

if TYPE_CHECKING:
    from fleetops.api import Store

__all__ = ["queue_planned", "require_queue_store", "worker"]


def worker(
    concurrency: Annotated[
        int,
        typer.Option("--concurrency", min=1, max=64, help="Jobs this worker runs at once."),
    ] = 1,
    once: Annotated[
        bool, typer.Option("--once", help="Run the jobs queued now, then exit.")
    ] = False,
    lease_seconds: Annotated[
        float,
        typer.Option(
            "--lease-seconds",
            min=2.0,
            max=3600.0,
            help="A worker silent this long (killed, host gone) has its jobs taken over.",
        ),
    ] = 30.0,
    as_json: Annotated[
        bool, typer.Option("--json", help="At exit, the ids of the jobs run, as JSON.")
    ] = False,
) -> None:
    """Claim queued jobs (and jobs of workers that died) and run them; SIGTERM drains.

    Needs a PostgreSQL store (--db postgresql://USER@HOST:PORT/DB). Start as many workers, on as
    many hosts, as you like.
    """
    require_queue_store()
    from fleetops.queue.worker import WorkerConfig, serve

    config = WorkerConfig(concurrency=concurrency, once=once, lease_seconds=lease_seconds)

    async def main() -> list[str]:
        async def use(store: Store) -> list[str]:
            runtime = await serve(store, config)
            return runtime.ran

        return await with_store(use)

    ran = run_async(main)
    if as_json:
        print_json({"jobs": ran})


def require_queue_store(db: str | None = None) -> None:
    """One line and exit 2, before anything is opened or written, unless the store is
    PostgreSQL (the queue lives there)."""
    from fleetops.api import is_postgresql
    from fleetops.errors import FleetOpsError
    from fleetops.queue.tasks import QUEUE_NEEDS_POSTGRESQL

    try:
        postgresql = is_postgresql(resolve_db(db))
    except FleetOpsError as exc:
        fail(str(exc), exc.exit_code)
    if not postgresql:
        fail(QUEUE_NEEDS_POSTGRESQL)


async def queue_planned(store: Store, job_id: str, eligible: int, *, confirm_first: bool) -> int:
    """``run … --queue`` once the plan is stored and shown: confirm a destructive action (as a
    run would), then mark the job queued and put it on the queue; exit code 0."""
    from fleetops.cli.common import err_console
    from fleetops.cli.execute import confirm
    from fleetops.queue.tasks import queue_job

    job = await store.get_job(job_id)
    if confirm_first:
        confirm(
            f"queue {job.action} of {eligible} WorkSpaces?",
            refuse=f"{job.action} is destructive: pass --yes",
            declined=f"not confirmed: nothing was queued (the plan is kept: "
            f"`fleetops jobs start {job.id}` runs it)",
        )
    job = await queue_job(store, job.id)
    err_console.print(
        f"job {job.id} queued: a worker runs it (`fleetops worker`); "
        f"`fleetops jobs show {job.id}` follows it",
        highlight=False,
    )
    return 0
