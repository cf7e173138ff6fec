"""The history commands that answer at once: ``jobs list`` and ``jobs show``, and the checks of
their flags, with no typer, rich or SQLAlchemy at import.

The typer commands of :mod:`fleetops.cli.jobs` and the fast path of :mod:`fleetops.cli.main` (which
answers these two commands before typer is even imported) both call :func:`list_jobs` and
:func:`show_job` here: one implementation, two ways in.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from fleetops.cli.common import fail, out_console, print_json, resolve_db, run_async, with_store
from fleetops.errors import FleetOpsError, UsageError
from fleetops.states import ItemState, JobStatus

if TYPE_CHECKING:
    from fleetops.records import JobHistory
    from fleetops.store import JobRecord, Store

__all__ = [
    "check_flag",
    "existing_db",
    "list_jobs",
    "parse_since",
    "parse_states",
    "read_or_fail",
    "show_job",
]

T = TypeVar("T")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def existing_db() -> str:
    """The database to read, which must already exist (reading never creates one)."""
    from fleetops.store.readonly import sqlite_file

    where = resolve_db()
    path = sqlite_file(where)
    if path is None:  # a URL: the store's parser says what it names, or what is wrong with it
        from fleetops.store.pgreader import conninfo

        if conninfo(where) is not None:  # PostgreSQL: the reader, else the store, says
            return where
        from fleetops.store.engine import database_url

        try:
            _, path = database_url(where)
        except FleetOpsError as exc:
            fail(str(exc), exc.exit_code)
    if path is not None and not path.exists():
        fail(f"no fleetops database at {path} (no job has run yet; see --db / FLEETOPS_DB)")
    return where


def parse_since(text: str, *, now: float | None = None) -> float:
    """``2h``, ``30m``, ``7d``, ``1w``, ``90s`` ago, or an ISO date/time (UTC unless it says)."""
    match = _DURATION.match(text)
    if match:
        amount, unit = float(match.group(1)), match.group(2).lower()
        reference = datetime.now(UTC).timestamp() if now is None else now
        return reference - amount * _UNIT_SECONDS[unit]
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(
            f"--since {text!r} is neither a duration (30m, 2h, 7d, 1w) nor an ISO date/time"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def parse_states(values: list[str] | None) -> list[ItemState] | None:
    """``--state failed --state in_doubt`` or ``--state failed,in_doubt`` (case-insensitive)."""
    if not values:
        return None
    found: list[ItemState] = []
    for value in values:
        for part in value.split(","):
            name = part.strip().lower().replace("-", "_")
            if not name:
                continue
            try:
                state = ItemState(name)
            except ValueError:
                known = ", ".join(s.value for s in ItemState)
                raise UsageError(f"unknown item state {part.strip()!r} (one of {known})") from None
            if state not in found:
                found.append(state)
    return found or None


def _parse_status(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return JobStatus(value.strip().lower()).value
    except ValueError:
        known = ", ".join(s.value for s in JobStatus)
        raise UsageError(f"unknown job status {value!r} (one of {known})") from None


def read_or_fail(call: Callable[[], T]) -> T:
    """A read through a history reader: a fleetops error (no such job) is one line and its
    exit code, as through the Store."""
    try:
        return call()
    except FleetOpsError as exc:
        fail(str(exc), exc.exit_code)


def check_flag(fn: Any, *args: Any) -> Any:
    """Validate a flag before any I/O: a bad value is one line and exit 2."""
    try:
        return fn(*args)
    except UsageError as exc:
        fail(str(exc), exc.exit_code)


def list_jobs(
    *,
    status: str | None = None,
    action: str | None = None,
    since: str | None = None,
    limit: int = 20,
    by: str | None = None,
    as_json: bool = False,
) -> None:
    """``jobs list``: jobs, newest first."""
    wanted_status = check_flag(_parse_status, status)
    created_since = check_flag(parse_since, since) if since is not None else None
    if limit < 1:
        fail(f"--limit must be at least 1, not {limit}")
    where = existing_db()

    from fleetops.report.documents import job_json  # no rich: --json prints no table
    from fleetops.store.readonly import open_reader

    filters: dict[str, Any] = {
        "status": wanted_status,
        "action": action.strip().lower() if action else None,
        "since": created_since,
        "limit": limit,
        "started_by": by.strip() if by else None,
    }
    reader = open_reader(where)  # a SQLite file: read with sqlite3 alone (fast start)
    unverified: dict[str, int] = {}
    if reader is not None:
        with reader:
            found = reader.list_jobs(**filters)
            counts = reader.counts_for([job.id for job in found])
            if as_json:
                from fleetops.store.history_read import unverified_counts

                unverified = unverified_counts(reader, [job.id for job in found])
    else:

        async def use(store: Store) -> tuple[list[JobRecord], dict[str, dict[str, int]]]:
            from fleetops.store.history import unverified_items

            jobs = await store.list_jobs(**filters)
            for job in jobs if as_json else ():
                group = await unverified_items(store, job.id, examples=1)
                unverified[job.id] = group.count if group is not None else 0
            return jobs, await store.counts_for([job.id for job in jobs])

        found, counts = run_async(lambda: with_store(use, where))
    if as_json:
        print_json([job_json(job, counts[job.id], unverified.get(job.id, 0)) for job in found])
    else:
        from fleetops.report.text import render_job_list

        render_job_list(out_console, found, counts)


def show_job(job: str, *, as_json: bool = False) -> None:
    """``jobs show``: status, counts, timing, throughput, errors by code, in-doubt items, calls."""
    from fleetops.store.readonly import open_reader

    where = existing_db()
    reader = open_reader(where)  # this fleetops's schema: the Store's queries without SQLAlchemy
    if reader is not None:
        from fleetops.store import history_read

        with reader:
            history = read_or_fail(lambda: history_read.job_history(reader, reader.get_job(job)))
    else:
        from fleetops.store.history import job_history

        async def use(store: Store) -> JobHistory:
            return await job_history(store, await store.get_job(job))

        history = run_async(lambda: with_store(use, where))
    if as_json:
        from fleetops.report.documents import history_json

        print_json(history_json(history))
    else:
        from fleetops.report.text import render_job

        render_job(out_console, history)
