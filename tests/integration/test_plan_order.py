"""The plan's stored item order over HTTP: pages are read in parallel streams (one a directory
for the whole fleet, id chunks when the ids are given) and chunks decided concurrently
(connection status asked for each chunk while the next pages are read), yet the items are
stored in one order whatever the timing: a directory's in its listing's order, the
directories' pages taken in turn; the chunks' order for ids."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from engine_support import items_of, sim_client, spec_for

from fleetops.api import create_job, plan_job
from fleetops.catalogue.targets import Targets
from fleetops.sim import Simulator
from fleetops.store import Store


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    # Jittered latency: the calls made together answer out of order. Several pages and chunks.
    async with Simulator(
        workspaces=400, rate=None, latency_ms=1.0, latency_jitter_ms=40.0, standbys=6
    ) as running:
        yield running


async def _pages(sim: Simulator, **params: str) -> list[list[str]]:
    """DescribeWorkspaces page after page (NextToken), as one caller reads it."""
    pages: list[list[str]] = []
    async with sim_client(sim) as client:
        token: str | None = None
        while True:
            page = await client.describe_workspaces(
                Limit=25, **params, **({"NextToken": token} if token else {})
            )
            pages.append([ws["WorkspaceId"] for ws in page["Workspaces"]])
            token = page.get("NextToken")
            if not token:
                return pages


async def _sequential_order(sim: Simulator, **params: str) -> list[str]:
    return [ws for page in await _pages(sim, **params) for ws in page]


async def _in_turn_order(sim: Simulator) -> list[str]:
    """Each directory read page after page, the directories' pages taken in turn."""
    async with sim_client(sim) as client:
        listed = await client.describe_workspace_directories()
    directories = [d["DirectoryId"] for d in listed["Directories"]]
    assert len(directories) > 1
    streams = [await _pages(sim, DirectoryId=d) for d in directories]
    order: list[str] = []
    for turn in range(max(len(pages) for pages in streams)):
        for pages in streams:
            order.extend(pages[turn] if turn < len(pages) else [])
    return order


@pytest.mark.parametrize("concurrency", [1, 8])
async def test_stored_items_follow_the_directories_pages_in_turn(
    sim: Simulator, store: Store, concurrency: int
) -> None:
    expected = await _in_turn_order(sim)
    assert sorted(expected) == sorted(await _sequential_order(sim))  # the whole fleet, once
    job = await create_job(store, spec_for(sim, "reboot", concurrency=concurrency))
    await plan_job(store, job.id)
    items = await items_of(store, job.id)
    assert [item.workspace_id for item in items] == expected
    # connection status was asked (the chunks' own calls ran), and every WorkSpace is an item
    assert sim.stats().calls_by_operation["DescribeWorkspacesConnectionStatus"] > 1
    assert [item.id for item in items] == sorted(item.id for item in items)


async def test_a_directory_plan_follows_the_sequential_order_too(
    sim: Simulator, store: Store
) -> None:
    directory = str(sim.workspace((await _sequential_order(sim))[0])["DirectoryId"])  # type: ignore[index]
    expected = await _sequential_order(sim, DirectoryId=directory)
    targets = Targets.build(directory_id=directory)
    job = await create_job(store, spec_for(sim, "reboot", targets, concurrency=8))
    await plan_job(store, job.id)
    assert [item.workspace_id for item in await items_of(store, job.id)] == expected


async def test_ids_are_described_in_parallel_chunks_and_stored_in_their_order(
    sim: Simulator, store: Store
) -> None:
    ids = list(reversed(await _sequential_order(sim)))[:180]  # 8 chunks, not the fleet's order
    before = sim.stats().calls_by_operation.get("DescribeWorkspaces", 0)
    targets = Targets.build(workspace_ids=ids)
    job = await create_job(store, spec_for(sim, "reboot", targets, concurrency=8))
    await plan_job(store, job.id)
    assert [item.workspace_id for item in await items_of(store, job.id)] == ids
    assert sim.stats().calls_by_operation["DescribeWorkspaces"] - before == 8
