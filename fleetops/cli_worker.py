"""``fleetops worker``: take queued jobs from a shared PostgreSQL store and run them."""

from __future__ import annotations

from typing import Annotated

import typer

from fleetops.cli_common import print_json, run_async, with_store

__all__ = ["worker"]


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

    Needs a PostgreSQL store (--db postgresql://USER@HOST:PORT/DB); start as many workers, on
    as many hosts, as you like.
    """
    from fleetops.store import Store
    from fleetops.worker import WorkerConfig, serve

    config = WorkerConfig(concurrency=concurrency, once=once, lease_seconds=lease_seconds)

    async def main() -> list[str]:
        async def use(store: Store) -> list[str]:
            runtime = await serve(store, config)
            return runtime.ran

        return await with_store(use)

    ran = run_async(main)
    if as_json:
        print_json({"jobs": ran})
