"""WorkSpaces locked across jobs: the gate before an in_flight commit (in-memory store, fake
clock): free WorkSpaces go, busy ones wait, then are skipped "busy in job J"; a hold ends with
its item, and with its job's lease."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from fleetops.engine.locks import BusyGate
from fleetops.records import ItemRecord, ItemUpdate, NewJob
from fleetops.states import ItemState, JobStatus
from fleetops.store.memory import MemoryStore

REGION = "us-east-1"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


async def job_with(store: MemoryStore, states: dict[str, ItemState]) -> str:
    job = await store.create_job(
        NewJob(action="reboot", params={}, targets={}, options={}, region=REGION)
    )
    await store.add_items(
        [
            {
                "job_id": job.id,
                "workspace_id": ws,
                "region": REGION,
                "state": state.value,
                "updated_at": 1.0,
            }
            for ws, state in states.items()
        ]
    )
    assert await store.acquire_lease(job.id, f"host:1:{job.id}", 30.0) is None
    await store.update_job(job.id, status=JobStatus.RUNNING)
    return job.id


async def items_of(store: MemoryStore, job_id: str) -> list[ItemRecord]:
    return await store.items_page(job_id)


@pytest.fixture
def committed() -> list[ItemUpdate]:
    return []


def gate_for(
    store: MemoryStore, job_id: str, clock: Clock, committed: list[ItemUpdate]
) -> BusyGate:
    async def commit(updates: Sequence[ItemUpdate]) -> None:
        committed.extend(updates)

    return BusyGate(
        store.busy_workspaces, commit, job_id, REGION, wait=10.0, clock=clock, sleep=clock.sleep
    )


async def test_free_workspaces_go_and_busy_ones_wait_then_are_skipped(
    committed: list[ItemUpdate],
) -> None:
    store = MemoryStore()
    holder = await job_with(
        store, {"ws-00000001": ItemState.IN_FLIGHT, "ws-00000002": ItemState.SUBMITTED}
    )
    mine = await job_with(
        store,
        {
            "ws-00000001": ItemState.PENDING,
            "ws-00000002": ItemState.PENDING,
            "ws-00000003": ItemState.PENDING,
        },
    )
    clock = Clock()
    gate = gate_for(store, mine, clock, committed)
    batch = await items_of(store, mine)
    assert [i.workspace_id for i in await gate.admit(batch)] == ["ws-00000003"]
    assert committed == [] and clock.sleeps == []  # one WorkSpace went: no pause
    busy = [i for i in batch if i.workspace_id != "ws-00000003"]
    assert await gate.admit(busy) == []
    assert clock.sleeps == [1.0]  # nothing to send: look again in a second
    clock.now += 10.0
    assert await gate.admit(busy) == []
    assert committed == [
        ItemUpdate(
            ids=[i.id for i in busy], state=ItemState.SKIPPED, reason=f"busy in job {holder}"
        )
    ]
    assert gate.skipped == 2


async def test_a_hold_ends_with_the_item_and_with_the_lease(committed: list[ItemUpdate]) -> None:
    store = MemoryStore()
    holder = await job_with(store, {"ws-00000001": ItemState.SUBMITTED})
    mine = await job_with(store, {"ws-00000001": ItemState.PENDING})
    clock = Clock()
    gate = gate_for(store, mine, clock, committed)
    (item,) = await items_of(store, mine)
    assert await gate.admit([item]) == []
    (held,) = await items_of(store, holder)
    store.items[held.id]["state"] = ItemState.SUCCEEDED.value  # verified: the hold ends
    assert await gate.admit([item]) == [item]

    other = await job_with(store, {"ws-00000009": ItemState.IN_FLIGHT})
    late = await job_with(store, {"ws-00000009": ItemState.PENDING})
    gate = gate_for(store, late, clock, committed)
    (waiting,) = await items_of(store, late)
    assert await gate.admit([waiting]) == []
    store.jobs[other]["lease_expires_at"] = 0.0  # its runner died: the lease ran out
    assert await gate.admit([waiting]) == [waiting]
    assert committed == []


async def test_two_jobs_checking_the_same_workspace_cannot_both_go(
    committed: list[ItemUpdate],
) -> None:
    store = MemoryStore()
    first = await job_with(store, {"ws-00000001": ItemState.PENDING})
    second = await job_with(store, {"ws-00000001": ItemState.PENDING})
    clock = Clock()
    a, b = gate_for(store, first, clock, committed), gate_for(store, second, clock, committed)
    (item_a,) = await items_of(store, first)
    (item_b,) = await items_of(store, second)
    # Neither has committed in_flight yet: the first check's claim holds the WorkSpace.
    assert await a.admit([item_a]) == [item_a]
    assert await b.admit([item_b]) == []
