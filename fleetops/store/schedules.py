"""Schedules in the database: recurring jobs, and the slots each has handled.

The invariant this module keeps: **a slot of a schedule becomes at most one job**, whoever
claims it (several workers, a ``schedule run-due`` from cron, both at once). It is the
database's to enforce, not a check-then-insert: :func:`claim_slot` inserts the
``(schedule, slot_at)`` row with ``INSERT … ON CONFLICT DO NOTHING`` and, only when that row was
new, the job's row, in one transaction. A claimer that loses the race inserts nothing; a crash
before the commit leaves neither row (the slot is claimed again).

A missed slot gets a ``missed`` row the same way, so it is never started by another claimer
afterwards. Every function takes the repository (:class:`fleetops.store.Store`) first.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from fleetops.errors import NotFoundError, UsageError
from fleetops.records import NewJob, ScheduleRecord
from fleetops.states import JobStatus
from fleetops.store.repo import current_user, job_row
from fleetops.store.tables import jobs, schedule_slots, schedules

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from fleetops.store.repo import Store

__all__ = [
    "MISSED",
    "STARTED",
    "add_schedule",
    "claim_slot",
    "get_schedule",
    "list_schedules",
    "record_missed",
    "remove_schedule",
    "set_paused",
    "slots_of",
    "unstarted_jobs",
]

STARTED = "started"
MISSED = "missed"


async def add_schedule(
    store: Store,
    *,
    name: str,
    cron: str,
    timezone: str,
    catch_up: float,
    job: dict[str, Any],
    source: str | None,
    replace: bool = False,
    now: float | None = None,
) -> ScheduleRecord:
    """Record a schedule; its first slot is the first after ``now``. A name taken is a
    :class:`UsageError` unless ``replace`` (the schedule then starts afresh from ``now``; the
    slots it handled stay recorded)."""
    at = time.time() if now is None else now
    values = {
        "cron": cron,
        "timezone": timezone,
        "catch_up": catch_up,
        "job": job,
        "source": source,
        "paused": False,
        "cursor": at,
    }
    try:
        async with store.transaction() as conn:
            found = await conn.execute(
                sa.select(schedules.c.name).where(schedules.c.name == name).with_for_update()
            )
            if found.first() is None:
                await conn.execute(
                    schedules.insert().values(
                        name=name, created_at=at, created_by=current_user(), **values
                    )
                )
            elif replace:
                await conn.execute(
                    schedules.update().where(schedules.c.name == name).values(**values)
                )
            else:
                raise UsageError(
                    f"a schedule named {name!r} exists (--replace to change it, or "
                    f"`fleetops schedule remove {name}`)"
                )
    except IntegrityError as exc:  # another `schedule add` of the same name, at the same time
        raise UsageError(f"a schedule named {name!r} exists") from exc
    return await get_schedule(store, name)


async def get_schedule(store: Store, name: str) -> ScheduleRecord:
    async with store.reading() as conn:
        row = (
            (await conn.execute(schedules.select().where(schedules.c.name == name)))
            .mappings()
            .first()
        )
    if row is None:
        raise NotFoundError(f"no schedule {name!r} in {store.where}")
    return ScheduleRecord.from_row(row)


async def list_schedules(store: Store) -> list[ScheduleRecord]:
    """Every schedule, by name."""
    async with store.reading() as conn:
        rows = (await conn.execute(schedules.select().order_by(schedules.c.name))).mappings().all()
    return [ScheduleRecord.from_row(row) for row in rows]


async def set_paused(store: Store, name: str, paused: bool, *, now: float | None = None) -> bool:
    """Pause or resume a schedule; whether it changed. Resuming moves its cursor to ``now``:
    the slots of the pause were skipped on purpose, not missed, and are not caught up."""
    values: dict[str, Any] = {"paused": paused}
    if not paused:
        values["cursor"] = time.time() if now is None else now
    async with store.transaction() as conn:
        result = await conn.execute(
            schedules.update()
            .where(schedules.c.name == name, schedules.c.paused.is_(not paused))
            .values(**values)
        )
    if result.rowcount == 0:
        await get_schedule(store, name)  # NotFoundError if there is none
        return False
    return True


async def remove_schedule(store: Store, name: str) -> None:
    """Delete a schedule and its record of slots (the jobs it started stay in the history)."""
    async with store.transaction() as conn:
        await conn.execute(schedule_slots.delete().where(schedule_slots.c.schedule == name))
        result = await conn.execute(schedules.delete().where(schedules.c.name == name))
    if result.rowcount == 0:
        raise NotFoundError(f"no schedule {name!r} in {store.where}")


def _insert_slots(dialect: str, rows: Sequence[dict[str, Any]]) -> Any:
    """``INSERT … ON CONFLICT (schedule, slot_at) DO NOTHING RETURNING slot_at`` in the
    store's dialect: the rows returned are the slots inserted (asyncpg reports no rowcount)."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return (
        insert(schedule_slots)
        .values(list(rows))
        .on_conflict_do_nothing(index_elements=["schedule", "slot_at"])
        .returning(schedule_slots.c.slot_at)
    )


async def _advance(conn: AsyncConnection, name: str, cursor: float, **values: Any) -> None:
    await conn.execute(
        schedules.update()
        .where(schedules.c.name == name)
        .values(cursor=sa.case((schedules.c.cursor < cursor, cursor), else_=schedules.c.cursor))
    )
    if values:
        await conn.execute(schedules.update().where(schedules.c.name == name).values(**values))


async def claim_slot(
    store: Store,
    name: str,
    slot_at: float,
    job: NewJob,
    *,
    status: JobStatus = JobStatus.PLANNED,
    now: float | None = None,
) -> bool:
    """Claim ``slot_at`` of schedule ``name`` for ``job`` (recorded with ``status``), the slot
    row and the job's row in one transaction. False, with nothing written, when the slot was
    already handled (by another claimer, or recorded missed)."""
    at = time.time() if now is None else now
    async with store.transaction() as conn:
        row = {"schedule": name, "slot_at": slot_at, "outcome": STARTED, "job_id": job.id, "at": at}
        claimed = (await conn.execute(_insert_slots(store.dialect, [row]))).all()
        if not claimed:
            return False
        await conn.execute(jobs.insert().values(**job_row(job, at, status)))
        await _advance(conn, name, slot_at, last_job_id=job.id)
    return True


async def record_missed(
    store: Store, name: str, slots: Sequence[float], *, now: float | None = None
) -> int:
    """Record ``slots`` of ``name`` as missed (those already handled stay as they were); the
    cursor moves past them. Returns how many were new."""
    if not slots:
        return 0
    at = time.time() if now is None else now
    rows = [
        {"schedule": name, "slot_at": slot, "outcome": MISSED, "job_id": None, "at": at}
        for slot in slots
    ]
    async with store.transaction() as conn:
        inserted = (await conn.execute(_insert_slots(store.dialect, rows))).all()
        await _advance(conn, name, max(slots))
    return len(inserted)


async def slots_of(store: Store, name: str, *, limit: int = 50) -> list[dict[str, Any]]:
    """The newest slots a schedule handled: ``slot_at``, ``outcome``, ``job_id``, ``at``."""
    query = (
        sa.select(
            schedule_slots.c.slot_at,
            schedule_slots.c.outcome,
            schedule_slots.c.job_id,
            schedule_slots.c.at,
        )
        .where(schedule_slots.c.schedule == name)
        .order_by(schedule_slots.c.slot_at.desc())
        .limit(limit)
    )
    async with store.reading() as conn:
        return [dict(row) for row in (await conn.execute(query)).mappings().all()]


async def unstarted_jobs(store: Store, *, created_before: float) -> list[str]:
    """Jobs a schedule claimed that nobody started (the claimer died between the claim and the
    run): still ``planned``, never planned, no lease, created before ``created_before``."""
    query = (
        sa.select(jobs.c.id)
        .join(schedule_slots, schedule_slots.c.job_id == jobs.c.id)
        .where(
            jobs.c.status == JobStatus.PLANNED.value,
            jobs.c.planned_at.is_(None),
            jobs.c.lease_owner.is_(None),
            jobs.c.created_at < created_before,
        )
        .order_by(jobs.c.created_at)
    )
    async with store.reading() as conn:
        return [str(job_id) for job_id in (await conn.execute(query)).scalars().all()]
