"""``db copy``: a SQLite history into another SQLite file or into PostgreSQL, ids kept, counts
verified, nothing written when refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fleetops.errors import StoreConfigError, StoreError
from fleetops.records import EventRow, NewJob
from fleetops.states import ItemState, JobStatus
from fleetops.store import Store
from fleetops.store import copy as copy_mod
from fleetops.store.copy import copy_database


async def seed(path: Path) -> dict[str, Any]:
    """Three jobs (one a retry of another), 23 items, 5 events, in a SQLite file."""
    store = await Store.open(path)
    try:
        first = await store.create_job(
            NewJob(
                action="reboot",
                params={},
                targets={"ids": ["ws-1"]},
                options={"rate": 2},
                region="eu-west-1",
                id="j1",
                started_by="alice",
                accounts=["111122223333"],
            )
        )
        await store.update_job(first.id, status=JobStatus.FAILED, created_at=100.0)
        retry = await store.create_job(
            NewJob(
                action="reboot",
                params={},
                targets={},
                options={},
                region="eu-west-1",
                parent_id="j1",
                id="j2",
                started_by="bob",
            )
        )
        other = await store.create_job(
            NewJob(
                action="rebuild",
                params={},
                targets={},
                options={},
                region="us-east-1",
                id="j0",
                started_by="carol",
            )
        )
        await store.update_job(other.id, created_at=50.0)
        for job_id, count in (("j1", 11), ("j2", 4), ("j0", 8)):
            await store.add_items(
                [
                    {
                        "job_id": job_id,
                        "workspace_id": f"ws-{job_id}-{n}",
                        "region": "eu-west-1",
                        "state": ItemState.FAILED.value if n % 3 else ItemState.SUCCEEDED.value,
                        "error_code": "InvalidResourceStateException" if n % 3 else None,
                        "account": "111122223333" if job_id == "j1" else None,
                        "updated_at": 100.0 + n,
                    }
                    for n in range(count)
                ]
            )
        writer = store.writer()
        writer.close()
        await writer.write(
            [],
            [
                EventRow(job_id, "eu-west-1", "RebootWorkspaces", ["ws-1"], "ok", None, "r", 1, 9)
                for job_id in ("j1", "j1", "j1", "j2", "j0")
            ],
        )
        return {"jobs": ["j0", "j1", "j2"], "retry": retry.id}
    finally:
        await store.close()


async def snapshot(where: str) -> dict[str, Any]:
    store = await Store.open(where, create=False)
    try:
        jobs = {j.id: j for j in await store.list_jobs(limit=100)}
        found = {
            job_id: [item async for page in store.iter_items(job_id) for item in page]
            for job_id in jobs
        }
        events = {job_id: await store.events_for(job_id) for job_id in jobs}
        return {"jobs": jobs, "items": found, "events": events}
    finally:
        await store.close()


async def test_copy_keeps_every_row_and_id(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "old.db"
    await seed(source)
    monkeypatch.setattr(copy_mod, "PAGE", 5)  # several pages per table
    pages: list[tuple[str, int]] = []
    report = await copy_database(
        f"sqlite:///{source}", db_url, progress=lambda t, n: pages.append((t, n))
    )
    assert (report.jobs, report.items, report.events) == (3, 23, 5)
    assert report.per_job == {"j0": (8, 1), "j1": (11, 3), "j2": (4, 1)}
    assert ("items", 5) in pages and ("items", 23) in pages
    before, after = await snapshot(str(source)), await snapshot(db_url)
    assert after == before  # records compare every field: ids, floats, JSON, who started
    assert after["jobs"]["j2"].parent_id == "j1"
    assert after["jobs"]["j1"].accounts == ("111122223333",)
    # the target's own ids continue after the copied ones
    target = await Store.open(db_url)
    try:
        await target.add_items(
            [
                {
                    "job_id": "j2",
                    "workspace_id": "ws-new",
                    "region": "eu-west-1",
                    "state": "pending",
                    "updated_at": 1.0,
                }
            ]
        )
        newest = (await target.items_page("j2", states=[ItemState.PENDING]))[0]
        assert newest.id > max(i.id for found in before["items"].values() for i in found)
    finally:
        await target.close()


async def test_a_target_holding_any_of_the_jobs_is_refused(tmp_path: Path, db_url: str) -> None:
    source = tmp_path / "old.db"
    await seed(source)
    await copy_database(str(source), db_url)
    before = await snapshot(db_url)
    with pytest.raises(StoreConfigError, match=r"already holds job j0 \(and 2 more\)") as caught:
        await copy_database(str(source), db_url)
    assert caught.value.exit_code == 2
    assert await snapshot(db_url) == before


async def test_a_failed_verification_leaves_the_target_empty(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "old.db"
    await seed(source)
    real = copy_mod.insert_rows

    async def lossy(conn: Any, table: Any, rows: Any) -> int:
        if table.name == "items":
            rows = rows[:-1]  # one item lost on the way
        return await real(conn, table, rows)

    monkeypatch.setattr(copy_mod, "insert_rows", lossy)
    with pytest.raises(StoreError, match=r"not verified.*items 22 of 23") as caught:
        await copy_database(str(source), db_url)
    assert "\n" not in str(caught.value)
    target = await Store.open(db_url)
    try:
        assert await target.list_jobs() == []
    finally:
        await target.close()


async def test_refused_sources(tmp_path: Path, db_url: str) -> None:
    missing = tmp_path / "missing.db"
    with pytest.raises(StoreConfigError, match="no fleetops database"):
        await copy_database(str(missing), db_url)
    assert not missing.exists()
    source = tmp_path / "old.db"
    await seed(source)
    with pytest.raises(StoreConfigError, match="same database"):
        await copy_database(str(source), f"sqlite:///{source}")
    store = await Store.open(source)
    try:
        await store.acquire_lease("j1", "elsewhere.example:1:x", 600)
    finally:
        await store.close()
    with pytest.raises(StoreConfigError, match=r"job j1 .* is running"):
        await copy_database(str(source), db_url)
    target = await Store.open(db_url)
    try:
        assert await target.list_jobs() == []
    finally:
        await target.close()
