"""The in-memory store answers as the SQLite store does, for everything the engine asks of a
store: the same scenario runs on both and must give the same answers."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from fleetops.errors import NotFoundError
from fleetops.records import EventRow, ItemUpdate, NewJob
from fleetops.states import ItemState, JobStatus
from fleetops.store import Store
from fleetops.store.memory import MemoryStore
from fleetops.store.protocol import EngineStore


@pytest.fixture(params=["memory", "sqlite"])
async def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    if request.param == "memory":
        yield MemoryStore()
        return
    store = await Store.open(tmp_path / "contract.db")
    try:
        yield store
    finally:
        await store.close()


def rows(job_id: str, n: int, region: str = "us-east-1") -> list[dict[str, Any]]:
    return [
        {
            "job_id": job_id,
            "workspace_id": f"ws-{region[:2]}{i:07d}",
            "region": region,
            "state": (ItemState.SKIPPED if i % 5 == 0 else ItemState.PENDING).value,
            "attempts": 0,
            "seen_state": "AVAILABLE",
            "reason": "connected" if i % 5 == 0 else None,
            "updated_at": time.time(),
        }
        for i in range(n)
    ]


async def test_items_pages_counts_and_writer(any_store: Any) -> None:
    store: EngineStore = any_store
    job = await any_store.create_job(
        NewJob(action="reboot", params={}, targets={}, options={}, region="us-east-1")
    )
    await store.add_items(rows(job.id, 12))
    await store.add_items(rows(job.id, 3, "eu-west-1"))
    counts = await store.counts(job.id)
    assert set(counts) == {s.value for s in ItemState}
    assert (counts["pending"], counts["skipped"]) == (11, 4)
    assert (await store.counts(job.id, region="eu-west-1"))["pending"] == 2

    page = await store.items_page(job.id, states=[ItemState.PENDING], limit=4)
    assert [i.state for i in page] == [ItemState.PENDING] * 4
    assert [i.id for i in page] == sorted(i.id for i in page)
    rest = await store.items_page(job.id, states=[ItemState.PENDING], after_id=page[-1].id)
    assert len(page) + len(rest) == 11 and page[-1].id < rest[0].id
    pages = [len(p) async for p in store.iter_items(job.id, page=5, region="us-east-1")]
    assert pages == [5, 5, 2]

    writer = store.writer()
    async with anyio.create_task_group() as tg:
        tg.start_soon(writer.run)  # the group writer's task, as a run has it
        ids = [page[0].id, page[1].id]
        await writer.write([ItemUpdate(ids=ids, state=ItemState.IN_FLIGHT, attempts_inc=1)])
        await writer.write(
            [
                ItemUpdate(
                    ids=ids[:1],
                    state=ItemState.PENDING,
                    error_code="InternalFailure",
                    error_message="x",
                ),
                ItemUpdate(ids=ids[1:], state=ItemState.SUBMITTED, submitted=True, result="ws-new"),
            ],
            [
                EventRow(
                    job_id=job.id,
                    region="us-east-1",
                    operation="RebootWorkspaces",
                    workspace_ids=["ws-a", "ws-b"],
                    outcome="partial",
                    error_code=None,
                    request_id="r1",
                    attempts=2,
                    duration_ms=5,
                )
            ],
        )
        first, second = await store.items_page(job.id, after_id=ids[0] - 1, limit=2)
        assert (first.state, first.attempts, first.error_code) == (
            ItemState.PENDING,
            1,
            "InternalFailure",
        )
        assert (second.state, second.result, second.submitted_at is not None) == (
            ItemState.SUBMITTED,
            "ws-new",
            True,
        )
        await writer.write([ItemUpdate(ids=ids[:1], state=ItemState.PENDING, clear_error=True)])
        assert (await store.items_page(job.id, after_id=ids[0] - 1, limit=1))[0].error_code is None
        writer.close()
    events = await any_store.events_for(job.id)
    assert [(e["operation"], e["attempts"], e["workspace_ids"]) for e in events] == [
        ("RebootWorkspaces", 2, "ws-a ws-b")
    ]

    await store.delete_items(job.id, region="eu-west-1")
    assert sum((await store.counts(job.id)).values()) == 12


async def test_leases_and_jobs(any_store: Any) -> None:
    store: EngineStore = any_store
    job = await any_store.create_job(
        NewJob(action="reboot", params={}, targets={}, options={}, region="us-east-1")
    )
    assert (await store.get_job(job.id[:-2])).id == job.id  # a unique prefix
    with pytest.raises(NotFoundError):
        await store.get_job("nope")
    assert await store.acquire_lease(job.id, "a", 30) is None
    assert await store.acquire_lease(job.id, "a", 30) is None  # the holder again
    assert await store.acquire_lease(job.id, "b", 30) == "a"
    assert await store.renew_lease(job.id, "a", 30)
    assert not await store.renew_lease(job.id, "b", 30)
    await store.release_lease(job.id, "b")  # not the holder: nothing happens
    assert await store.acquire_lease(job.id, "b", 30) == "a"
    await store.release_lease(job.id, "a")
    assert await store.acquire_lease(job.id, "b", 0.01) is None
    time.sleep(0.02)
    assert await store.acquire_lease(job.id, "c", 30) is None  # expired: taken over
    await store.update_job(job.id, status=JobStatus.RUNNING, message="m")
    got = await store.get_job(job.id)
    assert (got.status, got.message, got.lease_owner) == (JobStatus.RUNNING, "m", "c")


def test_the_memory_store_has_the_tables_columns() -> None:
    from fleetops.store import memory, tables

    assert memory.JOB_COLUMNS == tuple(tables.jobs.c.keys())
    assert memory.ITEM_COLUMNS == tuple(tables.items.c.keys())


def test_the_record_types_the_protocol_and_the_memory_store_load_no_sqlalchemy() -> None:
    code = (
        "import sys, fleetops.records, fleetops.store, fleetops.store.protocol, "
        "fleetops.store.memory\n"
        "from fleetops.store import EventRow, ItemUpdate, JobRecord, NewJob\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'sqlalchemy'))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
