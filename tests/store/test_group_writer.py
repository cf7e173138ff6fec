"""The group writer: concurrent writes share commits, each returns once durable, a failed commit
fails only its own writers, close drains the queue."""

from __future__ import annotations

import anyio
import pytest

from fleetops.errors import StoreError
from fleetops.states import ItemState
from fleetops.store import EventRow, ItemUpdate, NewJob, Store


async def job_with_items(store: Store, n: int) -> tuple[str, list[int]]:
    job = await store.create_job(
        NewJob(action="reboot", params={}, targets={}, options={}, region="us-east-1")
    )
    await store.add_items(
        [
            {
                "job_id": job.id,
                "workspace_id": f"ws-{i:06d}",
                "region": "us-east-1",
                "state": ItemState.PENDING.value,
                "updated_at": 1.0,
            }
            for i in range(n)
        ]
    )
    return job.id, [item.id for item in await store.items_page(job.id)]


def event(job_id: str, ws: str) -> EventRow:
    return EventRow(job_id, "us-east-1", "RebootWorkspaces", [ws], "ok", None, "req", 1, 5)


async def test_concurrent_writes_share_commits_and_are_all_durable(store: Store) -> None:
    job_id, ids = await job_with_items(store, 60)
    writer = store.writer()
    async with anyio.create_task_group() as tg:
        tg.start_soon(writer.run)

        async def one(item_id: int) -> None:
            await writer.write(
                [ItemUpdate(ids=[item_id], state=ItemState.SUCCEEDED, attempts_inc=1)],
                [event(job_id, f"ws-{item_id}")],
            )

        async with anyio.create_task_group() as writers:
            for item_id in ids:
                writers.start_soon(one, item_id)
        writer.close()
    counts = await store.counts(job_id)
    assert counts["succeeded"] == 60 and counts["pending"] == 0
    assert len(await store.events_for(job_id)) == 60
    assert 1 <= writer.commits < 60  # grouped: fewer commits than writes


async def test_a_failed_commit_fails_its_writers_and_the_writer_goes_on(store: Store) -> None:
    job_id, ids = await job_with_items(store, 2)
    writer = store.writer()
    async with anyio.create_task_group() as tg:
        tg.start_soon(writer.run)
        with pytest.raises(StoreError):
            # an event of a job that does not exist: the foreign key refuses the commit
            await writer.write(
                [ItemUpdate(ids=[ids[0]], state=ItemState.FAILED)], [event("j-none", "ws-x")]
            )
        await writer.write([ItemUpdate(ids=[ids[1]], state=ItemState.SUCCEEDED)])
        writer.close()
    counts = await store.counts(job_id)
    # the failed commit wrote nothing, not even its item update
    assert (counts["pending"], counts["failed"], counts["succeeded"]) == (1, 0, 1)


async def test_writes_after_close_commit_at_once(store: Store) -> None:
    job_id, ids = await job_with_items(store, 1)
    writer = store.writer()
    writer.close()
    await writer.run()  # returns at once: closed and drained
    await writer.write([ItemUpdate(ids=ids, state=ItemState.IN_DOUBT, reason="lost answer")])
    (item,) = await store.items_page(job_id)
    assert item.state is ItemState.IN_DOUBT and item.reason == "lost answer"
