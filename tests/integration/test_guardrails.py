"""The guardrails against the simulator: dry-run writes nothing, connected users are left alone,
stale snapshots are refused, max-errors aborts with no action call after the trip beyond those
in flight, and waves stop after a failing wave."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from engine_support import items_of, sim_client, spec_for

from fleetops.api import JobSpec, create_job, dry_run, plan_job, run_job
from fleetops.catalogue.targets import Targets
from fleetops.engine.planner import CONNECTED_REASON
from fleetops.records import ItemRecord
from fleetops.sim import Simulator
from fleetops.states import ItemState, JobStatus, exit_code_for
from fleetops.store import Store

STALE = re.compile(r"^last snapshot (\d+\.\d) h old \(> --max-snapshot-age 12\)$")


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(
        workspaces=150,
        rate=None,
        transition_seconds=0.2,
        connected_fraction=0.3,
        stale_snapshot_fraction=0.3,
    ) as running:
        yield running


def available(sim: Simulator, n: int | None = None) -> list[str]:
    ids = [i for i in sim.workspace_ids() if sim.workspace(i)["State"] == "AVAILABLE"]  # type: ignore[index]
    return ids[:n] if n else ids


async def snapshot_ages(sim: Simulator, ids: list[str]) -> dict[str, float]:
    async with sim_client(sim) as client:
        ages = {}
        for ws_id in ids:
            response = await client.describe_workspace_snapshots(WorkspaceId=ws_id)
            newest = max(s["SnapshotTime"].timestamp() for s in response["RebuildSnapshots"])
            ages[ws_id] = (time.time() - newest) / 3600
    sim.reset_stats()
    return ages


async def test_dry_run_writes_nothing_and_counts_every_call(
    sim: Simulator, store: Store, db_path: Path
) -> None:
    ids = available(sim, 40)
    summary = await dry_run(spec_for(sim, "rebuild", Targets.build(workspace_ids=ids)))
    stats = sim.stats()
    assert await store.list_jobs() == []
    assert "RebuildWorkspaces" not in stats.calls_by_operation
    assert summary.planning_calls == sum(stats.calls_by_operation.values())
    # Snapshot checks only for WorkSpaces that passed the other guardrails.
    not_connected = summary.total - summary.skipped[CONNECTED_REASON]
    assert summary.snapshot_calls == stats.calls_by_operation["DescribeWorkspaceSnapshots"]
    assert summary.snapshot_calls == not_connected
    assert summary.submit_calls == summary.eligible  # RebuildWorkspaces: 1 per call (model)
    assert summary.verify_calls == -(-summary.eligible // 25)
    assert summary.calls_needed == summary.submit_calls + summary.verify_calls
    assert summary.as_dict()["snapshot_calls"] == summary.snapshot_calls


@pytest.mark.parametrize("action", ["reboot", "stop", "rebuild", "terminate"])
async def test_connected_users_are_left_alone_by_actions_that_interrupt_them(
    sim: Simulator, store: Store, action: str
) -> None:
    ids = [i for i in available(sim) if "ALWAYS_ON" not in str(sim.workspace(i))][:30]
    spec = spec_for(sim, action, Targets.build(workspace_ids=ids), ignore_snapshot_age=True)
    job = await run_job(store, (await create_job(store, spec)).id)
    assert job.status is JobStatus.SUCCEEDED, job.message
    items = await items_of(store, job.id)
    connected = {i.workspace_id for i in items if i.reason == CONNECTED_REASON}
    assert connected and len(connected) < len(ids)
    acted = set(sim.stats().calls_by_workspace[op(action)])
    assert acted == set(ids) - connected
    for ws_id in connected:
        ws = sim.workspace(ws_id)
        assert ws is not None and ws["State"] == "AVAILABLE"


def op(action: str) -> str:
    return {
        "reboot": "RebootWorkspaces",
        "stop": "StopWorkspaces",
        "rebuild": "RebuildWorkspaces",
        "terminate": "TerminateWorkspaces",
    }[action]


@pytest.mark.parametrize("action", ["rebuild", "restore", "migrate"])
async def test_stale_snapshots_are_refused_with_the_reason(
    sim: Simulator, store: Store, action: str
) -> None:
    ids = available(sim, 40)
    ages = await snapshot_ages(sim, ids)
    stale = {i for i, age in ages.items() if age > 12}
    assert stale and len(stale) < len(ids)
    params = {}
    if action == "migrate":
        bundles = {sim.workspace(i)["BundleId"] for i in ids}  # type: ignore[index]
        params = {"to_bundle": sorted(bundles)[0]}
        ids = [i for i in ids if sim.workspace(i)["BundleId"] != params["to_bundle"]]  # type: ignore[index]
        stale &= set(ids)
    spec = spec_for(sim, action, Targets.build(workspace_ids=ids), params, include_connected=True)
    job = await run_job(store, (await create_job(store, spec)).id)
    assert job.status is JobStatus.SUCCEEDED, job.message
    items = {i.workspace_id: i for i in await items_of(store, job.id)}
    refused = {ws for ws, i in items.items() if i.reason and STALE.match(i.reason)}
    assert refused == stale
    for ws_id in refused:
        match = STALE.match(items[ws_id].reason or "")
        assert match and abs(float(match.group(1)) - ages[ws_id]) < 0.1
    stats = sim.stats()
    operation = {"rebuild": "RebuildWorkspaces", "restore": "RestoreWorkspace"}.get(
        action, "MigrateWorkspace"
    )
    assert set(stats.calls_by_workspace[operation]) == set(ids) - stale
    assert stats.calls_by_workspace["DescribeWorkspaceSnapshots"] == dict.fromkeys(ids, 1)


async def test_ignore_snapshot_age_skips_the_check_and_its_calls(
    sim: Simulator, store: Store
) -> None:
    ids = available(sim, 30)
    spec = spec_for(
        sim, "rebuild", Targets.build(workspace_ids=ids), include_connected=True, max_snapshot_age=1
    )
    summary = await dry_run(spec)
    assert summary.snapshot_calls == len(ids) and summary.eligible < len(ids)
    sim.reset_stats()
    spec = spec_for(
        sim,
        "rebuild",
        Targets.build(workspace_ids=ids),
        include_connected=True,
        ignore_snapshot_age=True,
    )
    summary = await dry_run(spec)
    assert summary.eligible == len(ids) and summary.snapshot_calls == 0
    assert "DescribeWorkspaceSnapshots" not in sim.stats().calls_by_operation


async def _planned_then_broken(
    sim: Simulator, store: Store, spec: JobSpec, broken: slice
) -> tuple[str, list[ItemRecord], list[str]]:
    """Plan, then break some of the pending WorkSpaces behind the job's back: their calls are
    refused for good (``InvalidUserConfiguration.Workspace``, a refusal of no known family)."""
    job = await plan_job(store, (await create_job(store, spec)).id)
    pending = [i for i in await items_of(store, job.id) if i.state is ItemState.PENDING]
    bad = [i.workspace_id for i in pending[broken]]
    sim.refuse(bad, "InvalidUserConfiguration.Workspace")
    sim.reset_stats()
    return job.id, pending, bad


async def test_a_state_changed_since_the_plan_is_skipped_with_the_reason(
    sim: Simulator, store: Store
) -> None:
    """The API's own answer (InvalidResourceState.Workspace, which does not say the state) says
    the WorkSpace is no longer eligible: skipped, not failed, with the state now read by one
    batched describe (not one per item)."""
    spec = spec_for(
        sim, "reboot", Targets.build(workspace_ids=available(sim, 30)), include_connected=True
    )
    job = await plan_job(store, (await create_job(store, spec)).id)
    pending = [i for i in await items_of(store, job.id) if i.state is ItemState.PENDING]
    changed = {i.workspace_id for i in pending[:4]}
    for ws_id in changed:
        sim.set_state(ws_id, "STOPPED")
    job = await run_job(store, job.id)
    items = {i.workspace_id: i for i in await items_of(store, job.id)}
    assert job.status is JobStatus.SUCCEEDED, job.message
    assert {items[w].state for w in changed} == {ItemState.SKIPPED}
    assert {items[w].reason for w in changed} == {"state changed since the plan (now STOPPED)"}
    assert {items[w].error_code for w in changed} == {None}
    others = {i.workspace_id for i in pending} - changed
    assert {items[w].state for w in others} == {ItemState.SUCCEEDED}
    assert exit_code_for(job.status, await store.counts(job.id)) == 0


async def test_max_errors_aborts_and_sends_nothing_after_the_trip(
    sim: Simulator, store: Store
) -> None:
    spec = spec_for(
        sim,
        "reboot",
        Targets.build(workspace_ids=available(sim, 110)),
        include_connected=True,
        max_errors="5",
        concurrency=2,
    )
    job_id, pending, bad = await _planned_then_broken(sim, store, spec, slice(0, 60))
    job = await run_job(store, job_id)
    counts = await store.counts(job_id)
    assert job.status is JobStatus.ABORTED
    assert exit_code_for(job.status, counts) == 3
    assert "max-errors" in (job.message or "")
    # The first batches (in flight together at most --concurrency) tripped the budget; not
    # one RebootWorkspaces call after.
    calls = sim.stats().calls_by_operation["RebootWorkspaces"]
    assert calls <= 2
    sent = set(sim.stats().calls_by_workspace["RebootWorkspaces"])
    assert set(bad[:25]) <= sent
    assert counts[ItemState.FAILED] == len(sent & set(bad)) > 5
    assert counts[ItemState.PENDING] == len(pending) - len(sent)
    assert counts[ItemState.PENDING] >= len(pending) - 50


async def test_max_errors_percentage(sim: Simulator, store: Store) -> None:
    ids = available(sim, 50)
    spec = spec_for(
        sim,
        "reboot",
        Targets.build(workspace_ids=ids),
        include_connected=True,
        max_errors="10%",
        concurrency=1,
    )
    job_id, _, _ = await _planned_then_broken(sim, store, spec, slice(0, 6))
    job = await run_job(store, job_id)
    assert (await store.counts(job_id))[ItemState.FAILED] == 6
    assert job.status is JobStatus.ABORTED, job.message  # 6 failures > 10 % of 50
    assert sim.stats().calls_by_operation["RebootWorkspaces"] == 1


async def test_waves_verify_each_wave_before_the_next_and_stop_after_a_failing_one(
    sim: Simulator, store: Store
) -> None:
    spec = spec_for(
        sim,
        "reboot",
        Targets.build(workspace_ids=available(sim, 60)),
        include_connected=True,
        waves=(5, 20, None),
        max_errors="2",
    )
    job_id, pending, bad = await _planned_then_broken(sim, store, spec, slice(10, 13))
    wave1 = {i.workspace_id for i in pending[:5]}
    wave2 = {i.workspace_id for i in pending[5:25]}
    wave3 = {i.workspace_id for i in pending[25:]}
    job = await run_job(store, job_id)
    counts = await store.counts(job_id)
    assert job.status is JobStatus.ABORTED
    assert exit_code_for(job.status, counts) == 3
    items = {i.workspace_id: i for i in await items_of(store, job_id)}
    assert {items[w].state for w in wave1} == {ItemState.SUCCEEDED}
    assert {items[w].state for w in bad} == {ItemState.FAILED}
    assert {items[w].state for w in wave3} == {ItemState.PENDING}
    rebooted = sim.stats().calls_by_workspace["RebootWorkspaces"]
    assert not set(rebooted) & wave3
    assert set(rebooted) == wave1 | wave2
    # Wave 1 was verified (AVAILABLE again) before wave 2's first call.
    events = await store.events_for(job_id)
    first_wave2 = min(
        n
        for n, e in enumerate(events)
        if e["operation"] == "RebootWorkspaces" and set(e["workspace_ids"].split()) & wave2
    )
    verified = {
        ws
        for e in events[:first_wave2]
        if e["operation"] == "DescribeWorkspaces"
        for ws in e["workspace_ids"].split()
    }
    assert wave1 <= verified
    assert all(items[w].updated_at <= events[first_wave2]["at"] for w in wave1)
