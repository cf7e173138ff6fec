"""A job's lease: one runner at a time, taken over once it expires or its process is gone."""

from __future__ import annotations

import os
import socket
import time

import anyio
import pytest

from fleetops.errors import NotFoundError
from fleetops.records import NewJob
from fleetops.store import Store


async def a_job(store: Store) -> str:
    job = await store.create_job(
        NewJob(action="reboot", params={}, targets={}, options={}, region="us-east-1")
    )
    return job.id


def live_owner(tag: str) -> str:
    # another host's id: its liveness cannot be checked, only its expiry counts
    return f"elsewhere.example:{os.getpid()}:{tag}"


async def test_acquire_renew_release(store: Store) -> None:
    job_id = await a_job(store)
    assert await store.acquire_lease(job_id, live_owner("a"), 60) is None
    job = await store.get_job(job_id)
    assert job.lease_owner == live_owner("a")
    assert job.lease_expires_at is not None and job.lease_expires_at > time.time() + 50
    assert await store.acquire_lease(job_id, live_owner("a"), 60) is None  # re-entrant
    assert await store.acquire_lease(job_id, live_owner("b"), 60) == live_owner("a")
    assert await store.renew_lease(job_id, live_owner("a"), 120)
    assert not await store.renew_lease(job_id, live_owner("b"), 120)
    await store.release_lease(job_id, live_owner("b"))  # not the holder: no effect
    assert (await store.get_job(job_id)).lease_owner == live_owner("a")
    await store.release_lease(job_id, live_owner("a"))
    released = await store.get_job(job_id)
    assert released.lease_owner is None and released.lease_expires_at is None
    assert await store.acquire_lease(job_id, live_owner("b"), 60) is None


async def test_an_expired_lease_is_taken_over(store: Store) -> None:
    job_id = await a_job(store)
    assert await store.acquire_lease(job_id, live_owner("a"), 60) is None
    await store.update_job(job_id, lease_expires_at=time.time() - 1)
    assert await store.acquire_lease(job_id, live_owner("b"), 60) is None
    assert (await store.get_job(job_id)).lease_owner == live_owner("b")
    assert not await store.renew_lease(job_id, live_owner("a"), 60)  # the old holder lost it


async def test_a_dead_local_holder_is_taken_over_at_once(store: Store) -> None:
    job_id = await a_job(store)
    dead = f"{socket.gethostname()}:999999999:dead"
    assert await store.acquire_lease(job_id, dead, 600) is None
    assert await store.acquire_lease(job_id, live_owner("b"), 60) is None


async def test_no_lease_on_a_missing_job(store: Store) -> None:
    with pytest.raises(NotFoundError):
        await store.acquire_lease("j-missing", live_owner("a"), 60)
    assert not await store.renew_lease("j-missing", live_owner("a"), 60)


async def test_racing_runners_one_wins(store: Store, db_url: str) -> None:
    """Six runners, each with its own connection pool, reach for one job at once."""
    job_id = await a_job(store)
    others = [await Store.open(db_url) for _ in range(6)]
    results: dict[str, str | None] = {}

    async def reach(index: int, other: Store) -> None:
        owner = live_owner(f"r{index}")
        results[owner] = await other.acquire_lease(job_id, owner, 60)

    try:
        async with anyio.create_task_group() as tg:
            for index, other in enumerate(others):
                tg.start_soon(reach, index, other)
    finally:
        for other in others:
            await other.close()
    winners = [owner for owner, holder in results.items() if holder is None]
    assert len(winners) == 1, results
    assert (await store.get_job(job_id)).lease_owner == winners[0]
    for owner, holder in results.items():
        if owner != winners[0]:
            assert holder is not None and holder != owner
