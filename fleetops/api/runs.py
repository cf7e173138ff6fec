"""The façade's runs: a job recorded, planned, run, started from its stored plan, resumed,
retried; a dry run; the stored plan read back. Each opens the clients of the job's scopes
(roles assumed again) and shares their quota with the other runners of the database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import (
    AbstractAsyncContextManager,
    AsyncExitStack,
    asynccontextmanager,
)
from typing import TYPE_CHECKING, Any

from fleetops.api.approvals import refuse_unapproved
from fleetops.api.recurring import notify_end, until_window
from fleetops.errors import UsageError
from fleetops.states import COMPLETE_STATUSES, ItemState, JobStatus

if TYPE_CHECKING:
    from fleetops.aws.client import Connection
    from fleetops.catalogue.options import JobOptions
    from fleetops.catalogue.specs import JobSpec
    from fleetops.engine.planner import PlanSummary
    from fleetops.engine.runner import JobRunner, StopSignal
    from fleetops.records import CancelResult, JobRecord
    from fleetops.store import Store


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


def spec_clients(
    spec: JobSpec, *, credentials: tuple[str, str] | None, job_id: str
) -> AbstractAsyncContextManager[dict[str, Any]]:
    """The clients of a spec's scopes before any job is recorded (a dry run, a preflight)."""
    return open_clients(
        list(spec.connections),
        spec.options,
        credentials=credentials,
        accounts=spec.accounts,
        assume=spec.assume.as_dict() if spec.accounts and spec.assume else None,
        job_id=job_id,
    )


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


@asynccontextmanager
async def _job_runner(
    store: Store,
    job: JobRecord,
    *,
    credentials: tuple[str, str] | None,
    stop: StopSignal | None,
    redo_in_doubt: bool = False,
) -> AsyncIterator[JobRunner]:
    """The runner of a recorded job, with the clients of its scopes open (the caller's identity
    recorded first) and each account-region's quota shared with the other live runners of the
    database, for the body's duration: a plan and a run are made the same way."""
    from fleetops.catalogue.options import JobOptions
    from fleetops.engine.quota import sharing_quota
    from fleetops.engine.runner import JobRunner

    options = JobOptions.from_dict(job.options)
    async with AsyncExitStack() as stack:
        clients = await _open_job_clients(stack, store, job, options, credentials)
        await stack.enter_async_context(sharing_quota(store, clients))
        yield JobRunner(store, clients, job, stop=stop, redo_in_doubt=redo_in_doubt)


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
    async with _job_runner(
        store, job, credentials=credentials, stop=stop, redo_in_doubt=redo_in_doubt
    ) as runner:
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
    job = await store.get_job(job_id)
    async with _job_runner(store, job, credentials=credentials, stop=stop) as runner:
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
    async with spec_clients(spec, credentials=credentials, job_id="dry-run") as clients:

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
                targets=action.targets_in(spec.targets, spec.params, key),
                options=spec.options,
                call=call,
                job_id="dry-run",
                region=key.rpartition("/")[2],
                sink=None,
                params=spec.params,
            )

        summaries = await plan_scopes(list(clients), plan_scope, spec.action, spec.options)
    return merge_summaries(summaries)


#: ``jobs start`` refuses a plan older than this many hours (the fleet has moved on since).
DEFAULT_MAX_PLAN_AGE = 4.0


async def get_job(store: Store, job_id: str) -> JobRecord:
    """A job by id or unique prefix (:class:`NotFoundError` if none)."""
    return await store.get_job(job_id)


async def cancel_job(
    store: Store, job_id: str, *, reason: str = "cancelled by operator"
) -> CancelResult:
    """Cancel a job no live runner holds (its pending items ``cancelled``; refused while a
    runner holds it). A job this cancel ended tells its ``--notify`` targets, as a run that
    ends does."""
    from fleetops.records import CancelOutcome
    from fleetops.store.history import cancel_job as cancel_stored

    result = await cancel_stored(store, job_id, reason=reason)
    if result.outcome is CancelOutcome.CANCELLED:
        await notify_end(store, result.job)
    return result


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


def plan_age_error(job: JobRecord, max_age_hours: float, *, now: float | None = None) -> str | None:
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
    from fleetops.records import ROLLOUT_RECORD

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
        # what a run did (a rollout's facts per scope) is the parent's, not the retry's
        params={k: v for k, v in parent.params.items() if k != ROLLOUT_RECORD},
        accounts=accounts,
        assume=AssumeSpec.from_dict(parent.assume) if accounts and parent.assume else None,
    )
    return await create_job(store, spec, parent_id=parent.id)
