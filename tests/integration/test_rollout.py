"""``rollout`` end to end against the simulator (real HTTP, real SQLite): the bundle pointed at
the new image once and before any rebuild, its WorkSpaces rebuilt once each in waves, a wave
only after the previous one verified; aborted with ``rollback_on_abort``, the bundle back on its
old image and nothing more rebuilt."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from engine_support import items_of, largest_bundle, sim_client, spec_for

from fleetops.api import (
    check_rollout,
    create_job,
    job_document,
    read_history,
    retry_job,
    run_job,
)
from fleetops.catalogue.targets import Targets
from fleetops.errors import UsageError
from fleetops.sim import Simulator
from fleetops.states import ItemState, JobStatus, exit_code_for
from fleetops.store import Store

OWNER = "123456789012"


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(
        workspaces=90,
        seed=4,
        rate=None,
        bundles=3,
        transition_seconds=0.4,
        connected_fraction=0.0,
        stale_snapshot_fraction=0.0,
    ) as running:
        yield running


async def _bundle_with_images(sim: Simulator) -> tuple[str, str, str, list[str]]:
    """A bundle, its image, its newer image, and its WorkSpaces (made AVAILABLE)."""
    bundle, old, new, members = await largest_bundle(sim, OWNER)
    for ws_id in members:
        sim.set_state(ws_id, "AVAILABLE")
    return bundle, old, new, members


async def _image_of(sim: Simulator, bundle: str) -> str:
    async with sim_client(sim) as client:
        answer = await client.describe_workspace_bundles(BundleIds=[bundle])
    return str(answer["Bundles"][0]["ImageId"])


def _rollout(sim: Simulator, bundle: str, image: str, **options: Any) -> Any:
    params: dict[str, Any] = {"bundle": bundle, "image": image}
    if options.pop("rollback", False):
        params["rollback_on_abort"] = True
    return spec_for(sim, "rollout", Targets(bundle_id=bundle), params=params, **options)


async def test_rollout_updates_the_bundle_once_then_rebuilds_in_waves(
    store: Store, sim: Simulator, db_path: Any
) -> None:
    bundle, old, new, members = await _bundle_with_images(sim)
    assert len(members) >= 25
    sim.reset_stats()
    spec = _rollout(sim, bundle, new, waves=(5, None), ignore_snapshot_age=True)
    await check_rollout(spec)
    job = await run_job(store, (await create_job(store, spec)).id)

    assert job.status is JobStatus.SUCCEEDED, job.message
    stats = sim.stats()
    assert stats.calls_by_operation["UpdateWorkspaceBundle"] == 1
    assert stats.calls_by_workspace["RebuildWorkspaces"] == dict.fromkeys(members, 1)
    assert await _image_of(sim, bundle) == new
    # UpdateWorkspaceBundle came first; wave two only once wave one was verified.
    events = await store.events_for(job.id)
    ops = [e["operation"] for e in events if e["operation"] != "DescribeWorkspaces"]
    first_rebuild = ops.index("RebuildWorkspaces")
    assert "UpdateWorkspaceBundle" in ops[:first_rebuild]
    rebuilds = [e for e in events if e["operation"] == "RebuildWorkspaces"]
    items = {i.workspace_id: i for i in await items_of(store, job.id)}
    wave_one = [e["workspace_ids"] for e in rebuilds[:5]]
    verified_at = max(items[ws].updated_at for ws in wave_one)
    assert rebuilds[5]["at"] >= verified_at
    assert {i.state for i in items.values()} == {ItemState.SUCCEEDED}
    with read_history(str(db_path)) as reader:
        document = job_document(reader, job.id)
    assert document["rollout"] == {
        "bundle_id": bundle,
        "old_image_id": old,
        "new_image_id": new,
        "rolled_back": False,
    }


async def test_every_rebuild_failing_aborts_and_rolls_the_bundle_back(
    store: Store, sim: Simulator, db_path: Any
) -> None:
    bundle, old, new, _ = await _bundle_with_images(sim)
    sim.configure(rebuild_error_fraction=1.0)
    sim.reset_stats()
    spec = _rollout(
        sim,
        bundle,
        new,
        waves=(5, None),
        max_errors="1",
        rollback=True,
        ignore_snapshot_age=True,
    )
    job = await run_job(store, (await create_job(store, spec)).id)

    assert job.status is JobStatus.ABORTED
    assert exit_code_for(job.status, await store.counts(job.id)) == 3
    assert await _image_of(sim, bundle) == old
    stats = sim.stats()
    assert stats.calls_by_operation["UpdateWorkspaceBundle"] == 2  # the rollout, the rollback
    rebuilt = stats.calls_by_workspace["RebuildWorkspaces"]
    assert len(rebuilt) <= 5 and set(rebuilt.values()) == {1}  # nothing past the first wave
    with read_history(str(db_path)) as reader:
        assert job_document(reader, job.id)["rollout"]["rolled_back"] is True
    # A resume of the aborted job rebuilds nothing more, and leaves the bundle alone.
    again = await run_job(store, job.id)
    assert sim.stats().calls_by_operation["UpdateWorkspaceBundle"] == 2
    assert sim.stats().calls_by_workspace["RebuildWorkspaces"] == rebuilt
    assert again.status is JobStatus.ABORTED
    # A retry of its failed WorkSpaces is a rollout of its own: the bundle pointed at the new
    # image again, those WorkSpaces rebuilt (the parent's facts are not the retry's).
    sim.configure(rebuild_error_fraction=0.0)
    retry = await retry_job(store, job.id)
    assert "rollout" not in retry.params
    retried = await run_job(store, retry.id)
    assert retried.status is JobStatus.SUCCEEDED, retried.message
    assert await _image_of(sim, bundle) == new
    assert sim.stats().calls_by_operation["UpdateWorkspaceBundle"] == 3


@pytest.mark.parametrize("which", ["PENDING", "ERROR", "missing"])
async def test_an_image_not_available_is_refused_before_anything(
    sim: Simulator, which: str
) -> None:
    bundle, _, _, _ = await _bundle_with_images(sim)
    async with sim_client(sim) as client:
        images = (await client.describe_workspace_images())["Images"]
    image = next((i["ImageId"] for i in images if i["State"] == which), "wsi-000000000")
    sim.reset_stats()
    with pytest.raises(UsageError) as refused:
        await check_rollout(_rollout(sim, bundle, image))
    assert image in str(refused.value)
    assert "UpdateWorkspaceBundle" not in sim.stats().calls_by_operation
