"""The history commands that answer at once: ``jobs list`` and ``jobs show``, and the checks of
their flags, with no typer, rich or SQLAlchemy at import.

The typer commands of :mod:`fleetops.cli.jobs` and the fast path of :mod:`fleetops.cli.main` (which
answers these two commands before typer is even imported) both call :func:`list_jobs` and
:func:`show_job` here: one implementation, two ways in.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fleetops.cli.common import fail, out_console, print_json, resolve_db
from fleetops.errors import FleetOpsError, UsageError
from fleetops.states import ItemState, JobStatus

if TYPE_CHECKING:
    from fleetops.api import History

__all__ = [
    "LIST_FLAGS",
    "ROOT_FLAGS",
    "SHOW_FLAGS",
    "Flag",
    "check_flag",
    "existing_db",
    "list_jobs",
    "parse_since",
    "parse_states",
    "reading",
    "show_job",
]


@dataclass(frozen=True)
class Flag:
    """One flag of the commands the console script may answer before typer is imported:
    declared once here, read by that fast path (:mod:`fleetops.cli.main`) and made a typer
    option by :meth:`option` for the typer commands."""

    keyword: str  # the command function's parameter
    decls: tuple[str, ...]  # its spellings, the long one first
    takes_value: bool
    help: str
    metavar: str | None = None

    @property
    def spellings(self) -> dict[str, bool]:
        return dict.fromkeys(self.decls, self.takes_value)

    def option(self, **settings: Any) -> Any:
        """The typer option of this declaration (typer imported here, when a typer command is
        built: the fast path never calls this)."""
        import typer

        return typer.Option(*self.decls, help=self.help, metavar=self.metavar, **settings)


JSON_FLAG = Flag("as_json", ("--json",), False, "One JSON document on stdout.")
#: ``jobs list``
LIST_FLAGS = (
    Flag("status", ("--status",), True, "Only jobs in this status."),
    Flag("action", ("--action",), True, "Only this action."),
    Flag("since", ("--since",), True, "Created since: a duration ago (2h, 7d) or an ISO time."),
    Flag("limit", ("--limit",), True, "At most N jobs."),
    Flag("by", ("--by",), True, "Only jobs this OS user started.", metavar="USER"),
    JSON_FLAG,
)
#: ``jobs show``
SHOW_FLAGS = (JSON_FLAG,)
#: The root options the fast path applies (any other sends the command line to typer).
ROOT_FLAGS = (
    Flag(
        "db",
        ("--db",),
        True,
        "Database: a file, sqlite:///PATH or postgresql://USER@HOST:PORT/DB "
        "(default: $FLEETOPS_DB, else a file in the user data dir).",
    ),
    Flag("quiet", ("--quiet", "-q"), False, "No progress output."),
)


def flag(flags: tuple[Flag, ...], keyword: str) -> Flag:
    """The declaration of ``keyword`` among ``flags``."""
    return next(f for f in flags if f.keyword == keyword)


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def existing_db() -> str:
    """The database to read, which must already exist (reading never creates one)."""
    from fleetops.api import require_database

    where = resolve_db()
    try:
        require_database(where)
    except FleetOpsError as exc:
        fail(str(exc), exc.exit_code)
    return where


@contextmanager
def reading(where: str) -> Iterator[History]:
    """The history at ``where``, read through the façade's reader; a fleetops error on the
    way (no such job, a database this version cannot read) is one line and its exit code."""
    from fleetops.api import read_history

    try:
        with read_history(where) as reader:
            yield reader
    except FleetOpsError as exc:
        fail(str(exc), exc.exit_code)


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

    filters: dict[str, Any] = {
        "status": wanted_status,
        "action": action.strip().lower() if action else None,
        "since": created_since,
        "limit": limit,
        "started_by": by.strip() if by else None,
    }
    if as_json:  # no rich: a document prints no table
        from fleetops.api import jobs_document

        with reading(where) as reader:
            document = jobs_document(reader, **filters)
        print_json(document)
        return
    with reading(where) as reader:
        found = reader.list_jobs(**filters)
        counts = reader.counts_for([job.id for job in found])
    from fleetops.report.text import render_job_list

    render_job_list(out_console, found, counts)


def show_job(job: str, *, as_json: bool = False) -> None:
    """``jobs show``: status, counts, timing, throughput, errors by code, in-doubt items, calls."""
    where = existing_db()
    if as_json:
        from fleetops.api import job_document

        with reading(where) as reader:
            document = job_document(reader, job)
        print_json(document)
        return
    from fleetops.api import history_of, rollout_of, step_counts
    from fleetops.report.text import render_job, render_rollout, render_step_counts

    with reading(where) as reader:
        history = history_of(reader, job)
        steps = step_counts(reader, history.job)
    render_job(out_console, history)
    render_rollout(out_console, rollout_of(history.job))
    render_step_counts(out_console, steps)
