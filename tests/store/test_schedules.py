"""Schedules in the store, on SQLite and PostgreSQL: a slot becomes one job however many
claimers see it at once, missed slots are recorded, pause/resume/remove, and the job a slot
starts is the job resolved when the schedule was added."""

from __future__ import annotations

import anyio
import pytest

from fleetops import api
from fleetops.catalogue.specs import Where
from fleetops.errors import NotFoundError, UsageError
from fleetops.states import JobStatus
from fleetops.store import Store
from fleetops.store.schedules import get_schedule, slots_of

JOB_FILE = """\
action: reboot
targets:
  states: [UNHEALTHY]
options:
  max_errors: 3
region: eu-west-1
"""
#: 2026-12-04 12:00:00 UTC, a Friday
NOON = 1796385600.0


@pytest.fixture
def job_file(tmp_path: object) -> str:
    from pathlib import Path

    path = Path(str(tmp_path)) / "reboot.yaml"
    path.write_text(JOB_FILE)
    return str(path)


async def test_two_claimers_of_one_slot_make_one_job(
    store: Store, db_url: str, job_file: str
) -> None:
    await api.add_schedule(store, "hourly", job_file, cron="0 * * * *", now=NOON - 600)
    other = await Store.open(db_url)
    results: list[list[dict[str, object]]] = []
    try:

        async def claim(on: Store) -> None:
            results.append(await api.claim_due(on, now=NOON + 5))

        for _ in range(3):  # three rounds of two at once: the first round takes the slot
            async with anyio.create_task_group() as tg:
                tg.start_soon(claim, store)
                tg.start_soon(claim, other)
    finally:
        await other.close()
    started = [entry["job_id"] for found in results for entry in found if entry["job_id"]]
    assert len(started) == 1
    jobs = await store.list_jobs(limit=10)
    assert [job.id for job in jobs] == started
    job = jobs[0]
    assert job.started_by == "schedule:hourly"
    assert job.status is JobStatus.PLANNED
    assert (job.action, job.region, job.options["max_errors"]) == ("reboot", "eu-west-1", "3")
    assert job.targets["states"] == ["UNHEALTHY"]
    slots = await slots_of(store, "hourly")
    assert [(s["outcome"], s["job_id"]) for s in slots] == [("started", started[0])]
    assert (await get_schedule(store, "hourly")).last_job_id == started[0]


async def test_slots_past_the_catch_up_are_recorded_missed(store: Store, job_file: str) -> None:
    await api.add_schedule(
        store, "nightly", job_file, cron="0 3 * * *", catch_up="30m", now=NOON - 86400 * 3
    )
    found = await api.claim_due(store, now=NOON)
    assert found == [
        {"schedule": "nightly", "slot_at": None, "job_id": None, "late_s": None, "missed": 3}
    ]
    assert await store.list_jobs() == []
    # seen again: nothing new (the missed slots are recorded, the cursor moved on)
    assert await api.claim_due(store, now=NOON + 60) == []
    shown = await api.schedules_document(store, now=NOON)
    assert shown["schedules"][0]["next_run_at"] == "2026-12-05T03:00:00.000Z"


async def test_a_late_slot_starts_once_within_the_catch_up(store: Store, job_file: str) -> None:
    await api.add_schedule(store, "nightly", job_file, cron="0 3 * * *", now=NOON - 86400)
    # 03:00 today is 9 hours old: missed with the default catch-up of 1 h...
    assert (await api.claim_due(store, now=NOON))[0]["missed"] == 1
    await api.add_schedule(
        store, "nightly", job_file, cron="0 11 * * *", now=NOON - 86400, replace=True
    )
    # ...11:00 is an hour old: started late, once
    first = await api.claim_due(store, now=NOON)
    assert first[0]["slot_at"] == "2026-12-04T11:00:00.000Z"
    assert first[0]["late_s"] == 3600.0
    assert await api.claim_due(store, now=NOON + 1) == []


async def test_a_paused_schedule_starts_nothing_and_resumes_from_now(
    store: Store, job_file: str
) -> None:
    await api.add_schedule(store, "s", job_file, cron="*/5 * * * *", now=NOON - 3600)
    assert await api.pause_schedule(store, "s") is True
    assert await api.pause_schedule(store, "s") is False
    assert await api.claim_due(store, now=NOON) == []
    assert (await api.schedules_document(store))["schedules"][0]["paused"] is True
    assert await api.pause_schedule(store, "s", paused=False) is True
    # the slots of the pause are not caught up: the cursor is now (the real clock)
    assert await api.claim_due(store) == []
    await api.remove_schedule(store, "s")
    assert (await api.schedules_document(store)) == {"schedules": []}
    with pytest.raises(NotFoundError):
        await api.remove_schedule(store, "s")


async def test_a_name_is_taken_once(store: Store, job_file: str) -> None:
    await api.add_schedule(store, "s", job_file, cron="0 3 * * *")
    with pytest.raises(UsageError, match="exists"):
        await api.add_schedule(store, "s", job_file, cron="0 4 * * *")
    shown = await api.add_schedule(
        store, "s", job_file, cron="0 4 * * *", timezone="Europe/Berlin", replace=True
    )
    assert (shown["cron"], shown["timezone"]) == ("0 4 * * *", "Europe/Berlin")


async def test_the_job_file_is_read_at_add_time(
    store: Store, job_file: str, tmp_path: object
) -> None:
    from pathlib import Path

    await api.add_schedule(
        store, "s", job_file, cron="0 * * * *", where=Where(region=("us-west-2",)), now=NOON - 60
    )
    Path(job_file).unlink()  # moved away: the schedule still starts what was checked
    found = await api.claim_due(store, now=NOON)
    job = await store.get_job(str(found[0]["job_id"]))
    assert (job.action, job.region) == ("reboot", "us-west-2")
