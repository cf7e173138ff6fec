"""``rollout`` over two regions (two simulators, each its own bundles, images and quota), over
real HTTP and real SQLite: each scope's bundle pointed at its own new image once, before any
rebuild in that scope, and every WorkSpace of that bundle rebuilt once, the other bundles'
untouched; the error budget is the job's, and its rollback points every updated bundle back at
its own old image; a resume sends no update or rebuild twice; bad scopes are refused before
anything."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from engine_support import items_of, largest_bundle, sim_client

from fleetops.api import (
    JobSpec,
    check_rollout,
    create_job,
    job_document,
    plan_job,
    read_history,
    run_job,
)
from fleetops.aws.client import Connection
from fleetops.catalogue.options import JobOptions
from fleetops.catalogue.targets import Targets
from fleetops.errors import UsageError
from fleetops.sim import Simulator
from fleetops.states import ItemState, JobStatus, exit_code_for
from fleetops.store import Store

OWNER = "123456789012"
EAST, WEST = "us-east-1", "eu-west-1"


@pytest.fixture
async def sims() -> AsyncIterator[dict[str, Simulator]]:
    knobs: dict[str, Any] = {
        "workspaces": 40,
        "rate": None,
        "bundles": 3,
        "transition_seconds": 0.3,
        "connected_fraction": 0.0,
        "stale_snapshot_fraction": 0.0,
    }
    async with (
        Simulator(seed=4, region=EAST, **knobs) as east,
        Simulator(seed=9, region=WEST, **knobs) as west,
    ):
        for sim in (east, west):
            for ws_id in sim.workspace_ids():
                sim.set_state(ws_id, "AVAILABLE")
        yield {EAST: east, WEST: west}


class Scope:
    """One region's bundle to roll out: its id, old and new image, its WorkSpaces, and the
    WorkSpaces of the other bundles."""

    def __init__(self, bundle: str, old: str, new: str, members: list[str], others: list[str]):
        self.bundle, self.old, self.new = bundle, old, new
        self.members, self.others = members, others


async def _scope(sim: Simulator) -> Scope:
    bundle, old, new, members = await largest_bundle(sim, OWNER)
    others = [w for w in sim.workspace_ids() if w not in members]
    return Scope(bundle, old, new, members, others)


async def _scopes(sims: dict[str, Simulator]) -> dict[str, Scope]:
    return {region: await _scope(sim) for region, sim in sims.items()}


async def _image_of(sim: Simulator, bundle: str) -> str:
    async with sim_client(sim) as client:
        answer = await client.describe_workspace_bundles(BundleIds=[bundle])
    return str(answer["Bundles"][0]["ImageId"])


def _spec(sims: dict[str, Simulator], params: dict[str, Any], **options: Any) -> JobSpec:
    options.setdefault("rate", None)
    options.setdefault("ignore_snapshot_age", True)
    return JobSpec(
        action="rollout",
        targets=Targets(),
        connection=Connection(EAST, None, sims[EAST].endpoint_url),
        more_regions=(Connection(WEST, None, sims[WEST].endpoint_url),),
        options=JobOptions(**options),
        params=params,
    )


def _params(scopes: dict[str, Scope], **more: Any) -> dict[str, Any]:
    return {
        "bundle": {region: s.bundle for region, s in scopes.items()},
        "image": {region: s.new for region, s in scopes.items()},
        **more,
    }


async def test_each_region_updates_its_own_bundle_once_then_rebuilds_its_workspaces(
    store: Store, sims: dict[str, Simulator], db_path: Any
) -> None:
    scopes = await _scopes(sims)
    for sim in sims.values():
        sim.reset_stats()
    spec = _spec(sims, _params(scopes), waves=(3, None))
    await check_rollout(spec)
    job = await run_job(store, (await create_job(store, spec)).id)

    assert job.status is JobStatus.SUCCEEDED, job.message
    for region, sim in sims.items():
        scope, stats = scopes[region], sim.stats()
        assert stats.calls_by_operation["UpdateWorkspaceBundle"] == 1
        assert await _image_of(sim, scope.bundle) == scope.new
        rebuilt = stats.calls_by_workspace["RebuildWorkspaces"]
        assert rebuilt == dict.fromkeys(scope.members, 1)  # each once, the others untouched
        assert not set(rebuilt) & set(scope.others)
        # The update went out before the first rebuild of its region.
        assert max(stats.call_times["UpdateWorkspaceBundle"]) < min(
            stats.call_times["RebuildWorkspaces"]
        )
    items = await items_of(store, job.id)
    assert {(i.region, i.workspace_id) for i in items} == {
        (region, ws) for region, s in scopes.items() for ws in s.members
    }
    assert {i.state for i in items} == {ItemState.SUCCEEDED}
    with read_history(str(db_path)) as reader:
        shown = job_document(reader, job.id)["rollout"]
    assert shown["rolled_back"] is False
    assert shown["bundle_id"] is None  # the regions' bundles differ
    assert shown["scopes"] == [
        {
            "account": None,
            "region": region,
            "bundle_id": scopes[region].bundle,
            "old_image_id": scopes[region].old,
            "new_image_id": scopes[region].new,
            "rolled_back": False,
        }
        for region in (EAST, WEST)
    ]


async def test_the_jobs_budget_exceeded_rolls_every_updated_bundle_back(
    store: Store, sims: dict[str, Simulator], db_path: Any
) -> None:
    scopes = await _scopes(sims)
    for sim in sims.values():
        sim.configure(rebuild_error_fraction=1.0)
        sim.reset_stats()
    params = _params(scopes, rollback_on_abort=True)
    spec = _spec(sims, params, waves=(3, None), max_errors="1")
    job = await run_job(store, (await create_job(store, spec)).id)

    assert job.status is JobStatus.ABORTED, job.message
    assert exit_code_for(job.status, await store.counts(job.id)) == 3
    rebuilt: dict[str, dict[str, int]] = {}
    for region, sim in sims.items():
        scope, stats = scopes[region], sim.stats()
        assert await _image_of(sim, scope.bundle) == scope.old  # back on its own old image
        assert stats.calls_by_operation["UpdateWorkspaceBundle"] == 2  # rollout, rollback
        rebuilt[region] = dict(stats.calls_by_workspace.get("RebuildWorkspaces", {}))
        assert len(rebuilt[region]) <= 3  # nothing past the first wave
        assert set(rebuilt[region].values()) <= {1}
    with read_history(str(db_path)) as reader:
        shown = job_document(reader, job.id)["rollout"]
    assert shown["rolled_back"] is True
    assert [s["rolled_back"] for s in shown["scopes"]] == [True, True]
    # A resume of the aborted job rebuilds nothing more and leaves every bundle alone.
    again = await run_job(store, job.id)
    assert again.status is JobStatus.ABORTED
    for region, sim in sims.items():
        assert sim.stats().calls_by_operation["UpdateWorkspaceBundle"] == 2
        assert dict(sim.stats().calls_by_workspace.get("RebuildWorkspaces", {})) == rebuilt[region]


async def test_a_resume_after_a_kill_updates_no_bundle_twice(
    store: Store, sims: dict[str, Simulator]
) -> None:
    """Killed after east's update was recorded, and after west's UpdateWorkspaceBundle went
    out but before its answer was recorded: the resume sends neither again (west's bundle is
    read first) and rebuilds each WorkSpace once."""
    scopes = await _scopes(sims)
    job = await create_job(store, _spec(sims, _params(scopes)))
    job = await plan_job(store, job.id)
    async with sim_client(sims[WEST]) as client:
        await client.update_workspace_bundle(BundleId=scopes[WEST].bundle, ImageId=scopes[WEST].new)
    async with sim_client(sims[EAST]) as client:
        await client.update_workspace_bundle(BundleId=scopes[EAST].bundle, ImageId=scopes[EAST].new)
    recorded = {
        "scopes": {
            EAST: {"old_image_id": scopes[EAST].old, "bundle_updated": True},
            WEST: {"old_image_id": scopes[WEST].old},
        }
    }
    await store.update_job(job.id, params={**job.params, "rollout": recorded})
    for sim in sims.values():
        sim.reset_stats()

    job = await run_job(store, job.id)

    assert job.status is JobStatus.SUCCEEDED, job.message
    for region, sim in sims.items():
        stats = sim.stats()
        assert "UpdateWorkspaceBundle" not in stats.calls_by_operation
        assert stats.calls_by_workspace["RebuildWorkspaces"] == dict.fromkeys(
            scopes[region].members, 1
        )
    facts = (await store.get_job(job.id)).params["rollout"]["scopes"]
    assert facts[WEST] == {"old_image_id": scopes[WEST].old, "bundle_updated": True}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"bundle": {"ap-south-1": "wsb-000000000"}}, "does not target ap-south-1"),
        ({"image": {EAST: "x"}}, "rollout has no image for eu-west-1"),
        ({"image": {EAST: "new", WEST: "PENDING"}}, "is PENDING, not AVAILABLE, in eu-west-1"),
        ({"image": {EAST: "new", WEST: "wsi-000000000"}}, "not found in eu-west-1"),
        ({"bundle": "east-bundle"}, "not found in eu-west-1"),  # one id is one region's
    ],
)
async def test_bad_scopes_and_images_are_refused_before_any_update(
    sims: dict[str, Simulator], change: dict[str, Any], expected: str
) -> None:
    scopes = await _scopes(sims)
    async with sim_client(sims[WEST]) as client:
        images = (await client.describe_workspace_images())["Images"]
    pending = next(i["ImageId"] for i in images if i["State"] == "PENDING")
    named = {"new": scopes[EAST].new, "PENDING": pending, "east-bundle": scopes[EAST].bundle}
    params = _params(scopes)
    for key, value in change.items():
        if isinstance(value, dict):
            value = {scope: named.get(v, v) for scope, v in value.items()}
            if key == "image" and "x" in value.values():
                value = {EAST: scopes[EAST].new}
        params[key] = named.get(value, value) if isinstance(value, str) else value
    for sim in sims.values():
        sim.reset_stats()
    with pytest.raises(UsageError) as refused:
        await check_rollout(_spec(sims, params))
    assert expected in str(refused.value)
    for sim in sims.values():
        assert "UpdateWorkspaceBundle" not in sim.stats().calls_by_operation
        assert "RebuildWorkspaces" not in sim.stats().calls_by_operation
