"""Jobs, items, counts and events: the repository's queries, on every backend."""

from __future__ import annotations

import getpass
import socket
from typing import Any

import pytest

from fleetops.errors import NotFoundError
from fleetops.records import EventRow, ItemUpdate, NewJob
from fleetops.states import ItemState, JobStatus
from fleetops.store import Store


def new_job(action: str = "reboot", **extra: Any) -> NewJob:
    return NewJob(
        action=action,
        params={"force": True},
        targets={"ids": []},
        options={},
        region="eu-west-1",
        **extra,
    )


def item_rows(
    job_id: str, n: int, *, region: str = "eu-west-1", start: int = 0
) -> list[dict[str, Any]]:
    return [
        {
            "job_id": job_id,
            "workspace_id": f"ws-{start + i:08d}",
            "region": region,
            "state": ItemState.PENDING.value,
            "updated_at": 1.0,
        }
        for i in range(n)
    ]


async def test_create_and_get_a_job_with_who_started_it(store: Store) -> None:
    job = await store.create_job(new_job(profile="ops", endpoint_url="http://127.0.0.1:1"))
    again = await store.get_job(job.id)
    assert again == job
    assert job.status is JobStatus.PLANNED and job.params == {"force": True}
    assert job.started_by == getpass.getuser() and job.started_host == socket.gethostname()
    assert job.regions == ("eu-west-1",) and job.endpoints == {"eu-west-1": "http://127.0.0.1:1"}
    assert job.caller_arn is None and job.accounts is None and job.assume is None
    await store.update_job(job.id, caller_arn="arn:aws:sts::123456789012:assumed-role/Ops/alice")
    assert (await store.get_job(job.id)).caller_arn.endswith("/alice")  # type: ignore[union-attr]


async def test_a_job_by_unique_prefix_and_ambiguous_prefix(store: Store) -> None:
    a = await store.create_job(new_job(id="jAAAA1"))
    await store.create_job(new_job(id="jAAAA2"))
    assert (await store.get_job("jAAAA1")).id == a.id
    with pytest.raises(NotFoundError, match="ambiguous"):
        await store.get_job("jAAAA")
    with pytest.raises(NotFoundError, match="no job"):
        await store.get_job("jZZZ")
    # LIKE wildcards in a prefix are literal characters
    with pytest.raises(NotFoundError):
        await store.get_job("j%")


async def test_list_jobs_newest_first_with_filters(store: Store) -> None:
    ids = []
    for n, (action, who) in enumerate(
        [("reboot", "alice"), ("rebuild", "bob"), ("reboot", "bob"), ("stop", "alice")]
    ):
        job = await store.create_job(new_job(action, id=f"j{n}", started_by=who))
        await store.update_job(job.id, created_at=1000.0 + n)
        ids.append(job.id)
    await store.update_job("j1", status=JobStatus.FAILED)
    assert [j.id for j in await store.list_jobs()] == ["j3", "j2", "j1", "j0"]
    assert [j.id for j in await store.list_jobs(limit=2)] == ["j3", "j2"]
    assert [j.id for j in await store.list_jobs(action="reboot")] == ["j2", "j0"]
    assert [j.id for j in await store.list_jobs(status="failed")] == ["j1"]
    assert [j.id for j in await store.list_jobs(since=1001.5)] == ["j3", "j2"]
    assert [j.id for j in await store.list_jobs(started_by="bob")] == ["j2", "j1"]
    assert [j.id for j in await store.list_jobs(started_by="carol")] == []


async def test_counts_and_counts_for_include_every_state(store: Store) -> None:
    a = await store.create_job(new_job())
    b = await store.create_job(new_job())
    await store.add_items(item_rows(a.id, 5) + item_rows(a.id, 3, region="us-east-1", start=5))
    await store.add_items(item_rows(b.id, 2))
    first = await store.items_page(a.id, limit=2)
    writer = store.writer()
    writer.close()
    await writer.write([ItemUpdate(ids=[i.id for i in first], state=ItemState.SUCCEEDED)])
    counts = await store.counts(a.id)
    assert list(counts) == [s.value for s in ItemState]
    assert (counts["pending"], counts["succeeded"], counts["failed"]) == (6, 2, 0)
    assert (await store.counts(a.id, region="us-east-1"))["pending"] == 3
    both = await store.counts_for([a.id, b.id, "missing"])
    assert both[b.id]["pending"] == 2 and sum(both["missing"].values()) == 0
    assert await store.counts_for([]) == {}


async def test_items_pages_stream_in_id_order_with_filters(store: Store) -> None:
    job = await store.create_job(new_job())
    await store.add_items(
        item_rows(job.id, 25) + item_rows(job.id, 5, region="us-east-1", start=25)
    )
    pages = [page async for page in store.iter_items(job.id, page=7)]
    ids = [item.id for page in pages for item in page]
    assert [len(p) for p in pages] == [7, 7, 7, 7, 2]
    assert ids == sorted(ids) and len(set(ids)) == 30
    east = [i async for p in store.iter_items(job.id, region="us-east-1") for i in p]
    assert [i.workspace_id for i in east] == [f"ws-{n:08d}" for n in range(25, 30)]
    none = await store.items_page(job.id, states=[ItemState.FAILED])
    assert none == []
    await store.delete_items(job.id, region="us-east-1")
    assert sum((await store.counts(job.id)).values()) == 25
    await store.delete_items(job.id)
    assert sum((await store.counts(job.id)).values()) == 0


async def test_item_updates_and_events_are_applied_together(store: Store) -> None:
    job = await store.create_job(new_job())
    await store.add_items(item_rows(job.id, 3))
    ids = [i.id for i in await store.items_page(job.id)]
    writer = store.writer()
    writer.close()
    await writer.write(
        [
            ItemUpdate(ids=ids[:2], state=ItemState.SUBMITTED, attempts_inc=1, submitted=True),
            ItemUpdate(
                ids=ids[2:],
                state=ItemState.FAILED,
                attempts_inc=2,
                error_code="InvalidResourceStateException",
                error_message="busy",
            ),
        ],
        [
            EventRow(
                job.id,
                "eu-west-1",
                "RebootWorkspaces",
                ["ws-1", "ws-2"],
                "partial",
                None,
                "req-1",
                2,
                120,
            )
        ],
    )
    items = {i.id: i for i in await store.items_page(job.id)}
    assert items[ids[0]].state is ItemState.SUBMITTED and items[ids[0]].attempts == 1
    assert items[ids[0]].submitted_at is not None
    assert (
        items[ids[2]].attempts == 2 and items[ids[2]].error_code == "InvalidResourceStateException"
    )
    await writer.write([ItemUpdate(ids=ids[2:], state=ItemState.PENDING, clear_error=True)])
    cleared = (await store.items_page(job.id, states=[ItemState.PENDING]))[0]
    assert cleared.error_code is None and cleared.error_message is None
    events = await store.events_for(job.id)
    assert len(events) == 1 and events[0]["workspace_ids"] == "ws-1 ws-2"
    assert events[0]["outcome"] == "partial" and events[0]["duration_ms"] == 120


async def test_one_workspace_once_per_job(store: Store) -> None:
    from fleetops.errors import StoreError

    job = await store.create_job(new_job())
    await store.add_items(item_rows(job.id, 1))
    with pytest.raises(StoreError):
        await store.add_items(item_rows(job.id, 1))
    assert sum((await store.counts(job.id)).values()) == 1
