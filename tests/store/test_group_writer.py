"""The group writer: concurrent writes share commits, each returns once durable, a failed commit
fails only its own writers, close drains the queue."""

from __future__ import annotations

import anyio
import pytest

from fleetops.errors import StoreError
from fleetops.records import EventRow, ItemUpdate, NewJob
from fleetops.states import ItemState
from fleetops.store import Store
from fleetops.store.repo import apply_updates


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


async def test_updates_of_every_shape_in_one_commit_apply_in_order(store: Store) -> None:
    """One call mixes shapes (state alone, attempts, error set, error cleared, result, submitted)
    and updates one item twice: each column takes the value of the last update that sets it."""
    job_id, ids = await job_with_items(store, 4)
    a, b, c, d = ids
    updates = [
        ItemUpdate(ids=[a, b], state=ItemState.IN_FLIGHT, attempts_inc=1, submitted=True),
        ItemUpdate(ids=[c], state=ItemState.FAILED, error_code="Boom", error_message="it broke"),
        ItemUpdate(ids=[d], state=ItemState.SKIPPED, reason="not eligible"),
        # a again, after its first update: in order, attempts added twice
        ItemUpdate(
            ids=[a], state=ItemState.SUBMITTED, attempts_inc=1, last_state="REBOOTING", result="r"
        ),
        ItemUpdate(ids=[c], state=ItemState.PENDING, clear_error=True),
    ]
    async with store.transaction() as conn:
        await apply_updates(conn, updates, [event(job_id, "ws-x")])
    got = {item.id: item for item in await store.items_page(job_id)}
    assert got[a].state is ItemState.SUBMITTED and got[a].attempts == 2
    assert got[a].last_state == "REBOOTING" and got[a].result == "r"
    assert got[a].submitted_at is not None
    assert got[b].state is ItemState.IN_FLIGHT and got[b].attempts == 1
    assert got[b].last_state is None
    assert got[c].state is ItemState.PENDING
    assert got[c].error_code is None and got[c].error_message is None
    assert got[d].state is ItemState.SKIPPED and got[d].reason == "not eligible"
    assert len(await store.events_for(job_id)) == 1


async def test_a_later_update_of_an_item_wins_even_when_its_shape_came_first(
    store: Store,
) -> None:
    job_id, ids = await job_with_items(store, 2)
    a, b = ids
    updates = [
        ItemUpdate(ids=[b], state=ItemState.PENDING),  # the state-only group starts here
        ItemUpdate(ids=[a], state=ItemState.SUBMITTED, last_state="REBOOTING"),
        ItemUpdate(ids=[a], state=ItemState.SUCCEEDED),  # state-only again: must run last
    ]
    async with store.transaction() as conn:
        await apply_updates(conn, updates, [])
    got = {item.id: item for item in await store.items_page(job_id)}
    assert got[a].state is ItemState.SUCCEEDED and got[a].last_state == "REBOOTING"


async def test_posted_events_ride_with_the_next_write_or_come_alone_soon(store: Store) -> None:
    job_id, ids = await job_with_items(store, 3)
    writer = store.writer()
    async with anyio.create_task_group() as tg:
        tg.start_soon(writer.run)
        assert writer.post([event(job_id, "ws-a")])  # not waited for
        await writer.write([ItemUpdate(ids=ids[:1], state=ItemState.IN_FLIGHT)])
        assert writer.commits == 1  # the event rode with the write
        assert len(await store.events_for(job_id)) == 1
        assert writer.post([event(job_id, "ws-b")])
        with anyio.fail_after(5):
            while len(await store.events_for(job_id)) < 2:  # alone, within POST_DELAY
                await anyio.sleep(0.01)
        assert writer.post([event(job_id, "ws-c")])
        writer.close()  # drained on close
    assert len(await store.events_for(job_id)) == 3
    assert not writer.post([event(job_id, "ws-d")])  # closed: the caller writes it itself
