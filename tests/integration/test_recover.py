"""``recover`` end to end against the simulator (real HTTP, real SQLite): the ladder climbed
one rung at a time per WorkSpace, as the simulator counted the calls per WorkSpace and
operation, and each item's steps as recorded."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
from engine_support import items_of, sim_client, spec_for

from fleetops.api import create_job, run_job
from fleetops.catalogue.targets import Targets
from fleetops.sim import Simulator
from fleetops.sim._health import heals
from fleetops.states import ItemState, JobStatus, exit_code_for
from fleetops.store import Store

SEED = 7
UNHEALTHY = 16


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(
        workspaces=48,
        seed=SEED,
        rate=None,
        transition_seconds=0.6,
        connected_fraction=0.0,
        stale_snapshot_fraction=0.0,
    ) as running:
        running.configure(reboot_heal_fraction=0.5, restore_heal_fraction=0.5)
        yield running


def make_unhealthy(sim: Simulator, count: int) -> list[str]:
    """The first ``count`` WorkSpaces made UNHEALTHY, every other one AVAILABLE."""
    ids = sim.workspace_ids()
    for ws_id in ids:
        sim.set_state(ws_id, "AVAILABLE")
    chosen = ids[:count]
    for ws_id in chosen:
        sim.set_state(ws_id, "UNHEALTHY")
    return chosen


def calls(sim: Simulator, operation: str) -> dict[str, int]:
    return dict(sim.stats().calls_by_workspace.get(operation, {}))


async def test_recover_climbs_only_while_not_available(store: Store, sim: Simulator) -> None:
    unhealthy = make_unhealthy(sim, UNHEALTHY)
    still_after_reboot = [w for w in unhealthy if not heals(SEED, w, "RebootWorkspaces", 0.5)]
    rebuilt = [w for w in still_after_reboot if not heals(SEED, w, "RestoreWorkspace", 0.5)]
    assert still_after_reboot and rebuilt and len(rebuilt) < len(still_after_reboot)
    sim.reset_stats()

    spec = spec_for(sim, "recover", Targets(states=("UNHEALTHY",)), params={"settle": 30})
    job = await run_job(store, (await create_job(store, spec)).id)

    assert job.status is JobStatus.SUCCEEDED, job.message
    # Every UNHEALTHY WorkSpace rebooted once; exactly those still unhealthy restored once;
    # exactly the rest rebuilt once; none healthy touched.
    assert calls(sim, "RebootWorkspaces") == dict.fromkeys(unhealthy, 1)
    assert calls(sim, "RestoreWorkspace") == dict.fromkeys(still_after_reboot, 1)
    assert calls(sim, "RebuildWorkspaces") == dict.fromkeys(rebuilt, 1)
    for ws_id in sim.workspace_ids():
        assert sim.workspace(ws_id)["State"] == "AVAILABLE"  # type: ignore[index]

    items = {item.workspace_id: item for item in await items_of(store, job.id)}
    assert set(items) == set(unhealthy)
    assert {item.state for item in items.values()} == {ItemState.SUCCEEDED}
    steps = await store.item_steps(job.id)
    by_ws: dict[str, list[tuple[str, str | None]]] = {}
    ws_of = {item.id: item.workspace_id for item in items.values()}
    for step in steps:
        by_ws.setdefault(ws_of[step.item_id], []).append((step.action, step.outcome))
    for ws_id in unhealthy:
        expected = [("reboot", "succeeded")]
        if ws_id in still_after_reboot:
            expected = [("reboot", "failed"), ("restore", "succeeded")]
        if ws_id in rebuilt:
            expected = [("reboot", "failed"), ("restore", "failed"), ("rebuild", "succeeded")]
        assert by_ws[ws_id] == expected, ws_id
    assert all(s.finished_at is not None and s.attempts == 1 for s in steps)


async def test_a_shorter_ladder_stops_at_its_last_rung(store: Store, sim: Simulator) -> None:
    unhealthy = make_unhealthy(sim, UNHEALTHY)
    still = [w for w in unhealthy if not heals(SEED, w, "RebootWorkspaces", 0.5)]
    sim.reset_stats()
    spec = spec_for(sim, "recover", Targets(states=("UNHEALTHY",)), params={"ladder": ["reboot"]})
    job = await run_job(store, (await create_job(store, spec)).id)

    assert job.status is JobStatus.FAILED
    assert calls(sim, "RebootWorkspaces") == dict.fromkeys(unhealthy, 1)
    assert calls(sim, "RestoreWorkspace") == {} and calls(sim, "RebuildWorkspaces") == {}
    counts = await store.counts(job.id)
    assert counts["failed"] == len(still)
    assert counts["succeeded"] == len(unhealthy) - len(still)


async def _stale(sim: Simulator, ids: list[str], hours: float) -> set[str]:
    """The WorkSpaces whose last snapshot is older than ``hours``, as the API tells."""
    stale = set()
    async with sim_client(sim) as client:
        for ws_id in ids:
            answer = await client.describe_workspace_snapshots(WorkspaceId=ws_id)
            newest = max(s["SnapshotTime"] for s in answer["RestoreSnapshots"])
            if time.time() - newest.timestamp() > hours * 3600:
                stale.add(ws_id)
    return stale


async def test_stale_snapshots_skip_the_destructive_rungs(store: Store) -> None:
    async with Simulator(
        workspaces=48,
        seed=SEED,
        rate=None,
        transition_seconds=0.6,
        connected_fraction=0.0,
        stale_snapshot_fraction=0.5,  # half the last snapshots 12 to 72 h old
    ) as sim:
        sim.configure(reboot_heal_fraction=0.3, restore_heal_fraction=0.5)
        unhealthy = make_unhealthy(sim, UNHEALTHY)
        still = [w for w in unhealthy if not heals(SEED, w, "RebootWorkspaces", 0.3)]
        stale = await _stale(sim, still, 12)
        fresh = [w for w in still if w not in stale]
        rebuilt = [w for w in fresh if not heals(SEED, w, "RestoreWorkspace", 0.5)]
        assert stale and fresh and rebuilt
        sim.reset_stats()
        spec = spec_for(
            sim,
            "recover",
            Targets(states=("UNHEALTHY",)),
            params={"settle": 30},
            max_snapshot_age=12,
        )
        job = await run_job(store, (await create_job(store, spec)).id)
        counted = [calls(sim, op) for op in ("RebootWorkspaces", "RestoreWorkspace")]
        counted.append(calls(sim, "RebuildWorkspaces"))

    # Stale ones skip both destructive rungs; the fresh ones climb as ever.
    assert counted == [
        dict.fromkeys(unhealthy, 1),
        dict.fromkeys(fresh, 1),
        dict.fromkeys(rebuilt, 1),
    ]
    items = {item.workspace_id: item for item in await items_of(store, job.id)}
    for ws_id in stale:
        assert items[ws_id].state is ItemState.SKIPPED
        assert "rebuild skipped: last snapshot" in (items[ws_id].reason or "")
    ws_of = {item.id: item.workspace_id for item in items.values()}
    steps = await store.item_steps(job.id)
    for ws_id in stale:
        mine = [(s.action, s.outcome) for s in steps if ws_of[s.item_id] == ws_id]
        assert mine == [("reboot", "failed"), ("restore", "skipped"), ("rebuild", "skipped")]


async def test_failures_that_climb_are_no_errors_of_the_budget(
    store: Store, sim: Simulator
) -> None:
    """--max-errors 0: WorkSpaces that a reboot and a restore did not heal climb on, and the
    rebuild heals them; none ended failed, so nothing aborts."""
    unhealthy = make_unhealthy(sim, UNHEALTHY)
    assert [w for w in unhealthy if not heals(SEED, w, "RebootWorkspaces", 0.5)]
    spec = spec_for(
        sim, "recover", Targets(states=("UNHEALTHY",)), params={"settle": 30}, max_errors="0"
    )
    job = await run_job(store, (await create_job(store, spec)).id)
    assert job.status is JobStatus.SUCCEEDED, job.message
    assert (await store.counts(job.id))["succeeded"] == len(unhealthy)


async def test_a_refused_rung_ends_the_climb_and_the_budget_aborts_before_the_next_rung(
    store: Store, sim: Simulator
) -> None:
    """A reboot refused (not a state the WorkSpace was in: its request) ends that WorkSpace's
    climb failed: a heavier rung is no remedy, and it counts at once. Three of them over
    --max-errors 1 abort the job on the reboot rung: no restore, no rebuild anywhere; those the
    reboot did not heal wait, pending on their next rung, not failed."""
    unhealthy = make_unhealthy(sim, UNHEALTHY)
    refused = unhealthy[:3]
    sim.refuse(refused, "InvalidUserConfiguration.Workspace")
    not_healed = [w for w in unhealthy[3:] if not heals(SEED, w, "RebootWorkspaces", 0.5)]
    assert not_healed
    sim.reset_stats()
    spec = spec_for(
        sim, "recover", Targets(states=("UNHEALTHY",)), params={"settle": 30}, max_errors="1"
    )
    job = await run_job(store, (await create_job(store, spec)).id)

    assert job.status is JobStatus.ABORTED, job.message
    assert exit_code_for(job.status, await store.counts(job.id)) == 3
    assert calls(sim, "RestoreWorkspace") == {} and calls(sim, "RebuildWorkspaces") == {}
    items = {item.workspace_id: item for item in await items_of(store, job.id)}
    assert {w for w, i in items.items() if i.state is ItemState.FAILED} == set(refused)
    assert {w for w, i in items.items() if i.state is ItemState.PENDING} == set(not_healed)
    ws_of = {item.id: item.workspace_id for item in items.values()}
    steps: dict[str, list[tuple[str, str | None]]] = {}
    for step in await store.item_steps(job.id):
        steps.setdefault(ws_of[step.item_id], []).append((step.action, step.outcome))
    for ws_id in refused:
        assert steps[ws_id] == [("reboot", "failed")]
    for ws_id in not_healed:
        assert steps[ws_id] == [("reboot", "failed"), ("restore", None)]
