"""``fleetops demo``: a realistic job against the built-in simulator, then its history.

A few thousand simulated WorkSpaces, a quota ten times AWS's default so that it finishes in
about half a minute, and a sprinkling of per-item failures and stuck reboots so that the demo
shows what a failing item looks like. The job is recorded in the normal database, so
``fleetops jobs list`` and ``jobs show`` work on it afterwards.
"""

from __future__ import annotations

from fleetops.api import JobSpec, create_job
from fleetops.aws import Connection
from fleetops.cli_common import err_console, out_console, run_async, with_store
from fleetops.options import JobOptions
from fleetops.sim import Simulator
from fleetops.states import exit_code_for
from fleetops.store import Store
from fleetops.targets import Targets

__all__ = ["run_demo"]

DEMO_RATE = 20.0
DEMO_BURST = 50


def run_demo(*, workspaces: int = 3000) -> int:
    """Run the demo; returns the job's exit code."""

    async def go() -> int:
        from fleetops.cli import execute
        from fleetops.report import render_job
        from fleetops.store.history import job_history

        async with Simulator(
            workspaces=workspaces,
            rate=DEMO_RATE,
            burst=DEMO_BURST,
            latency_ms=20,
            transition_seconds=3.0,
            item_failure_rate=0.002,
            stuck_reboot_rate=0.003,
        ) as sim:
            err_console.print(
                f"simulator: {workspaces} WorkSpaces at {sim.endpoint_url} "
                f"(quota {DEMO_RATE:g} calls/s, burst {DEMO_BURST})",
                highlight=False,
            )
            spec = JobSpec(
                action="reboot",
                targets=Targets.build(states=["AVAILABLE", "UNHEALTHY"]),
                connection=Connection(sim.region, None, sim.endpoint_url),
                options=JobOptions(
                    rate=DEMO_RATE, burst=DEMO_BURST, verify_timeout=20, max_errors="5%"
                ),
            )
            err_console.print(
                "job: reboot every AVAILABLE or UNHEALTHY WorkSpace, skipping connected users, "
                "verifying each comes back AVAILABLE",
                highlight=False,
            )

            async def use(store: Store) -> int:
                job = await create_job(store, spec)
                job = await execute(store, job.id, credentials=("demo", "demo"))
                counts = await store.counts(job.id)
                history = await job_history(store, job, counts)
                render_job(out_console, history)
                stats = sim.stats()
                by_op = ", ".join(f"{n} {op}" for op, n in sorted(stats.calls_by_operation.items()))
                err_console.print(
                    f"simulator saw {stats.total_calls} calls ({by_op}), "
                    f"{stats.throttled} throttled",
                    highlight=False,
                )
                err_console.print(
                    f"try: fleetops jobs show {job.id} · fleetops jobs items {job.id} "
                    "--state failed · fleetops jobs list",
                    highlight=False,
                )
                return exit_code_for(job.status, counts)

            return await with_store(use)

    code = run_async(go)
    # A demo with its planted failures is a success: it showed them.
    return 0 if code in (0, 1) else code
