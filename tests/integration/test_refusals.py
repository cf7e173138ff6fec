"""Refused items by family, on the simulator over HTTP (its refusal codes are dotted, as the
field sees them): a state changed since the plan and a WorkSpace gone since the plan are
skipped with the reason, an operation in progress is tried again shortly, anything else fails
with the code as the API gave it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from engine_support import items_of, sim_client, spec_for

from fleetops.api import create_job, plan_job, run_job
from fleetops.catalogue.targets import Targets
from fleetops.records import ItemRecord
from fleetops.sim import Simulator
from fleetops.states import ItemState, JobStatus, exit_code_for
from fleetops.store import Store


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(
        workspaces=120, rate=None, transition_seconds=0.2, stale_snapshot_fraction=0.0
    ) as running:
        yield running


def pick(sim: Simulator, n: int, state: str = "AVAILABLE", mode: str = "AUTO_STOP") -> list[str]:
    out = []
    for ws_id in sim.workspace_ids():
        ws = sim.workspace(ws_id)
        assert ws is not None
        if ws["State"] == state and ws["WorkspaceProperties"]["RunningMode"] == mode:
            out.append(ws_id)
    assert len(out) >= n
    return out[:n]


async def planned(store: Store, sim: Simulator, action: str, ids: list[str], **kw: Any) -> str:
    params = kw.pop("params", None)
    spec = spec_for(sim, action, Targets.build(workspace_ids=ids), params, **kw)
    job = await plan_job(store, (await create_job(store, spec)).id)
    assert (await store.counts(job.id))[ItemState.PENDING] == len(ids)
    return job.id


async def by_ws(store: Store, job_id: str) -> dict[str, ItemRecord]:
    return {i.workspace_id: i for i in await items_of(store, job_id)}


async def test_gone_since_the_plan_is_skipped(sim: Simulator, store: Store) -> None:
    ids = pick(sim, 10)
    job_id = await planned(store, sim, "reboot", ids, include_connected=True)
    gone = ids[:3]
    async with sim_client(sim) as client:
        await client.terminate_workspaces(
            TerminateWorkspaceRequests=[{"WorkspaceId": ws} for ws in gone]
        )
    deadline = time.monotonic() + 5
    while any(sim.workspace(ws) for ws in gone) and time.monotonic() < deadline:
        await anyio.sleep(0.05)
    sim.reset_stats()
    job = await run_job(store, job_id)
    items = await by_ws(store, job_id)
    assert job.status is JobStatus.SUCCEEDED, job.message
    assert {items[w].reason for w in gone} == {"gone since the plan"}
    assert {items[w].state for w in gone} == {ItemState.SKIPPED}
    assert {items[w].state for w in ids[3:]} == {ItemState.SUCCEEDED}
    assert exit_code_for(job.status, await store.counts(job_id)) == 0
    # The dotted code said "the WorkSpace" was not found: no describe needed to judge it.
    assert sim.stats().calls_by_operation["RebootWorkspaces"] == 1


async def test_state_refusal_of_a_one_workspace_call_names_the_state_now(
    sim: Simulator, store: Store
) -> None:
    ids = pick(sim, 3)
    job_id = await planned(
        store, sim, "modify", ids, params={"compute_type": "POWER"}, include_connected=True
    )
    sim.set_state(ids[0], "ERROR")
    job = await run_job(store, job_id)
    items = await by_ws(store, job_id)
    assert job.status is JobStatus.SUCCEEDED, job.message
    assert (items[ids[0]].state, items[ids[0]].reason) == (
        ItemState.SKIPPED,
        "state changed since the plan (now ERROR)",
    )
    assert {items[w].state for w in ids[1:]} == {ItemState.SUCCEEDED}


async def test_a_refusal_of_no_known_family_fails_with_the_code_as_given(
    sim: Simulator, store: Store
) -> None:
    ids = pick(sim, 6)
    job_id = await planned(store, sim, "reboot", ids, include_connected=True)
    sim.refuse(ids[:2], "InvalidUserConfiguration.Workspace")
    job = await run_job(store, job_id)
    items = await by_ws(store, job_id)
    assert job.status is JobStatus.FAILED
    assert {items[w].error_code for w in ids[:2]} == {"InvalidUserConfiguration.Workspace"}
    assert {items[w].state for w in ids[:2]} == {ItemState.FAILED}
    assert {items[w].state for w in ids[2:]} == {ItemState.SUCCEEDED}
    assert exit_code_for(job.status, await store.counts(job_id)) == 1


@pytest.mark.parametrize("action", ["modify", "migrate"])
async def test_operation_in_progress_is_tried_again_and_succeeds(
    sim: Simulator, store: Store, action: str
) -> None:
    ids = pick(sim, 6)
    if action == "modify":
        params: dict[str, Any] = {"compute_type": "POWER"}
        operation = "ModifyWorkspaceProperties"
    else:
        async with sim_client(sim) as client:
            answer = await client.describe_workspace_bundles(Owner="123456789012")
        bundle = answer["Bundles"][0]["BundleId"]
        ids = [w for w in pick(sim, 30) if sim.workspace(w)["BundleId"] != bundle][:6]  # type: ignore[index]
        params = {"to_bundle": bundle}
        operation = "MigrateWorkspace"
    job_id = await planned(
        store, sim, action, ids, params=params, include_connected=True, ignore_snapshot_age=True
    )
    sim.configure(in_progress_first=1)
    sim.reset_stats()
    job = await run_job(store, job_id)
    items = await by_ws(store, job_id)
    assert job.status is JobStatus.SUCCEEDED, job.message
    assert {items[w].state for w in ids} == {ItemState.SUCCEEDED}
    assert {items[w].attempts for w in ids} == {2}
    # each WorkSpace: refused once ("try again shortly"), then accepted; the breaker stayed shut
    assert sim.stats().calls_by_workspace[operation] == dict.fromkeys(ids, 2)
