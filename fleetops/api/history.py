"""The façade's store and history: the store opened, the history read by one reader (an older
schema brought up to date first), the documents of ``jobs list/show --json`` and the
dashboard, exports and reports."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import (
    contextmanager,
)
from typing import TYPE_CHECKING, Any

from fleetops.api.recipes import step_counts
from fleetops.errors import UsageError
from fleetops.states import ItemState

if TYPE_CHECKING:
    from pathlib import Path

    from fleetops.records import (
        JobHistory,
        ScopeSummary,
    )
    from fleetops.report.html import ReportData
    from fleetops.store import Store
    from fleetops.store.copy import CopyReport
    from fleetops.store.pgreader import PostgresReader
    from fleetops.store.readonly import Reader

    #: A reader of the history (sqlite3 or psycopg, no SQLAlchemy): see :func:`read_history`.
    History = Reader | PostgresReader


async def open_store(target: str, *, create: bool = True) -> Store:
    """The store at ``target`` (a path, ``sqlite:///PATH`` or ``postgresql://…``), migrated to
    this fleetops's schema; with ``create=False`` a missing database is refused, never made."""
    from fleetops.store import Store

    return await Store.open(target, create=create)


def is_postgresql(target: str) -> bool:
    """Whether ``target`` names a PostgreSQL store (a bad target is a one-line error)."""
    from fleetops.store.engine import parse_target

    return bool(parse_target(target).is_postgresql)


def require_database(target: str) -> None:
    """Reading never creates a database: a SQLite file that does not exist is a
    :class:`UsageError` saying so; a URL the store cannot parse, its own one-line error."""
    from fleetops.store.readonly import sqlite_file

    path = sqlite_file(target)
    if path is None:  # a URL: the store's parser says what it names, or what is wrong with it
        from fleetops.store.pgreader import conninfo

        if conninfo(target) is not None:  # PostgreSQL: its reader, else the store, says more
            return
        from fleetops.store.engine import database_url

        _, path = database_url(target)
    if path is not None and not path.exists():
        raise UsageError(
            f"no fleetops database at {path} (no job has run yet; see --db / FLEETOPS_DB)"
        )


async def copy_database(
    source: str, target: str, *, progress: Callable[[str, int], None] | None = None
) -> CopyReport:
    """Every job, item and event of ``source`` copied into ``target``, counts verified."""
    from fleetops.store.copy import copy_database as copy

    return await copy(source, target, progress=progress)


@contextmanager
def read_history(target: str) -> Iterator[History]:
    """A reader of the history at ``target`` (sqlite3 or psycopg: no SQLAlchemy, no engine),
    which every read command uses. A database at an older schema is brought to this fleetops's
    first (as opening the store would), then read the same way."""
    from fleetops.store.readonly import open_reader

    reader = open_reader(target)
    if reader is None:
        import anyio

        async def migrate() -> None:
            store = await open_store(target, create=False)
            await store.close()

        anyio.run(migrate)
        reader = open_reader(target)
        if reader is None:
            raise UsageError(f"{target} holds no fleetops history this version can read")
    with reader:
        yield reader


def jobs_document(
    reader: History,
    *,
    status: str | None = None,
    action: str | None = None,
    since: float | None = None,
    limit: int = 20,
    started_by: str | None = None,
) -> list[dict[str, Any]]:
    """``jobs list --json`` (and the dashboard's ``GET /api/jobs``): jobs, newest first."""
    from fleetops.report.documents import job_json

    found = reader.list_jobs(
        status=status, action=action, since=since, limit=limit, started_by=started_by
    )
    ids = [job.id for job in found]
    counts = reader.counts_for(ids)
    unverified = unverified_counts(reader, ids)
    return [job_json(job, counts[job.id], unverified.get(job.id, 0)) for job in found]


def job_document(reader: History, job_id: str) -> dict[str, Any]:
    """``jobs show --json`` (and the dashboard's ``GET /api/jobs/{id}``)."""
    from fleetops.report.documents import history_json

    history = history_of(reader, job_id)
    document = history_json(history)
    steps = step_counts(reader, history.job)
    if steps:  # a recipe's job: its items counted by step
        document["steps"] = steps
    if document["action"] == "rollout":
        from fleetops.engine.rollout import rollout_state

        regions = [entry["region"] for entry in document["regions"]]
        document["rollout"] = rollout_state(document["params"], regions, document["accounts"])
    return document


def history_of(reader: History, job_id: str) -> JobHistory:
    """Everything ``jobs show`` shows of a job (by id or unique prefix)."""
    from fleetops.store import history_read

    return history_read.job_history(reader, reader.get_job(job_id))


def unverified_counts(reader: History, job_ids: Sequence[str]) -> dict[str, int]:
    """How many succeeded items of each job were never verified."""
    from fleetops.store.history_read import unverified_counts as counts

    return counts(reader, job_ids)


def scope_summaries(reader: History, job_id: str) -> list[ScopeSummary]:
    """A job's counts by account and region."""
    from fleetops.store.history_read import rows_of
    from fleetops.store.history_read import scope_summaries as summaries

    return summaries(rows_of(reader), job_id)


async def unverified_count(store: Store, job_id: str) -> int:
    """How many of a job's succeeded items were never verified (the run's final line)."""
    from fleetops.store.history import unverified_items

    found = await unverified_items(store, job_id, examples=1)
    return found.count if found is not None else 0


async def write_report(store: Store, job_id: str, output: Path) -> str:
    """A job drawn as one self-contained HTML file at ``output``; returns the job's id."""
    from fleetops.report.html import write_report as write

    record = await store.get_job(job_id)
    try:
        await write(store, record.id, output)
    except OSError as exc:
        raise UsageError(f"cannot write {output}: {exc.strerror or exc}") from exc
    return record.id


def item_documents(
    reader: History, job_id: str, states: Sequence[ItemState], *, limit: int = 100
) -> list[dict[str, Any]]:
    """Up to ``limit`` items of a job in ``states``, in plan order, as ``jobs items --json``
    shows each one."""
    from fleetops.report.documents import item_json

    found = reader.items_page(reader.get_job(job_id).id, states=states, limit=limit)
    return [item_json(item) for item in found]


async def report_data(store: Store, job_id: str) -> ReportData:
    """What ``jobs report`` draws of a job (its timeline, errors, scopes, calls)."""
    from fleetops.report.html import gather

    return await gather(store, (await store.get_job(job_id)).id)


def database_target(given: str | None = None) -> str:
    """The store a command uses: ``given`` (``--db``), else ``$FLEETOPS_DB``, else
    ``fleetops.db`` in the user data dir."""
    import os

    chosen = given or os.environ.get("FLEETOPS_DB")
    if chosen:
        return chosen
    from pathlib import Path

    import platformdirs

    return str(Path(platformdirs.user_data_dir("fleetops")) / "fleetops.db")
