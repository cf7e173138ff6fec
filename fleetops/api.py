"""The Python API: what the CLI calls, usable on its own.

store = await Store.open("fleet.db")
spec = JobSpec(action="reboot", targets=Targets.build(directory_id="d-..."),
               connection=Connection.resolve("us-east-1", None, None))
job = await create_job(store, spec)
job = await run_job(store, job.id)
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import anyio

from fleetops.actions import get_action
from fleetops.aws import Connection, WorkSpacesClient
from fleetops.options import JobOptions
from fleetops.planner import PlanSummary, plan
from fleetops.ratelimit import QUOTAS
from fleetops.runner import JobRunner, StopSignal, merge_summaries
from fleetops.states import JobStatus
from fleetops.store import JobRecord, NewJob, Store
from fleetops.targets import Targets

__all__ = [
    "JobSpec",
    "create_job",
    "dry_run",
    "open_client",
    "plan_job",
    "run_job",
]

#: Static keys used only against a simulator on this machine when no credentials are configured.
SIM_CREDENTIALS = ("fleetops-sim", "fleetops-sim")


@dataclass(frozen=True)
class JobSpec:
    """What to do (action + params), to which WorkSpaces (targets), how (options), where."""

    action: str
    targets: Targets
    connection: Connection
    options: JobOptions = field(default_factory=JobOptions)
    params: Mapping[str, Any] = field(default_factory=dict)
    more_regions: tuple[Connection, ...] = ()  # a job spanning regions: the others

    @property
    def connections(self) -> tuple[Connection, ...]:
        return (self.connection, *self.more_regions)

    def __post_init__(self) -> None:
        # A clear UsageError for an unknown action or unusable parameters (a create CSV with a
        # bad line), before anything is written.
        get_action(self.action).validate_params(self.params)


def _loopback(endpoint_url: str | None) -> bool:
    if not endpoint_url:
        return False
    host = urlparse(endpoint_url).hostname or ""
    return host in {"127.0.0.1", "localhost", "::1"}


def _default_credentials(conn: Connection) -> tuple[str, str] | None:
    """Against a local simulator with nothing configured, sign with dummy keys (the simulator
    checks no signature); anywhere else the normal botocore credential chain applies."""
    if not _loopback(conn.endpoint_url) or conn.profile:
        return None
    if os.environ.get("AWS_ACCESS_KEY_ID") or os.environ.get("AWS_PROFILE"):
        return None
    return SIM_CREDENTIALS


@asynccontextmanager
async def open_client(
    conn: Connection,
    options: JobOptions,
    *,
    credentials: tuple[str, str] | None = None,
) -> AsyncIterator[WorkSpacesClient]:
    """A client spending the process-wide bucket of ``conn``'s account and region."""
    bucket = QUOTAS.bucket(conn.quota_key(), options.rate, options.burst)
    client = WorkSpacesClient(
        conn,
        bucket=bucket,
        max_connections=max(10, options.concurrency * 2),
        read_timeout=options.read_timeout,
        credentials=credentials or _default_credentials(conn),
    )
    async with client:
        yield client


async def create_job(store: Store, spec: JobSpec, *, parent_id: str | None = None) -> JobRecord:
    """Record a new job (status ``planned``; planning happens when it runs)."""
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
        )
    )


def job_connections(job: JobRecord) -> list[Connection]:
    """The connections a recorded job runs with: one per region, as it was created."""
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
) -> AsyncIterator[dict[str, WorkSpacesClient]]:
    """One client per region (each region spends its own bucket)."""
    async with AsyncExitStack() as stack:
        clients = {
            conn.region: await stack.enter_async_context(
                open_client(conn, options, credentials=credentials)
            )
            for conn in connections
        }
        yield clients


async def run_job(
    store: Store,
    job_id: str,
    *,
    stop: StopSignal | None = None,
    redo_in_doubt: bool = False,
    credentials: tuple[str, str] | None = None,
    on_start: Callable[[JobRunner], None] | None = None,
) -> JobRecord:
    """Run (or resume) a job to its end or to a graceful stop; returns the job as recorded."""
    job = await store.get_job(job_id)
    if job.status in (JobStatus.SUCCEEDED, JobStatus.CANCELLED):
        # Finished: nothing to do, and saying so is not an error (a script that resumes until
        # exit 0 may have been killed just after the job's end was recorded).
        return job
    options = JobOptions.from_dict(job.options)
    async with open_clients(job_connections(job), options, credentials=credentials) as clients:
        runner = JobRunner(store, clients, job, stop=stop, redo_in_doubt=redo_in_doubt)
        if on_start is not None:
            on_start(runner)
        return await runner.run()


async def plan_job(
    store: Store, job_id: str, *, credentials: tuple[str, str] | None = None
) -> JobRecord:
    """Plan a recorded job (resolve its targets, record every item) without running it."""
    job = await store.get_job(job_id)
    options = JobOptions.from_dict(job.options)
    async with open_clients(job_connections(job), options, credentials=credentials) as clients:
        return await JobRunner(store, clients, job).plan_only()


async def dry_run(spec: JobSpec, *, credentials: tuple[str, str] | None = None) -> PlanSummary:
    """Plan without writing anything: what would be done, skipped, and what it would cost."""
    action = get_action(spec.action)
    summaries: list[PlanSummary] = []
    conns = list(spec.connections)
    async with open_clients(conns, spec.options, credentials=credentials) as clients:

        async def plan_region(conn: Connection) -> None:
            client = clients[conn.region]

            async def call(operation: str, ids: Any, /, **params: Any) -> Mapping[str, Any]:
                return (await client.call(operation, **params)).response

            summaries.append(
                await plan(
                    action=action,
                    targets=spec.targets,
                    options=spec.options,
                    call=call,
                    job_id="dry-run",
                    region=conn.region,
                    sink=None,
                    params=spec.params,
                )
            )

        async with anyio.create_task_group() as tg:
            for conn in conns:
                tg.start_soon(plan_region, conn)
    return merge_summaries(summaries)
