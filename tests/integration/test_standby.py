"""Standby WorkSpaces are never picked by a selector: a directory-wide start or stop and an
idle-days terminate leave them untouched while their primaries are acted on; named by id, or
with ``--include-standby``, they are acted on."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from engine_support import items_of, sim_client, spec_for

from fleetops.api import create_job, run_job
from fleetops.catalogue.targets import Targets
from fleetops.records import ItemRecord
from fleetops.sim import Simulator
from fleetops.states import ItemState, JobStatus
from fleetops.store import Store


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(
        workspaces=80, rate=None, transition_seconds=0.1, directories=2, connected_fraction=0.0
    ) as running:
        yield running


def in_directory(sim: Simulator, directory: str, state: str) -> list[str]:
    out = []
    for ws_id in sim.workspace_ids():
        ws = sim.workspace(ws_id)
        assert ws is not None
        if (
            ws["DirectoryId"] == directory
            and ws["State"] == state
            and ws["WorkspaceProperties"]["RunningMode"] == "AUTO_STOP"
            and "RelatedWorkspaces" not in ws
        ):
            out.append(ws_id)
    return out


def directory_of(sim: Simulator) -> str:
    ws = sim.workspace(sim.workspace_ids()[0])
    assert ws is not None
    return str(ws["DirectoryId"])


async def run(store: Store, sim: Simulator, action: str, targets: Targets, **kw: Any) -> Any:
    job = await run_job(store, (await create_job(store, spec_for(sim, action, targets, **kw))).id)
    items = {i.workspace_id: i for i in await items_of(store, job.id)}
    return job, items


def reasons(items: dict[str, ItemRecord], ids: list[str]) -> set[str | None]:
    return {items[w].reason for w in ids}


async def test_directory_wide_start_skips_standbys_and_starts_their_primaries(
    sim: Simulator, store: Store
) -> None:
    directory = directory_of(sim)
    primaries = in_directory(sim, directory, "STOPPED")[:3]
    standbys = [sim.add_standby(p) for p in primaries]  # kept STOPPED, like their primaries
    sim.reset_stats()
    job, items = await run(store, sim, "start", Targets.build(directory_id=directory))
    assert job.status is JobStatus.SUCCEEDED, job.message
    assert {items[p].state for p in primaries} == {ItemState.SUCCEEDED}
    assert {items[s].state for s in standbys} == {ItemState.SKIPPED}
    assert reasons(items, standbys) == {
        f"standby of {p} (use --include-standby)" for p in primaries
    }
    started = sim.stats().calls_by_workspace["StartWorkspaces"]
    assert set(primaries) <= set(started) and not set(standbys) & set(started)
    assert {sim.workspace(s)["State"] for s in standbys} == {"STOPPED"}  # type: ignore[index]


async def test_directory_wide_stop_skips_an_available_standby(sim: Simulator, store: Store) -> None:
    directory = directory_of(sim)
    primaries = in_directory(sim, directory, "AVAILABLE")[:2]
    standbys = [sim.add_standby(p) for p in primaries]
    for standby in standbys:
        sim.set_state(standby, "AVAILABLE")  # a standby in use after a failover test
    sim.reset_stats()
    job, items = await run(
        store, sim, "stop", Targets.build(directory_id=directory), include_connected=True
    )
    assert job.status is JobStatus.SUCCEEDED, job.message
    assert {items[p].state for p in primaries} == {ItemState.SUCCEEDED}
    assert {items[s].state for s in standbys} == {ItemState.SKIPPED}
    stopped = sim.stats().calls_by_workspace["StopWorkspaces"]
    assert not set(standbys) & set(stopped)
    assert {sim.workspace(s)["State"] for s in standbys} == {"AVAILABLE"}  # type: ignore[index]


async def test_idle_days_terminate_leaves_standbys(sim: Simulator, store: Store) -> None:
    directory = directory_of(sim)
    candidates = in_directory(sim, directory, "AVAILABLE")
    async with sim_client(sim) as client:
        status = await client.describe_workspaces_connection_status(WorkspaceIds=candidates[:25])
    horizon = time.time() - 30 * 86400
    idle = [
        s["WorkspaceId"]
        for s in status["WorkspacesConnectionStatus"]
        if s.get("LastKnownUserConnectionTimestamp") is None
        or s["LastKnownUserConnectionTimestamp"].timestamp() <= horizon
    ]
    assert idle, "the generated fleet has idle WorkSpaces"
    primaries = idle[:2]
    standbys = [sim.add_standby(p) for p in primaries]  # never connected: "idle" forever
    sim.reset_stats()
    job, items = await run(
        store, sim, "terminate", Targets.build(directory_id=directory, idle_days=30)
    )
    assert job.status is JobStatus.SUCCEEDED, job.message
    assert {items[p].state for p in primaries} == {ItemState.SUCCEEDED}
    assert {items[s].state for s in standbys} == {ItemState.SKIPPED}
    assert all(sim.workspace(s) is not None for s in standbys)
    assert not set(standbys) & set(sim.stats().calls_by_workspace["TerminateWorkspaces"])


async def test_a_standby_named_by_id_or_with_include_standby_is_acted_on(
    sim: Simulator, store: Store
) -> None:
    directory = directory_of(sim)
    primaries = in_directory(sim, directory, "STOPPED")[:2]
    standbys = [sim.add_standby(p) for p in primaries]
    job, items = await run(store, sim, "start", Targets.build(workspace_ids=standbys[:1]))
    assert job.status is JobStatus.SUCCEEDED, job.message
    assert items[standbys[0]].state is ItemState.SUCCEEDED
    job, items = await run(
        store, sim, "start", Targets.build(directory_id=directory), include_standby=True
    )
    assert job.status is JobStatus.SUCCEEDED, job.message
    assert items[standbys[1]].state is ItemState.SUCCEEDED
