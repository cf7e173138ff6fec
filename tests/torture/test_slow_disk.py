"""A slow commit: the write that marks the last (partial) batch ``in_flight`` is 300 ms slower
than the others (a busy volume, a busy event loop). Durability must not turn into duplication: an
item handed to a batch whose in-flight commit has not landed yet must not go into a second batch.

In-process (the engine's Python API over real HTTP to the simulator and a real SQLite file): the
delay is injected around ``fleetops.store.repo.GroupWriter.write``. The same duplication shows in
about half of plain CLI runs with 100 ms of API latency (the last partial batch sent twice).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import anyio
import pytest

import fleetops.store.repo as repo
from fleetops.api import JobSpec, create_job, run_job
from fleetops.aws.client import Connection
from fleetops.catalogue.options import JobOptions
from fleetops.catalogue.targets import Targets
from fleetops.sim import Simulator
from fleetops.states import ItemState, JobStatus
from fleetops.store import Store

BATCH = 25


@pytest.fixture
def slow_in_flight_commits(monkeypatch: pytest.MonkeyPatch) -> None:
    original = repo.GroupWriter.write

    async def slow(self: Any, updates: Sequence[Any], *rest: Any) -> Any:
        if any(
            getattr(u, "state", None) is ItemState.IN_FLIGHT and len(u.ids) < BATCH for u in updates
        ):
            await anyio.sleep(0.3)
        return await original(self, updates, *rest)

    monkeypatch.setattr(repo.GroupWriter, "write", slow)


@pytest.mark.usefixtures("slow_in_flight_commits")
async def test_slow_commits_never_send_an_action_twice(store: Store) -> None:
    async with Simulator(
        workspaces=200, seed=7, rate=None, latency_ms=30, transition_seconds=0.2
    ) as sim:
        spec = JobSpec(
            action="reboot",
            targets=Targets(),
            connection=Connection("us-east-1", None, sim.endpoint_url),
            options=JobOptions(rate=None, concurrency=4),
        )
        job = await create_job(store, spec)
        job = await run_job(store, job.id)
        reboots = sim.stats().calls_by_workspace["RebootWorkspaces"]
    assert job.status is JobStatus.SUCCEEDED, job.message
    twice = {ws: n for ws, n in reboots.items() if n > 1}
    assert not twice, f"{len(twice)} WorkSpaces rebooted more than once in a clean run"
