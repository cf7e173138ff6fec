"""Recurring maintenance through the façade: schedules (added, checked, listed, paused,
removed, their due slots claimed), the notifications of a job's end, and the maintenance
windows a run waits for."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fleetops.errors import UsageError
from fleetops.states import JobStatus

if TYPE_CHECKING:
    from fleetops.catalogue.specs import JobSpec, Where
    from fleetops.engine.runner import StopSignal
    from fleetops.records import JobRecord
    from fleetops.store import Store


#: A schedule's name: what `schedule pause NAME` and `started_by: schedule:NAME` carry.
_SCHEDULE_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"


def schedule_job(spec: JobSpec) -> dict[str, Any]:
    """The fields of the job a schedule starts at each slot, from the spec resolved at
    ``schedule add`` (the job file is read then, once: see :func:`add_schedule`)."""
    conn = spec.connection
    return {
        "action": spec.action,
        "params": dict(spec.params),
        "targets": spec.targets.as_dict(),
        "options": spec.options.as_dict(),
        "region": conn.region,
        "profile": conn.profile,
        "endpoint_url": conn.endpoint_url,
        "regions": [{"region": c.region, "endpoint_url": c.endpoint_url} for c in spec.connections],
        "accounts": list(spec.accounts) if spec.accounts else None,
        "assume": spec.assume.as_dict() if spec.accounts and spec.assume else None,
    }


def check_schedule(
    name: str, job_file: str, *, cron: str, timezone: str | None, catch_up: str | None, where: Where
) -> tuple[Any, float, dict[str, Any]]:
    """Everything ``schedule add`` is given, checked before anything is written: the parsed
    cron (:class:`fleetops.catalogue.cron.Cron`), the catch-up in seconds, and the job's fields.
    A bad name, cron, time zone, duration or job file is a :class:`UsageError`."""
    import re

    from fleetops.catalogue.cron import DEFAULT_CATCH_UP, parse_cron, parse_duration
    from fleetops.catalogue.specs import RunRequest, build_spec, is_job_file

    if not re.fullmatch(_SCHEDULE_NAME, name):
        raise UsageError(
            f"schedule name {name!r}: letters, digits, '.', '_' and '-', at most 64 characters"
        )
    parsed = parse_cron(cron, timezone)
    seconds = DEFAULT_CATCH_UP if catch_up is None else parse_duration(catch_up, what="--catch-up")
    if not is_job_file(job_file):
        raise UsageError(f"{job_file!r} is not a job file (jobs/NAME.yaml)")
    spec = build_spec(RunRequest(action=job_file, where=where))
    return parsed, seconds, schedule_job(spec)


async def add_schedule(
    store: Store,
    name: str,
    job_file: str,
    *,
    cron: str,
    timezone: str | None = None,
    catch_up: str | None = None,
    where: Where | None = None,
    replace: bool = False,
    now: float | None = None,
) -> dict[str, Any]:
    """Record a schedule that starts ``job_file``'s job at every slot of ``cron``.

    The job file is read and resolved now, and the job's fields (action, params, targets,
    options, regions) are what the schedule keeps: the job that runs at 03:00 on Sunday is the
    one that was checked when the schedule was added, a file edited later changes nothing
    until ``schedule add --replace``, and a file moved or deleted cannot make a night's run fail.
    Returns the schedule as ``schedule list --json`` shows it."""
    from fleetops.catalogue.specs import Where
    from fleetops.store.schedules import add_schedule as add

    parsed, seconds, job = check_schedule(
        name, job_file, cron=cron, timezone=timezone, catch_up=catch_up, where=where or Where()
    )
    record = await add(
        store,
        name=name,
        cron=parsed.expression,
        timezone=parsed.timezone,
        catch_up=seconds,
        job=job,
        source=job_file,
        replace=replace,
        now=now,
    )
    return schedule_json(record, now=now)


def schedule_json(record: Any, *, now: float | None = None) -> dict[str, Any]:
    """One schedule as ``schedule list --json`` shows it (times UTC, ``…Z``)."""
    import time

    from fleetops.catalogue.cron import format_duration, parse_cron
    from fleetops.records import iso

    at = time.time() if now is None else now
    next_run: float | None = None
    if not record.paused:
        cron = parse_cron(record.cron, record.timezone)
        next_run = cron.next_after(record.cursor)
        if at - next_run > record.catch_up:  # too late to start: it will be missed
            next_run = cron.next_after(at)
    return {
        "name": record.name,
        "cron": record.cron,
        "timezone": record.timezone,
        "next_run_at": iso(next_run),
        "paused": record.paused,
        "last_job_id": record.last_job_id,
        "catch_up": format_duration(record.catch_up),
        "action": record.job.get("action"),
        "source": record.source,
    }


async def schedules_document(store: Store, *, now: float | None = None) -> dict[str, Any]:
    """``schedule list --json``: ``{"schedules": [...]}``, by name."""
    from fleetops.store.schedules import list_schedules

    return {"schedules": [schedule_json(r, now=now) for r in await list_schedules(store)]}


async def pause_schedule(store: Store, name: str, *, paused: bool = True) -> bool:
    """Pause (or, with ``paused=False``, resume) a schedule; whether it changed. A resumed
    schedule starts with its next slot: what fell in the pause is not caught up."""
    from fleetops.store.schedules import set_paused

    return await set_paused(store, name, paused)


async def remove_schedule(store: Store, name: str) -> None:
    """Delete a schedule (the jobs it started stay in the history)."""
    from fleetops.store.schedules import remove_schedule as remove

    await remove(store, name)


async def claim_due(
    store: Store, *, now: float | None = None, status: JobStatus = JobStatus.PLANNED
) -> list[dict[str, Any]]:
    """Claim what is due now: for each schedule not paused, its newest slot since the last one
    handled becomes a job (``started_by`` ``schedule:NAME``, recorded with ``status``) if it is
    no older than the schedule's catch-up; older slots are recorded missed. A slot another
    claimer took first is left to it (the database decides: see fleetops.store.schedules).
    Returns one entry per schedule that did something: ``schedule``, ``slot_at``, ``job_id``
    (None: nothing started), ``late_s``, ``missed``."""
    import time

    from fleetops.catalogue.cron import due, parse_cron
    from fleetops.records import NewJob, iso
    from fleetops.store.schedules import claim_slot, list_schedules, record_missed

    at = time.time() if now is None else now
    done: list[dict[str, Any]] = []
    for record in await list_schedules(store):
        if record.paused:
            continue
        todo = due(parse_cron(record.cron, record.timezone), record.cursor, at, record.catch_up)
        missed = await record_missed(store, record.name, todo.missed, now=at)
        job_id = None
        if todo.start is not None:
            job = NewJob(**record.job, started_by=f"schedule:{record.name}")
            if await claim_slot(store, record.name, todo.start, job, status=status, now=at):
                job_id = job.id
        if job_id is not None or missed:
            done.append(
                {
                    "schedule": record.name,
                    "slot_at": iso(todo.start) if job_id else None,
                    "job_id": job_id,
                    "late_s": round(todo.late_by, 1) if job_id else None,
                    "missed": missed,
                }
            )
    return done


async def unstarted_scheduled_jobs(store: Store, *, now: float | None = None) -> list[str]:
    """Jobs a schedule claimed more than a minute ago that nobody started (their claimer died
    between the claim and the run): ``schedule run-due`` runs them."""
    import time

    from fleetops.store.schedules import unstarted_jobs

    at = time.time() if now is None else now
    return await unstarted_jobs(store, created_before=at - 60)


async def notify_end(store: Store, job: JobRecord) -> list[dict[str, Any]]:
    """Tell the job's ``--notify`` targets that this run of it ended (succeeded, failed,
    aborted, cancelled, interrupted, items in doubt), and record each delivery on the job; a
    job still planned, queued or running is not told. Never raises, never changes the job."""
    targets = job.options.get("notify") or ()
    if not targets:
        return []
    from fleetops.engine.notify import notify_end as tell

    return await tell(store, job, list(targets))


async def until_window(job: JobRecord, stop: StopSignal) -> bool:
    """Wait until a ``waiting`` job's next window opens (its ``next_window_at``); False when
    ``stop`` came first (the job stays ``waiting``: ``jobs resume`` carries on)."""
    import logging

    import anyio

    from fleetops.engine import windows as window_time
    from fleetops.records import iso

    opening = job.next_window_at or window_time.clock()
    logging.getLogger("fleetops.api").warning(
        "job %s is outside its maintenance window: waiting until %s "
        "(Ctrl-C leaves it waiting; `fleetops jobs resume %s` carries on)",
        job.id,
        iso(opening),
        job.id,
    )
    while not stop.is_set:
        left = opening - window_time.clock()
        if left <= 0:
            return True
        with anyio.move_on_after(min(left, 1.0)):
            await stop.event.wait()
    return False
