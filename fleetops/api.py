"""The Python API: everything the CLI does, usable on its own (``from fleetops import ...``).

    store = await Store.open("fleet.db")
    spec = build_spec(RunRequest("reboot", selectors={"directory_id": "d-0123456789"},
                                 where=Where(region=("us-east-1",))))
    job = await create_job(store, spec)
    job = await plan_job(store, job.id)        # stored, status planned: review it...
    print(await stored_plan(store, job.id))
    job = await start_job(store, job.id)       # ...then run exactly that plan

``run_job`` plans and runs in one go; ``resume_job`` carries on after a kill; ``retry_job``
records a new job over another's failed items; ``cancel_job``, ``get_job``, ``list_jobs`` and
``job_history`` read and manage the history.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import (
    AbstractAsyncContextManager,
    AsyncExitStack,
    asynccontextmanager,
    contextmanager,
)
from typing import TYPE_CHECKING, Any, TextIO

from fleetops.errors import UsageError
from fleetops.states import COMPLETE_STATUSES, ItemState, JobStatus

if TYPE_CHECKING:
    from pathlib import Path

    from fleetops.aws.client import Connection as Connection
    from fleetops.catalogue.options import JobOptions
    from fleetops.catalogue.specs import JobSpec as JobSpec
    from fleetops.catalogue.specs import RunRequest as RunRequest
    from fleetops.catalogue.specs import Where as Where
    from fleetops.catalogue.specs import build_spec as build_spec
    from fleetops.engine.planner import PlanSummary as PlanSummary
    from fleetops.engine.runner import JobRunner as JobRunner
    from fleetops.engine.runner import StopSignal as StopSignal
    from fleetops.records import CancelOutcome as CancelOutcome
    from fleetops.records import CancelResult as CancelResult
    from fleetops.records import ItemRecord, JobHistory, ScopeSummary, StepRecord
    from fleetops.records import JobRecord as JobRecord
    from fleetops.report.documents import StepsOf
    from fleetops.report.html import ReportData
    from fleetops.store import Store as Store
    from fleetops.store.copy import CopyReport
    from fleetops.store.history import cancel_job as cancel_job
    from fleetops.store.history import job_history as job_history
    from fleetops.store.pgreader import PostgresReader
    from fleetops.store.readonly import Reader

    #: A reader of the history (sqlite3 or psycopg, no SQLAlchemy): see :func:`read_history`.
    History = Reader | PostgresReader

__all__ = [
    "DEFAULT_MAX_PLAN_AGE",
    "JobSpec",
    "RunRequest",
    "Where",
    "add_schedule",
    "approval_error",
    "approve_job",
    "build_spec",
    "cancel_job",
    "check_configuration",
    "check_rollout",
    "check_schedule",
    "claim_due",
    "copy_database",
    "create_job",
    "current_user",
    "database_target",
    "dry_run",
    "failed_workspaces",
    "get_job",
    "history_of",
    "is_postgresql",
    "item_documents",
    "job_document",
    "job_history",
    "jobs_document",
    "list_jobs",
    "notify_end",
    "open_store",
    "pause_schedule",
    "plan_age_error",
    "plan_job",
    "read_history",
    "refuse_unapproved",
    "remove_schedule",
    "report_data",
    "require_database",
    "resume_job",
    "retry_candidates",
    "retry_job",
    "run_job",
    "schedule_job",
    "schedule_json",
    "schedules_document",
    "scope_summaries",
    "start_job",
    "startable_plan",
    "step_counts",
    "steps_reader",
    "stored_plan",
    "unstarted_scheduled_jobs",
    "until_window",
    "unverified_count",
    "unverified_counts",
    "write_items",
    "write_report",
]

#: Names this façade hands on from the rooms below, imported when first used (PEP 562): the
#: history commands import this module without loading the engine, botocore or SQLAlchemy.
_LAZY: dict[str, str] = {
    "CancelOutcome": "fleetops.records",
    "CancelResult": "fleetops.records",
    "Connection": "fleetops.aws.client",
    "JobSpec": "fleetops.catalogue.specs",
    "PlanSummary": "fleetops.engine.planner",
    "RunRequest": "fleetops.catalogue.specs",
    "StopSignal": "fleetops.engine.runner",
    "Store": "fleetops.store",
    "Where": "fleetops.catalogue.specs",
    "build_spec": "fleetops.catalogue.specs",
    "cancel_job": "fleetops.store.history",
    "job_history": "fleetops.store.history",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'fleetops.api' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


async def check_configuration(spec: JobSpec) -> None:
    """Make sure every connection of ``spec`` has what it needs to be called (a known profile,
    credentials) before anything is written: a :class:`ConfigurationError` (exit 2) otherwise.
    No AWS API is called."""
    from fleetops.aws.client import caller_session

    for conn in spec.connections:
        await caller_session(conn)


async def create_job(store: Store, spec: JobSpec, *, parent_id: str | None = None) -> JobRecord:
    """Record a new job (status ``planned``; planning happens when it runs)."""
    from fleetops.records import NewJob

    conn = spec.connection
    return await store.create_job(
        NewJob(
            action=spec.action,
            params=dict(spec.params),
            targets=spec.targets.as_dict(),
            options=spec.options.as_dict(),
            region=conn.region,
            profile=conn.profile,
            endpoint_url=conn.endpoint_url,
            parent_id=parent_id,
            regions=[
                {"region": c.region, "endpoint_url": c.endpoint_url} for c in spec.connections
            ],
            accounts=list(spec.accounts) if spec.accounts else None,
            assume=spec.assume.as_dict() if spec.accounts and spec.assume else None,
            require_approval=spec.require_approval,
        )
    )


def job_connections(job: JobRecord) -> list[Connection]:
    """The connections a recorded job runs with: one per region, as it was created."""
    from fleetops.aws.client import Connection

    return [
        Connection(region=region, profile=job.profile, endpoint_url=job.endpoints.get(region))
        for region in job.regions
    ]


@asynccontextmanager
async def open_clients(
    connections: list[Connection],
    options: JobOptions,
    *,
    credentials: tuple[str, str] | None = None,
    accounts: Sequence[str] | None = None,
    assume: Mapping[str, Any] | None = None,
    job_id: str = "adhoc",
) -> AsyncIterator[dict[str, Any]]:
    """One client per scope: per region, or per account x region when the job reaches other
    accounts through an assumed role (each scope spends its own bucket)."""
    from fleetops.catalogue.accounts import AssumeSpec
    from fleetops.engine.clients import open_scope_clients

    spec = AssumeSpec.from_dict(assume) if accounts and assume else None
    async with open_scope_clients(
        connections,
        options,
        accounts=accounts,
        assume=spec,
        job_id=job_id,
        credentials=credentials,
    ) as clients:
        yield clients


async def _open_job_clients(
    stack: AsyncExitStack, store: Store, job: JobRecord, options: JobOptions, credentials: Any
) -> dict[str, Any]:
    """The clients of a recorded job's scopes (its roles assumed again), after recording the
    caller's identity on the job."""
    from fleetops.engine.clients import record_caller

    connections = job_connections(job)
    if credentials is None:
        await record_caller(store, job.id, connections[0], options)
    return await stack.enter_async_context(
        open_clients(
            connections,
            options,
            credentials=credentials,
            accounts=job.accounts,
            assume=job.assume,
            job_id=job.id,
        )
    )


def _sharing_quota(store: Any, clients: Mapping[str, Any]) -> AbstractAsyncContextManager[Any]:
    """Each account-region's quota shared with the other live runners of the database."""
    from fleetops.engine.quota import sharing_quota

    return sharing_quota(store, clients)


async def run_job(
    store: Store,
    job_id: str,
    *,
    stop: StopSignal | None = None,
    redo_in_doubt: bool = False,
    credentials: tuple[str, str] | None = None,
    on_start: Callable[[JobRunner], None] | None = None,
    wait_window: bool = True,
) -> JobRecord:
    """Run (or resume) a job to its end or to a graceful stop; returns the job as recorded.

    A job outside its maintenance windows is ``waiting``: with ``wait_window`` this waits for
    the next opening and carries on with the same plan (a stop while waiting returns the job
    ``waiting``, resumable); without, the job is returned ``waiting`` (a worker re-queues it)."""
    from fleetops.engine.runner import StopSignal

    stop = stop or StopSignal()
    while True:
        job = await _run_once(
            store,
            job_id,
            stop=stop,
            redo_in_doubt=redo_in_doubt,
            credentials=credentials,
            on_start=on_start,
        )
        if job.status is not JobStatus.WAITING or not wait_window:
            return job
        if not await until_window(job, stop):
            return job


async def _run_once(
    store: Store,
    job_id: str,
    *,
    stop: StopSignal,
    redo_in_doubt: bool,
    credentials: tuple[str, str] | None,
    on_start: Callable[[JobRunner], None] | None,
) -> JobRecord:
    """One run of a job: to its end, a graceful stop, or the close of its window."""
    job = await store.get_job(job_id)
    if job.status in COMPLETE_STATUSES:
        # Finished: nothing to do, and saying so is not an error (a script that resumes until
        # exit 0 may have been killed just after the job's end was recorded).
        return job
    refuse_unapproved(job)  # every way in (start, resume, a worker) meets the two-person rule
    from fleetops.catalogue.options import JobOptions
    from fleetops.engine.runner import JobRunner

    options = JobOptions.from_dict(job.options)
    async with AsyncExitStack() as stack:
        clients = await _open_job_clients(stack, store, job, options, credentials)
        await stack.enter_async_context(_sharing_quota(store, clients))
        runner = JobRunner(store, clients, job, stop=stop, redo_in_doubt=redo_in_doubt)
        if on_start is not None:
            on_start(runner)
        job = await runner.run()
    await notify_end(store, job)
    return job


async def plan_job(
    store: Store,
    job_id: str,
    *,
    stop: StopSignal | None = None,
    credentials: tuple[str, str] | None = None,
    on_start: Callable[[JobRunner], None] | None = None,
) -> JobRecord:
    """Plan a recorded job (resolve its targets, record every item) without running it: the
    job stays ``planned``, and :func:`start_job` runs exactly that plan."""
    from fleetops.catalogue.options import JobOptions
    from fleetops.engine.runner import JobRunner

    job = await store.get_job(job_id)
    options = JobOptions.from_dict(job.options)
    async with AsyncExitStack() as stack:
        clients = await _open_job_clients(stack, store, job, options, credentials)
        await stack.enter_async_context(_sharing_quota(store, clients))
        runner = JobRunner(store, clients, job, stop=stop)
        if on_start is not None:
            on_start(runner)
        await runner.plan_only()
    job = await store.get_job(job.id)
    await notify_end(store, job)  # planning failed: the job ended there
    return job


async def dry_run(spec: JobSpec, *, credentials: tuple[str, str] | None = None) -> PlanSummary:
    """Plan without writing anything: what would be done, skipped, and what it would cost."""
    from fleetops.catalogue.actions import get_action
    from fleetops.engine.planner import plan
    from fleetops.engine.runner import merge_summaries, plan_scopes
    from fleetops.errors import AssumeRoleError

    action = get_action(spec.action)
    assume = spec.assume.as_dict() if spec.accounts and spec.assume else None
    async with open_clients(
        list(spec.connections),
        spec.options,
        credentials=credentials,
        accounts=spec.accounts,
        assume=assume,
        job_id="dry-run",
    ) as clients:

        async def plan_scope(key: str) -> PlanSummary:
            client = clients[key]
            error = getattr(client, "error", None)  # an account that cannot be reached
            if isinstance(error, AssumeRoleError):
                raise error

            async def call(operation: str, ids: Any, /, **params: Any) -> Mapping[str, Any]:
                response: Mapping[str, Any] = (await client.call(operation, **params)).response
                return response

            return await plan(
                action=action,
                targets=spec.targets,
                options=spec.options,
                call=call,
                job_id="dry-run",
                region=key.rpartition("/")[2],
                sink=None,
                params=spec.params,
            )

        summaries = await plan_scopes(list(clients), plan_scope, spec.action, spec.options)
    return merge_summaries(summaries)


# -- a stored plan, then the run of exactly that plan -------------------------------------------

#: ``jobs start`` refuses a plan older than this many hours (the fleet has moved on since).
DEFAULT_MAX_PLAN_AGE = 4.0


async def get_job(store: Store, job_id: str) -> JobRecord:
    """A job by id or unique prefix (:class:`NotFoundError` if none)."""
    return await store.get_job(job_id)


async def list_jobs(
    store: Store,
    *,
    status: str | None = None,
    action: str | None = None,
    since: float | None = None,
    limit: int = 20,
) -> list[JobRecord]:
    """Jobs, newest first."""
    return await store.list_jobs(status=status, action=action, since=since, limit=limit)


async def stored_plan(store: Store, job_id: str) -> PlanSummary:
    """The plan recorded for a job, as :func:`dry_run` reports one: WorkSpaces to act on,
    skipped by reason, examples, the calls planning made and those the run will take."""
    from fleetops.catalogue.actions import get_action
    from fleetops.catalogue.options import JobOptions
    from fleetops.engine.planner import DESCRIBE_MAX, PlanSummary, batches
    from fleetops.store.history import operation_stats, reason_groups

    job = await store.get_job(job_id)
    action = get_action(job.action)
    options = JobOptions.from_dict(job.options)
    counts = await store.counts(job.id)
    summary = PlanSummary(action=job.action, rate=options.rate, burst=options.burst)
    not_acted_on = counts[ItemState.SKIPPED] + counts[ItemState.CANCELLED]
    summary.eligible = sum(counts.values()) - not_acted_on
    for group in await reason_groups(store, job.id, ItemState.SKIPPED, limit=50):
        summary.skipped[group.reason] = group.count
    for item in await store.items_page(job.id, states=[ItemState.PENDING], limit=5):
        summary.note(job.action, item.workspace_id)
    for item in await store.items_page(job.id, states=[ItemState.SKIPPED], limit=500):
        summary.note(f"skipped: {item.reason}", item.workspace_id)
    operations = await operation_stats(store, job.id)
    summary.planning_calls = sum(op.calls for op in operations)
    summary.snapshot_calls = sum(
        op.calls for op in operations if op.operation == "DescribeWorkspaceSnapshots"
    )
    summary.submit_calls = batches(summary.eligible, action.max_batch) * action.calls_per_batch(
        job.params
    )
    watched = len(action.watch_ids("ws-x", "ws-y"))
    verifies = not options.no_wait and action.verifies
    if verifies:
        summary.verify_calls = batches(summary.eligible * watched, DESCRIBE_MAX)
    summary.calls_needed = summary.submit_calls + summary.verify_calls
    if job.accounts or len(job.regions) > 1:  # the spread: each scope on its own quota
        from fleetops.store.history import scope_summaries

        for scope in await scope_summaries(store, job.id):
            part = PlanSummary(
                action=job.action, rate=options.rate, burst=options.burst, scope=scope.key
            )
            skipped = scope.counts[ItemState.SKIPPED] + scope.counts[ItemState.CANCELLED]
            part.eligible = sum(scope.counts.values()) - skipped
            part.skipped["skipped"] = scope.counts[ItemState.SKIPPED]
            part.submit_calls = batches(part.eligible, action.max_batch) * (
                action.calls_per_batch(job.params)
            )
            if verifies:
                part.verify_calls = batches(part.eligible * watched, DESCRIBE_MAX)
            part.calls_needed = part.submit_calls + part.verify_calls
            summary.by_scope[scope.key] = part
    return summary


def plan_age_error(
    job: JobRecord, max_age_hours: float, *, now: float | None = None
) -> str | None:
    """Why ``job``'s stored plan cannot be started (None: it can). Pure."""
    import time

    replan = f"plan again with `fleetops run {job.action} ... --plan-only`"
    if job.status is not JobStatus.PLANNED:
        carry_on = (
            f" (carry on with `fleetops jobs resume {job.id}`)"
            if job.status is JobStatus.INTERRUPTED
            else ""
        )
        return f"job {job.id} is {job.status.value}, not a stored plan waiting to start{carry_on}"
    if job.planned_at is None:  # planning was cut short
        return f"job {job.id} has no complete plan: {replan}"
    age = ((time.time() if now is None else now) - job.planned_at) / 3600
    if age > max_age_hours:
        return (
            f"the plan of job {job.id} is {age:.1f} h old (limit {max_age_hours:g} h): "
            f"{replan} (or raise --max-plan-age)"
        )
    return None


async def startable_plan(
    store: Store, job_id: str, *, max_plan_age: float = DEFAULT_MAX_PLAN_AGE
) -> JobRecord:
    """The job ``job_id`` if it is a complete stored plan no older than ``max_plan_age`` hours,
    approved when it needs an approval, else a :class:`UsageError` saying why (and what to do
    instead)."""
    job = await store.get_job(job_id)
    problem = plan_age_error(job, max_plan_age)
    if problem is not None:
        raise UsageError(problem)
    refuse_unapproved(job)
    return job


async def start_job(
    store: Store,
    job_id: str,
    *,
    max_plan_age: float = DEFAULT_MAX_PLAN_AGE,
    stop: StopSignal | None = None,
    credentials: tuple[str, str] | None = None,
    on_start: Callable[[JobRunner], None] | None = None,
) -> JobRecord:
    """Run exactly the stored plan of a ``planned`` job (no second planning); a job that is not
    a complete plan, or a plan older than ``max_plan_age`` hours, is a :class:`UsageError`."""
    job = await startable_plan(store, job_id, max_plan_age=max_plan_age)
    return await run_job(store, job.id, stop=stop, credentials=credentials, on_start=on_start)


async def resume_job(
    store: Store,
    job_id: str,
    *,
    redo_in_doubt: bool = False,
    stop: StopSignal | None = None,
    credentials: tuple[str, str] | None = None,
    on_start: Callable[[JobRunner], None] | None = None,
) -> JobRecord:
    """Carry on with an interrupted job: what was in flight is reconciled before anything is
    sent again; items in doubt are sent again only with ``redo_in_doubt``."""
    return await run_job(
        store,
        job_id,
        stop=stop,
        redo_in_doubt=redo_in_doubt,
        credentials=credentials,
        on_start=on_start,
    )


async def failed_workspaces(store: Store, job_id: str) -> list[str]:
    """The WorkSpaces (item keys) whose items failed in a job, in plan order."""
    found: list[str] = []
    async for page in store.iter_items(job_id, states=[ItemState.FAILED]):
        found.extend(item.workspace_id for item in page)
    return found


async def retry_candidates(store: Store, job_id: str) -> list[str]:
    """The failed WorkSpaces a retry of ``job_id`` would act on; none is a :class:`UsageError`."""
    failed = await failed_workspaces(store, job_id)
    if not failed:
        raise UsageError(f"job {job_id} has no failed items")
    return failed


async def retry_job(store: Store, job_id: str) -> JobRecord:
    """Record a new job, linked to ``job_id``, over its failed items (same action, params,
    options and regions; planned afresh when it runs, so states are read again). A job without
    failed items is a :class:`UsageError`."""
    parent = await store.get_job(job_id)
    failed = await retry_candidates(store, parent.id)
    from fleetops.catalogue.accounts import AssumeSpec
    from fleetops.catalogue.options import JobOptions
    from fleetops.catalogue.specs import JobSpec
    from fleetops.catalogue.targets import Targets

    connections = job_connections(parent)
    accounts = None
    if parent.accounts:  # each failed item's account (no other)
        seen: dict[str, None] = {}
        async for page in store.iter_items(parent.id, states=[ItemState.FAILED]):
            seen.update(dict.fromkeys(i.account for i in page if i.account))
        accounts = tuple(seen) or parent.accounts
    spec = JobSpec(
        action=parent.action,
        targets=Targets(workspace_ids=tuple(failed)),
        connection=connections[0],
        more_regions=tuple(connections[1:]),
        options=JobOptions.from_dict(parent.options),
        params=parent.params,
        accounts=accounts,
        assume=AssumeSpec.from_dict(parent.assume) if accounts and parent.assume else None,
    )
    return await create_job(store, spec, parent_id=parent.id)


# -- the store ----------------------------------------------------------------------------------


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


# -- the history --------------------------------------------------------------------------------


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

    document = history_json(history_of(reader, job_id))
    steps = step_counts(reader, document["id"])
    if steps:  # a recipe's job: its items counted by step
        document["steps"] = steps
    if document["action"] == "rollout":
        from fleetops.engine.rollout import rollout_state

        document["rollout"] = rollout_state(document["params"])
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


def write_items(pages: Iterator[Sequence[ItemRecord]], fmt: str, stream: TextIO) -> int:
    """Items, a page at a time, as CSV or JSON into ``stream``; how many were written."""
    from fleetops.report.documents import write_items as write

    return write(pages, fmt, stream)


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



# -- the two-person rule, and what the dashboard reads ------------------------------------------


def current_user() -> str | None:
    """Who this process acts as: the OS user, as a job's ``started_by`` records it (getpass:
    ``LOGNAME``, ``USER``, ``LNAME``, ``USERNAME``, then the password database)."""
    from fleetops.store.repo import current_user as os_user

    return os_user()


def approval_error(job: JobRecord) -> str | None:
    """Why ``job`` may not run yet under the two-person rule (None: it may). Pure."""
    if not job.require_approval or job.approved_by is not None:
        return None
    planner = f" other than {job.started_by}" if job.started_by else ""
    return (
        f"job {job.id} awaits approval: someone{planner} runs "
        f"`fleetops jobs approve {job.id}` first"
    )


def refuse_unapproved(job: JobRecord) -> None:
    """An :class:`AwaitsApprovalError` if ``job`` needs an approval it does not have yet: the one
    check that ``jobs start``, ``jobs resume`` and the workers (all through :func:`run_job`)
    meet before any action call."""
    problem = approval_error(job)
    if problem is not None:
        from fleetops.errors import AwaitsApprovalError

        raise AwaitsApprovalError(problem)


#: The longest comment an approval records.
MAX_APPROVAL_COMMENT = 1000


def _approval_refusal(job: JobRecord, by: str) -> str | None:
    """Why ``by`` cannot approve ``job`` (None: they can). Pure."""
    if not job.require_approval:
        return f"job {job.id} needs no approval (it was not planned with --require-approval)"
    if job.approved_by is not None:
        from fleetops.records import iso

        return f"job {job.id} was already approved by {job.approved_by} at {iso(job.approved_at)}"
    if job.status is not JobStatus.PLANNED or job.planned_at is None:
        return f"job {job.id} is {job.status.value}, not a complete stored plan awaiting approval"
    if not job.started_by:
        return f"job {job.id} records no planner: the two-person rule cannot be checked"
    if by == job.started_by:
        return f"{by} planned job {job.id}: an approval must come from someone else"
    return None


async def approve_job(
    store: Store, job_id: str, *, by: str | None = None, comment: str | None = None
) -> JobRecord:
    """Record ``by``'s approval (default: this process's OS user) of the stored plan
    ``job_id``, which then may start; a planner approving their own plan, a job that needs no
    approval or has one already, an unknown approver: a :class:`UsageError`, nothing written."""
    approver = (by if by is not None else current_user() or "").strip()
    if not approver:
        raise UsageError("cannot tell who is approving (no OS user name): nothing recorded")
    text = (comment or "").strip() or None
    if text is not None and len(text) > MAX_APPROVAL_COMMENT:
        raise UsageError(f"an approval comment is at most {MAX_APPROVAL_COMMENT} characters")
    job = await store.get_job(job_id)
    problem = _approval_refusal(job, approver)
    if problem is None and not await store.approve_job(job.id, approver, text):
        problem = _approval_refusal(await store.get_job(job.id), approver) or (
            f"job {job.id} changed while it was being approved: look again"
        )
    if problem is not None:
        raise UsageError(problem)
    return await store.get_job(job.id)


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


# -- the steps of a recipe's items ---------------------------------------------------------------


def step_counts(reader: History, job_id: str) -> dict[str, dict[str, int]]:
    """A recipe's job: action of a step → outcome (an open step: its item's state) → items, in
    ladder order; empty for a job of one action."""
    from fleetops.store.steps_read import step_counts as counts

    return counts(reader, reader.get_job(job_id).id)


def steps_reader(reader: History, job: JobRecord) -> StepsOf | None:
    """For a recipe's job, what gives the steps of a page of its items (``jobs items``, ``jobs
    export``); None for a job of one action."""
    from fleetops.catalogue.recipes import RECIPES

    if job.action not in RECIPES:
        return None
    from fleetops.store.steps_read import steps_of

    def of(items: Sequence[ItemRecord]) -> dict[int, list[StepRecord]]:
        return steps_of(reader, job.id, [item.id for item in items])

    return of


# -- a rollout's image and bundle, checked before anything is written --------------------------


async def check_rollout(spec: JobSpec, *, credentials: tuple[str, str] | None = None) -> None:
    """A rollout's new image exists and is AVAILABLE (DescribeWorkspaceImages) and its bundle
    exists (DescribeWorkspaceBundles), in the job's one scope; else a :class:`UsageError`
    (exit 2, nothing written). Any other job passes."""
    if spec.action != "rollout":
        return
    if spec.more_regions or spec.accounts:
        raise UsageError("rollout takes one account and region (a bundle is one region's)")
    image, bundle = str(spec.params["image"]), str(spec.params["bundle"])
    async with open_clients(
        list(spec.connections), spec.options, credentials=credentials, job_id="preflight"
    ) as clients:
        client = next(iter(clients.values()))
        found = (await client.call("DescribeWorkspaceImages", ImageIds=[image])).response
        images = found.get("Images") or []
        if not images:
            raise UsageError(f"image {image} not found in {spec.connection.region}")
        state = images[0].get("State")
        if state != "AVAILABLE":
            raise UsageError(f"image {image} is {state}, not AVAILABLE: nothing was rolled out")
        found = (await client.call("DescribeWorkspaceBundles", BundleIds=[bundle])).response
        if not found.get("Bundles"):
            raise UsageError(f"bundle {bundle} not found in {spec.connection.region}")


# -- schedules ----------------------------------------------------------------------------------

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


# -- notifications ------------------------------------------------------------------------------


async def notify_end(store: Store, job: JobRecord) -> list[dict[str, Any]]:
    """Tell the job's ``--notify`` targets that this run of it ended (succeeded, failed,
    aborted, cancelled, interrupted, items in doubt), and record each delivery on the job; a
    job still planned, queued or running is not told. Never raises, never changes the job."""
    targets = job.options.get("notify") or ()
    if not targets:
        return []
    from fleetops.engine.notify import notify_end as tell

    return await tell(store, job, list(targets))


# -- maintenance windows ------------------------------------------------------------------------


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
