"""The standard-library reader of the history commands answers exactly what the Store answers,
and steps aside (None) for anything it cannot read as the Store would."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from fleetops.errors import NotFoundError
from fleetops.records import NewJob
from fleetops.states import ItemState, JobStatus
from fleetops.store import Store
from fleetops.store.readonly import open_reader

STATES = [ItemState.SUCCEEDED, ItemState.FAILED, ItemState.SKIPPED, ItemState.PENDING]


async def _seed(store: Store) -> list[str]:
    ids = []
    for n, (action, status) in enumerate(
        [("reboot", JobStatus.FAILED), ("tag", JobStatus.SUCCEEDED), ("stop", JobStatus.PLANNED)]
    ):
        job = await store.create_job(
            NewJob(
                action=action,
                params={"set": {"team": "a"}} if action == "tag" else {},
                targets={"directory_id": "d-1234567890", "states": ["AVAILABLE"]},
                options={"rate": 2.0, "waves": [5, None]},
                region="us-east-1",
                regions=[
                    {"region": "us-east-1", "endpoint_url": "http://127.0.0.1:9"},
                    {"region": "eu-west-1", "endpoint_url": None},
                ],
            )
        )
        await store.add_items(
            [
                {
                    "job_id": job.id,
                    "workspace_id": f"ws-{n}{i:08d}",
                    "region": "us-east-1" if i % 2 else "eu-west-1",
                    "state": STATES[i % len(STATES)].value,
                    "attempts": i % 3,
                    "reason": "state STOPPED is not eligible" if i % 4 == 2 else None,
                    "error_code": "InvalidResourceStateException" if i % 4 == 1 else None,
                    "updated_at": 1_780_000_000.0 + i,
                }
                for i in range(10 + n)
            ]
        )
        await store.update_job(job.id, status=status, created_at=1_780_000_000.0 + n * 60)
        ids.append(job.id)
    return ids


async def test_the_reader_answers_what_the_store_answers(db_path: Path, store: Store) -> None:
    ids = await _seed(store)
    reader = open_reader(str(db_path))
    assert reader is not None
    with reader:
        for filters in (
            {},
            {"status": "failed"},
            {"action": "tag"},
            {"since": 1_780_000_030.0},
            {"limit": 1},
            {"started_by": "nobody"},
        ):
            assert reader.list_jobs(**filters) == await store.list_jobs(**filters), filters
        assert reader.counts_for(ids) == await store.counts_for(ids)
        assert reader.counts_for([]) == await store.counts_for([])
        for job_id in ids:
            assert reader.get_job(job_id) == await store.get_job(job_id)
            assert reader.get_job(job_id[:-3]) == await store.get_job(job_id[:-3])
            assert reader.counts(job_id) == await store.counts(job_id)
            for states in (None, [ItemState.FAILED], [ItemState.PENDING, ItemState.SKIPPED]):
                assert reader.items_page(job_id, states=states, limit=3) == (
                    await store.items_page(job_id, states=states, limit=3)
                )
                mine = [
                    i for page in reader.iter_items(job_id, states=states, page=4) for i in page
                ]
                theirs = [
                    i
                    async for page in store.iter_items(job_id, states=states, page=4)
                    for i in page
                ]
                assert mine == theirs and mine
        with pytest.raises(NotFoundError, match="ambiguous"):
            reader.get_job("j")
        with pytest.raises(NotFoundError, match="no job"):
            reader.get_job("x-nope")


async def test_the_reader_never_writes(db_path: Path, store: Store) -> None:
    await _seed(store)
    reader = open_reader(f"sqlite:///{db_path}")
    assert reader is not None
    with reader, pytest.raises(sqlite3.OperationalError, match="readonly"):
        reader.conn.execute("DELETE FROM jobs")


async def test_the_reader_steps_aside_for_what_it_cannot_read(
    tmp_path: Path, db_path: Path, store: Store
) -> None:
    assert open_reader("postgresql://u@127.0.0.1:5432/fleet") is None
    assert open_reader(str(tmp_path / "missing.db")) is None
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE notes (x)")
    assert open_reader(str(foreign)) is None
    (tmp_path / "text.db").write_text("not a database")
    assert open_reader(str(tmp_path / "text.db")) is None
    await _seed(store)
    with sqlite3.connect(db_path) as conn:  # an older schema: the Store migrates it first
        conn.execute("UPDATE alembic_version SET version_num = '0001'")
    assert open_reader(str(db_path)) is None
