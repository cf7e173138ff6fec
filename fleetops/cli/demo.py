"""``fleetops demo``: run the demo job (:mod:`fleetops.cli.demo_job`) with progress, then show its
history."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from fleetops.cli.common import err_console, out_console, run_async, with_store

if TYPE_CHECKING:
    from collections.abc import Callable

    from fleetops.api import JobRunner, StopSignal, Store
    from fleetops.cli.demo_job import DemoRun
    from fleetops.records import JobRecord

__all__ = ["demo", "demo_app"]

demo_app = typer.Typer(add_completion=False)


@demo_app.command("demo")
def demo(
    workspaces: Annotated[int, typer.Option(help="Size of the simulated fleet.")] = 3000,
) -> None:
    """Run a realistic job against the built-in simulator, then show its history."""
    from fleetops.api import job_history
    from fleetops.cli.demo_job import DEMO_BURST, DEMO_RATE, run_demo
    from fleetops.cli.execute import execute
    from fleetops.report.text import render_job
    from fleetops.states import exit_code_for

    def ready(endpoint: str) -> None:
        err_console.print(
            f"simulator: {workspaces} WorkSpaces at {endpoint} "
            f"(quota {DEMO_RATE:g} calls/s, burst {DEMO_BURST})",
            highlight=False,
        )
        err_console.print(
            "job: reboot every AVAILABLE or UNHEALTHY WorkSpace, skipping connected users, "
            "verifying each comes back AVAILABLE",
            highlight=False,
        )

    async def use(store: Store) -> int:
        demo_run: DemoRun | None = None

        async def call(stop: StopSignal, on: Callable[[JobRunner], None]) -> JobRecord:
            nonlocal demo_run
            demo_run = await run_demo(
                store, workspaces=workspaces, stop=stop, on_start=on, on_ready=ready
            )
            return demo_run.job

        await execute(call)
        assert demo_run is not None  # execute returned: the demo ran
        job = demo_run.job
        counts = await store.counts(job.id)
        render_job(out_console, await job_history(store, job, counts))
        by_op = ", ".join(f"{n} {op}" for op, n in sorted(demo_run.calls_by_operation.items()))
        err_console.print(
            f"simulator saw {demo_run.total_calls} calls ({by_op}), {demo_run.throttled} throttled",
            highlight=False,
        )
        err_console.print(
            f"try: fleetops jobs show {job.id} · fleetops jobs items {job.id} "
            "--state failed · fleetops jobs list",
            highlight=False,
        )
        return exit_code_for(job.status, counts)

    code = run_async(lambda: with_store(use))
    # A demo with its planted failures is a success: it showed them.
    raise typer.Exit(0 if code in (0, 1) else code)
