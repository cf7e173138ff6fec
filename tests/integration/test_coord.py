"""Coordination through the store, on SQLite and PostgreSQL: which WorkSpaces are busy in other
live jobs (items in flight or submitted under a live lease, and claims taken just before an
in_flight commit), and the holders of a shared quota."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from fleetops.aws.ratelimit import SHARED_HEADROOM, TokenBucket
from fleetops.engine.quota import sharing_quota
from fleetops.records import NewJob
from fleetops.states import ItemState, JobStatus
from fleetops.store import Store
from fleetops.store.coord import (
    CLAIM_TTL,
    busy_workspaces,
    release_quota_holder,
    renew_quota_holder,
)
from fleetops.store.memory import MemoryStore

REGION = "us-east-1"


@dataclass
class FakeClient:
    bucket: TokenBucket


async def running_job(store: Store, states: dict[str, ItemState], *, lease: float = 30.0) -> str:
    """A job ``running`` under a lease of ``lease`` seconds, with one item per WorkSpace."""
    job = await store.create_job(
        NewJob(action="reboot", params={}, targets={}, options={}, region=REGION)
    )
    rows: list[dict[str, Any]] = [
        {
            "job_id": job.id,
            "workspace_id": ws,
            "region": REGION,
            "state": state.value,
            "updated_at": 1.0,
        }
        for ws, state in states.items()
    ]
    await store.add_items(rows)
    assert await store.acquire_lease(job.id, f"other-host:1:{job.id}", lease) is None
    await store.update_job(job.id, status=JobStatus.RUNNING)
    return job.id


async def test_items_in_flight_or_submitted_in_a_live_job_are_busy(any_store: Store) -> None:
    holder = await running_job(
        any_store,
        {
            "ws-00000001": ItemState.IN_FLIGHT,
            "ws-00000002": ItemState.SUBMITTED,
            "ws-00000003": ItemState.SUCCEEDED,
            "ws-00000004": ItemState.PENDING,
        },
    )
    asking = await running_job(any_store, {})
    busy = await busy_workspaces(
        any_store,
        asking,
        REGION,
        ["ws-00000001", "ws-00000002", "ws-00000003", "ws-00000004", "ws-00000005"],
        claim=False,
    )
    assert busy == {"ws-00000001": holder, "ws-00000002": holder}
    # A job is never busy with itself, and another region's WorkSpace of that id is not busy.
    assert await busy_workspaces(any_store, holder, REGION, ["ws-00000001"], claim=False) == {}
    assert await busy_workspaces(any_store, asking, "eu-west-1", ["ws-00000001"]) == {}


async def test_a_dead_jobs_locks_expire_with_its_lease(any_store: Store) -> None:
    holder = await running_job(any_store, {"ws-00000001": ItemState.IN_FLIGHT})
    asking = await running_job(any_store, {})
    later = time.time() + 31.0  # the holder stopped renewing 30 s ago
    busy = await busy_workspaces(any_store, asking, REGION, ["ws-00000001"], now=later)
    assert busy == {}
    await any_store.update_job(holder, status=JobStatus.INTERRUPTED)  # stopped, lease released
    assert await busy_workspaces(any_store, asking, REGION, ["ws-00000001"], claim=False) == {}


async def test_a_claim_locks_the_gap_before_the_in_flight_commit(any_store: Store) -> None:
    first = await running_job(any_store, {})
    second = await running_job(any_store, {})
    now = time.time()
    ids = ["ws-00000001", "ws-00000002"]
    assert await busy_workspaces(any_store, first, REGION, ids, now=now) == {}
    # The second job checks before the first job's in_flight commit: the claims hold.
    assert await busy_workspaces(any_store, second, REGION, ids, now=now + 1) == {
        "ws-00000001": first,
        "ws-00000002": first,
    }
    # The first job's own check renews its claims; nobody else's claim blocks it.
    assert await busy_workspaces(any_store, first, REGION, ids, now=now + 2) == {}
    # Unrenewed, a claim lapses after CLAIM_TTL.
    late = now + 2 + CLAIM_TTL + 0.1
    assert await busy_workspaces(any_store, second, REGION, ids, now=late) == {}


async def test_quota_holders_register_renew_expire_and_leave(any_store: Store) -> None:
    now = 1_000_000.0
    scope = "123456789012/us-east-1"
    assert await renew_quota_holder(any_store, scope, "a:1:x", 4.0, now=now) == 1
    assert await renew_quota_holder(any_store, scope, "b:2:y", 4.0, now=now + 1) == 2
    assert await renew_quota_holder(any_store, scope, "a:1:x", 4.0, now=now + 2) == 2
    assert await renew_quota_holder(any_store, "us-east-1", "a:1:x", 4.0, now=now + 2) == 1
    # b stops renewing (killed): gone once its row expires.
    assert await renew_quota_holder(any_store, scope, "a:1:x", 4.0, now=now + 5.5) == 1
    assert await renew_quota_holder(any_store, scope, "b:2:y", 4.0, now=now + 6) == 2
    await release_quota_holder(any_store, scope, "b:2:y")
    assert await renew_quota_holder(any_store, scope, "a:1:x", 4.0, now=now + 7) == 1


async def test_a_runner_shares_its_scopes_quota_while_it_runs(any_store: Store) -> None:
    scope = "123456789012/us-east-1"
    other = "another-host:7:abcd"
    assert await renew_quota_holder(any_store, scope, other, 30.0) == 1
    bucket = TokenBucket(10.0, 5)
    refused = object()  # a scope whose role was refused: no bucket, no quota spent
    async with sharing_quota(any_store, {scope: FakeClient(bucket), "x/us-east-1": refused}):
        assert bucket.share == SHARED_HEADROOM / 2  # this runner and the other one
    assert bucket.share == 1.0
    # This runner's row is gone: the other holder is alone again.
    assert await renew_quota_holder(any_store, scope, other, 30.0) == 1


async def test_a_store_without_holder_rows_shares_with_nobody() -> None:
    bucket = TokenBucket(10.0, 5)
    async with sharing_quota(MemoryStore(), {"us-east-1": FakeClient(bucket)}):
        assert bucket.share == 1.0
