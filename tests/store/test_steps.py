"""The steps of a recipe's items, on every backend: opened, closed and the next opened with the
item's reset in one write; read back by the store and by the history's plain-driver reader,
counted by step (an open step by its item's live state)."""

from __future__ import annotations

import pytest

from fleetops.records import ItemUpdate, NewJob, StepChange, StepRecord
from fleetops.states import ItemState
from fleetops.store import Store
from fleetops.store.readonly import open_reader
from fleetops.store.steps_read import step_counts, steps_of


async def _job_with_items(store: Store, n: int) -> tuple[str, list[int]]:
    job = await store.create_job(
        NewJob(action="recover", params={}, targets={}, options={}, region="us-east-1")
    )
    await store.add_items(
        [
            {
                "job_id": job.id,
                "workspace_id": f"ws-{i:09d}",
                "region": "us-east-1",
                "state": ItemState.PENDING.value,
                "seen_state": "UNHEALTHY",
                "updated_at": 1.0,
            }
            for i in range(n)
        ]
    )
    items = await store.items_page(job.id)
    return job.id, [item.id for item in items]


async def test_a_step_closes_and_the_next_opens_with_the_item_reset(store: Store) -> None:
    job_id, ids = await _job_with_items(store, 3)
    await store.write_steps(
        [
            StepChange(item_id=i, open=StepRecord(i, job_id, 0, "reboot", started_at=10.0))
            for i in ids
        ]
    )
    # The reboot of the first two fails (VerificationFailed); the third succeeds.
    writer = store.writer()
    async with _running(writer):
        await writer.write(
            [
                ItemUpdate(ids=ids[:2], state=ItemState.IN_FLIGHT, attempts_inc=1),
                ItemUpdate(
                    ids=ids[:2],
                    state=ItemState.FAILED,
                    last_state="UNHEALTHY",
                    error_code="VerificationFailed",
                    error_message="the WorkSpace went UNHEALTHY",
                ),
                ItemUpdate(ids=ids[2:], state=ItemState.SUCCEEDED, last_state="AVAILABLE"),
            ]
        )
    first = {s.item_id: s for s in await store.item_steps(job_id)}
    closed = [
        StepChange(
            item_id=i,
            close=StepRecord(
                i, job_id, 0, "reboot", 10.0, "failed", 1, 20.0, "VerificationFailed",
                "the WorkSpace went UNHEALTHY", None, "UNHEALTHY",
            ),
            open=StepRecord(i, job_id, 1, "restore", started_at=20.0),
            seen_state="UNHEALTHY",
        )
        for i in ids[:2]
    ]  # fmt: skip
    closed.append(
        StepChange(
            item_id=ids[2],
            close=StepRecord(ids[2], job_id, 0, "reboot", 10.0, "succeeded", 1, 20.0),
            item_state=ItemState.SUCCEEDED,
        )
    )
    await store.write_steps(closed)

    steps = await store.item_steps(job_id)
    assert [(s.item_id, s.rung, s.action, s.outcome) for s in steps] == [
        (ids[0], 0, "reboot", "failed"),
        (ids[0], 1, "restore", None),
        (ids[1], 0, "reboot", "failed"),
        (ids[1], 1, "restore", None),
        (ids[2], 0, "reboot", "succeeded"),
    ]
    assert all(s.outcome is None for s in first.values())
    items = {item.id: item for item in await store.items_page(job_id)}
    for i in ids[:2]:  # back to pending for the restore: attempts, error and evidence cleared
        item = items[i]
        assert item.state is ItemState.PENDING and item.attempts == 0
        assert item.error_code is None and item.last_state is None
        assert item.seen_state == "UNHEALTHY"
    assert items[ids[2]].state is ItemState.SUCCEEDED
    assert await store.step_counts(job_id) == {
        "reboot": {"failed": 2, "succeeded": 1},
        "restore": {"pending": 2},
    }
    assert len(await store.item_steps(job_id, [ids[1]])) == 2


async def test_the_history_reader_reads_the_same_steps(store: Store, db_url: str) -> None:
    job_id, ids = await _job_with_items(store, 2)
    await store.write_steps(
        [
            StepChange(item_id=i, open=StepRecord(i, job_id, 0, "reboot", started_at=5.0))
            for i in ids
        ]
    )
    reader = open_reader(db_url)
    if reader is None:
        pytest.skip("no plain-driver reader for this target")
    with reader:
        by_item = steps_of(reader, job_id, ids)
        counts = step_counts(reader, job_id)
    assert by_item == {s.item_id: [s] for s in await store.item_steps(job_id)}
    assert counts == {"reboot": {"pending": 2}}


class _running:
    """The group writer's task, for the duration of a block."""

    def __init__(self, writer: object) -> None:
        self.writer = writer

    async def __aenter__(self) -> None:
        import anyio

        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        self._tg.start_soon(self.writer.run)  # type: ignore[attr-defined]

    async def __aexit__(self, *exc: object) -> None:
        self.writer.close()  # type: ignore[attr-defined]
        await self._tg.__aexit__(None, None, None)
