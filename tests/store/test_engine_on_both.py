"""A whole job on each backend: the real aiobotocore client over HTTP to the simulator, the store
SQLite or PostgreSQL. The simulator's counters witness what was sent."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from engine_support import spec_for

from fleetops.api import create_job, run_job
from fleetops.sim import Simulator
from fleetops.states import ItemState, JobStatus
from fleetops.store import Store
from fleetops.store.history import job_history
from fleetops.store.timeline import timeline


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(
        workspaces=80, rate=None, transition_seconds=0.2, connected_fraction=0.1
    ) as running:
        yield running


async def test_a_reboot_job_runs_and_reads_back(sim: Simulator, store: Store) -> None:
    job = await create_job(store, spec_for(sim, "reboot", concurrency=4))
    job = await run_job(store, job.id)
    assert job.status is JobStatus.SUCCEEDED, job.message
    assert job.lease_owner is None  # released at the end
    counts = await store.counts(job.id)
    assert counts[ItemState.SUCCEEDED] + counts[ItemState.SKIPPED] == 80
    succeeded = [
        item.workspace_id
        async for page in store.iter_items(job.id, states=[ItemState.SUCCEEDED])
        for item in page
    ]
    reboots = sim.stats().calls_by_workspace["RebootWorkspaces"]
    assert sorted(reboots) == sorted(succeeded) and set(reboots.values()) == {1}
    history = await job_history(store, job)
    calls = sum(sim.stats().calls_by_operation.values())
    assert history.total == 80 and 0 < history.api_calls <= calls
    slices = await timeline(store, job.id)
    assert sum(s.calls for s in slices.slices) == history.api_calls
