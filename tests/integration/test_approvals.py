"""The two-person rule in the façade, on the in-memory store and on SQLite alike: who may approve
what, and that every way a stored plan can start (start, resume, a worker) meets the one check
before any client is opened."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from fleetops import api
from fleetops.errors import AwaitsApprovalError, UsageError
from fleetops.queue.worker import WorkerConfig, WorkerRuntime
from fleetops.states import ItemState, JobStatus
from fleetops.store import NewJob, Store
from fleetops.store.memory import MemoryStore


@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    if request.param == "memory":
        yield MemoryStore()
        return
    opened = await Store.open(tmp_path / "approvals.db")
    try:
        yield opened
    finally:
        await opened.close()


async def stored_plan(store: Any, *, required: bool = True, by: str | None = "alice") -> str:
    job = await store.create_job(
        NewJob(
            action="reboot",
            params={},
            targets={"workspace_ids": ["ws-0000000001"]},
            options={},
            region="us-east-1",
            endpoint_url="http://127.0.0.1:9",  # nothing listens: a call would fail loudly
            started_by=by,
            require_approval=required,
        )
    )
    await store.add_items(
        [
            {
                "job_id": job.id,
                "workspace_id": "ws-0000000001",
                "region": "us-east-1",
                "state": ItemState.PENDING.value,
                "updated_at": time.time(),
            }
        ]
    )
    await store.update_job(job.id, planned_at=time.time())
    return str(job.id)


async def test_every_way_in_refuses_an_unapproved_plan(store: Any) -> None:
    job_id = await stored_plan(store)
    with pytest.raises(AwaitsApprovalError, match="awaits approval: someone other than alice"):
        await api.startable_plan(store, job_id)
    for start in (api.start_job, api.resume_job, api.run_job):
        with pytest.raises(AwaitsApprovalError, match="awaits approval"):
            await start(store, job_id)
    runtime = WorkerRuntime(store, app=None, config=WorkerConfig())  # type: ignore[arg-type]
    await runtime.run(job_id)  # logged and left alone: still a plan awaiting approval
    job = await store.get_job(job_id)
    assert job.status is JobStatus.PLANNED and job.message is None and runtime.ran == []
    assert (await store.counts(job_id))[ItemState.PENDING] == 1


async def test_only_someone_other_than_the_planner_approves_and_only_once(store: Any) -> None:
    job_id = await stored_plan(store)
    with pytest.raises(UsageError, match=r"alice planned job .*someone else"):
        await api.approve_job(store, job_id, by="alice")
    with pytest.raises(UsageError, match="who is approving"):
        await api.approve_job(store, job_id, by="  ")
    with pytest.raises(UsageError, match="at most 1000"):
        await api.approve_job(store, job_id, by="bob", comment="x" * 1001)
    assert (await store.get_job(job_id)).approved_by is None

    before = time.time()
    job = await api.approve_job(store, job_id, by="bob", comment="  CHG-9  ")
    assert (job.approved_by, job.approval_comment) == ("bob", "CHG-9")
    assert job.approved_at is not None and job.approved_at >= before
    assert api.approval_error(job) is None
    assert (await api.startable_plan(store, job_id)).id == job_id
    with pytest.raises(UsageError, match="already approved by bob"):
        await api.approve_job(store, job_id, by="carol")
    assert (await store.get_job(job_id)).approved_by == "bob"


async def test_what_cannot_be_approved(store: Any) -> None:
    free = await stored_plan(store, required=False)
    with pytest.raises(UsageError, match="needs no approval"):
        await api.approve_job(store, free, by="bob")
    assert api.approval_error(await store.get_job(free)) is None

    nobody = await stored_plan(store, by=None)
    if (await store.get_job(nobody)).started_by is None:  # the SQL store records the OS user
        with pytest.raises(UsageError, match="records no planner"):
            await api.approve_job(store, nobody, by="bob")

    started = await stored_plan(store)
    await store.update_job(started, status=JobStatus.INTERRUPTED)
    with pytest.raises(UsageError, match="is interrupted, not a complete stored plan"):
        await api.approve_job(store, started, by="bob")
    with pytest.raises(AwaitsApprovalError):  # and resuming it is no way around the rule
        await api.resume_job(store, started)
