"""Copying a job history from one database to another (``fleetops db copy``).

A team that moves from a SQLite file to a shared PostgreSQL keeps its history: jobs, items and
events are copied with their ids, in pages (a million items never sit in memory), inside one
transaction on the target. Before that transaction commits, the rows of every table and of every
job are counted on both sides; any difference aborts the copy and leaves the target as it was.
A target that already holds any of the jobs is refused before anything is written.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from fleetops.errors import StoreConfigError, StoreError
from fleetops.store.bulk import insert_rows, reset_sequences
from fleetops.store.repo import Store
from fleetops.store.tables import events, items, jobs

__all__ = ["CopyReport", "copy_database", "copy_history"]

log = logging.getLogger(__name__)

#: Rows read and written per round trip.
PAGE = 5000
#: Job ids per IN (...) list.
CHUNK = 500


@dataclass(frozen=True)
class CopyReport:
    source: str
    target: str
    jobs: int
    items: int
    events: int
    seconds: float
    per_job: dict[str, tuple[int, int]] = field(default_factory=dict)  # job → (items, events)

    def as_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "target": self.target,
            "jobs": self.jobs,
            "items": self.items,
            "events": self.events,
            "seconds": round(self.seconds, 3),
            "verified": True,
        }


def _chunks(values: Sequence[str], size: int = CHUNK) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


async def _job_ids(conn: AsyncConnection) -> list[str]:
    query = sa.select(jobs.c.id).order_by(jobs.c.created_at, jobs.c.id)
    return [str(row[0]) for row in (await conn.execute(query)).all()]


async def _per_job(
    conn: AsyncConnection, table: sa.Table, job_ids: Sequence[str]
) -> dict[str, int]:
    found: dict[str, int] = {}
    for chunk in _chunks(job_ids):
        query = (
            sa.select(table.c.job_id, sa.func.count())
            .where(table.c.job_id.in_(list(chunk)))
            .group_by(table.c.job_id)
        )
        for job_id, count in (await conn.execute(query)).all():
            found[str(job_id)] = int(count)
    return found


async def _refuse_running(conn: AsyncConnection, where: str) -> None:
    query = (
        sa.select(jobs.c.id, jobs.c.lease_owner)
        .where(jobs.c.lease_owner.is_not(None), jobs.c.lease_expires_at > time.time())
        .limit(1)
    )
    row = (await conn.execute(query)).first()
    if row is not None:
        raise StoreConfigError(
            f"job {row[0]} in {where} is running (held by {row[1]}): "
            "copy once it has finished or been stopped"
        )


async def _present(conn: AsyncConnection, job_ids: Sequence[str]) -> list[str]:
    """Which of ``job_ids`` the database holds."""
    present: list[str] = []
    for chunk in _chunks(job_ids):
        query = sa.select(jobs.c.id).where(jobs.c.id.in_(list(chunk)))
        present.extend(str(row[0]) for row in (await conn.execute(query)).all())
    return present


async def _refuse_existing(conn: AsyncConnection, job_ids: Sequence[str], where: str) -> None:
    present = await _present(conn, job_ids)
    if present:
        more = f" (and {len(present) - 1} more)" if len(present) > 1 else ""
        raise StoreConfigError(
            f"{where} already holds job {sorted(present)[0]}{more}: nothing copied"
        )


async def _copy_table(
    source: Store,
    target: AsyncConnection,
    table: sa.Table,
    job_ids: Sequence[str] | None = None,
    progress: Callable[[str, int], None] | None = None,
) -> int:
    """Every row of ``table`` (or of ``job_ids`` for jobs) in id order, a page at a time."""
    key = table.c.id
    copied = 0
    after: object = None
    while True:
        query = sa.select(table).order_by(key).limit(PAGE)
        if after is not None:
            query = query.where(key > after)
        async with source.reading() as conn:
            rows = [dict(row) for row in (await conn.execute(query)).mappings().all()]
        if not rows:
            return copied
        after = rows[-1]["id"]
        if table is jobs:
            for row in rows:
                row["parent_id"] = None  # set once every job is there (parents first or not)
        await insert_rows(target, table, rows)
        copied += len(rows)
        if progress is not None:
            progress(table.name, copied)


async def _link_parents(source: Store, target: AsyncConnection) -> None:
    query = sa.select(jobs.c.id, jobs.c.parent_id).where(jobs.c.parent_id.is_not(None))
    async with source.reading() as conn:
        links = (await conn.execute(query)).all()
    for job_id, parent_id in links:
        await target.execute(jobs.update().where(jobs.c.id == job_id).values(parent_id=parent_id))


async def _verify(
    source: Store, target: AsyncConnection, job_ids: Sequence[str], target_where: str
) -> dict[str, tuple[int, int]]:
    """Rows per table and per job, equal on both sides, or :class:`StoreError`."""
    async with source.reading() as conn:
        want_items = await _per_job(conn, items, job_ids)
        want_events = await _per_job(conn, events, job_ids)
        want_jobs = len(await _job_ids(conn))
    got_items = await _per_job(target, items, job_ids)
    got_events = await _per_job(target, events, job_ids)
    got_jobs = len(await _present(target, job_ids))
    problems = []
    if got_jobs != want_jobs or want_jobs != len(job_ids):
        problems.append(f"jobs {got_jobs} of {want_jobs}")
    for name, want, got in (("items", want_items, got_items), ("events", want_events, got_events)):
        if sum(want.values()) != sum(got.values()):
            problems.append(f"{name} {sum(got.values())} of {sum(want.values())}")
        for job_id in job_ids:
            if want.get(job_id, 0) != got.get(job_id, 0):
                problems.append(
                    f"job {job_id} {name} {got.get(job_id, 0)} of {want.get(job_id, 0)}"
                )
                break
    if problems:
        raise StoreError(
            f"copy to {target_where} not verified ({'; '.join(problems)}; the source changed "
            "while copying?): nothing copied"
        )
    return {j: (want_items.get(j, 0), want_events.get(j, 0)) for j in job_ids}


async def copy_history(
    source: Store,
    target: Store,
    *,
    progress: Callable[[str, int], None] | None = None,
) -> CopyReport:
    """Copy every job, item and event of ``source`` into ``target`` (both open, at head)."""
    if source.where == target.where:
        raise StoreConfigError(f"--from and --to are the same database ({source.where})")
    started = time.perf_counter()
    async with source.reading() as conn:
        await _refuse_running(conn, source.where)
        job_ids = await _job_ids(conn)
    async with target.transaction() as conn:
        await _refuse_existing(conn, job_ids, target.where)
        copied_jobs = await _copy_table(source, conn, jobs, progress=progress)
        await _link_parents(source, conn)
        copied_items = await _copy_table(source, conn, items, progress=progress)
        copied_events = await _copy_table(source, conn, events, progress=progress)
        await reset_sequences(conn, [items, events])
        per_job = await _verify(source, conn, job_ids, target.where)
    report = CopyReport(
        source=source.where,
        target=target.where,
        jobs=copied_jobs,
        items=copied_items,
        events=copied_events,
        seconds=time.perf_counter() - started,
        per_job=per_job,
    )
    log.info(
        "copied %d jobs, %d items, %d events from %s to %s in %.1f s (verified per job)",
        report.jobs,
        report.items,
        report.events,
        report.source,
        report.target,
        report.seconds,
    )
    return report


async def copy_database(
    source: str, target: str, *, progress: Callable[[str, int], None] | None = None
) -> CopyReport:
    """``fleetops db copy --from SOURCE --to TARGET``: the source must exist (it is brought to
    this fleetops's schema like any command would); the target's schema is created if needed."""
    src = await Store.open(source, create=False)
    try:
        dst = await Store.open(target)
        try:
            return await copy_history(src, dst, progress=progress)
        finally:
            await dst.close()
    finally:
        await src.close()
