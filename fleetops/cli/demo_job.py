"""The demo job: a realistic reboot against the built-in simulator.

A few thousand simulated WorkSpaces, a quota ten times AWS's default so that it finishes in
about half a minute, and a sprinkling of per-item failures and stuck reboots so that the demo
shows what a failing item looks like. The job is recorded in the given store, so its history can
be queried afterwards. ``fleetops demo`` renders it; this module only uses the API.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fleetops.api import Connection, JobSpec, create_job, run_job
from fleetops.catalogue.options import JobOptions
from fleetops.catalogue.targets import Targets
from fleetops.sim import Simulator

if TYPE_CHECKING:
    from fleetops.api import JobRunner, StopSignal, Store
    from fleetops.records import JobRecord

__all__ = ["DEMO_BURST", "DEMO_RATE", "DemoRun", "run_demo"]

DEMO_RATE = 20.0
DEMO_BURST = 50


@dataclass(frozen=True)
class DemoRun:
    """The demo's job as recorded, and what the simulator saw."""

    job: JobRecord
    calls_by_operation: dict[str, int]
    total_calls: int
    throttled: int


async def run_demo(
    store: Store,
    *,
    workspaces: int = 3000,
    stop: StopSignal | None = None,
    on_start: Callable[[JobRunner], None] | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> DemoRun:
    """Start a simulated fleet, reboot every AVAILABLE or UNHEALTHY WorkSpace in it (skipping
    connected users, verifying each comes back), and return the job. ``on_ready`` is told the
    simulator's endpoint before the job starts."""
    async with Simulator(
        workspaces=workspaces,
        rate=DEMO_RATE,
        burst=DEMO_BURST,
        latency_ms=20,
        transition_seconds=3.0,
        item_failure_rate=0.002,
        stuck_reboot_rate=0.003,
    ) as sim:
        if on_ready is not None:
            on_ready(sim.endpoint_url)
        spec = JobSpec(
            action="reboot",
            targets=Targets.build(states=["AVAILABLE", "UNHEALTHY"]),
            connection=Connection(sim.region, None, sim.endpoint_url),
            options=JobOptions(
                rate=DEMO_RATE, burst=DEMO_BURST, verify_timeout=20, max_errors="5%"
            ),
        )
        job = await create_job(store, spec)
        job = await run_job(
            store, job.id, stop=stop, credentials=("demo", "demo"), on_start=on_start
        )
        stats = sim.stats()
        return DemoRun(
            job=job,
            calls_by_operation=dict(stats.calls_by_operation),
            total_calls=stats.total_calls,
            throttled=stats.throttled,
        )
