"""The clients of a job's scopes, opened from its options and its role: the glue between the
job's terms (:class:`~fleetops.catalogue.options.JobOptions`, the job id) and the AWS edge's
(:class:`~fleetops.aws.roles.ClientLimits`, the STS session name); and the caller's identity
recorded on the job.

The AWS edge knows neither job options nor the store: what it needs of them is handed over
here, as plain values. Recording the caller is history, never a condition of running: when STS
cannot tell, the job goes on without it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, Protocol

from fleetops.aws import roles
from fleetops.aws.client import Connection, WorkSpacesClient
from fleetops.aws.roles import ClientLimits, UnreachableAccount
from fleetops.catalogue.accounts import AssumeSpec, session_name
from fleetops.catalogue.options import JobOptions
from fleetops.records import JobRecord

__all__ = ["client_limits", "open_scope_clients", "record_caller"]


def client_limits(options: JobOptions) -> ClientLimits:
    """What bounds each scope's client, from the job's options."""
    return ClientLimits(
        rate=options.rate,
        burst=options.burst,
        concurrency=options.concurrency,
        read_timeout=options.read_timeout,
        connect_timeout=options.connect_timeout,
    )


@asynccontextmanager
async def open_scope_clients(
    connections: Sequence[Connection],
    options: JobOptions,
    *,
    accounts: Sequence[str] | None = None,
    assume: AssumeSpec | None = None,
    job_id: str = "adhoc",
    credentials: tuple[str, str] | None = None,
) -> AsyncIterator[dict[str, WorkSpacesClient | UnreachableAccount]]:
    """One client per scope, keyed ``"region"`` or ``"account/region"`` (see
    :func:`fleetops.aws.roles.open_scope_clients`); each account's role assumed under the
    job's session name."""
    async with roles.open_scope_clients(
        connections,
        client_limits(options),
        accounts=accounts,
        assume=assume,
        session_name=session_name(job_id),
        credentials=credentials,
    ) as clients:
        yield clients


class _JobStore(Protocol):
    """What recording the caller needs of a store."""

    async def get_job(self, job_id: str) -> JobRecord: ...

    async def update_job(self, job_id: str, **values: Any) -> None: ...


async def record_caller(
    store: _JobStore, job_id: str, conn: Connection, options: JobOptions
) -> None:
    """Store the caller's ARN on the job (one GetCallerIdentity), unless it is already known."""
    job = await store.get_job(job_id)
    if job.caller_arn:
        return
    arn = await roles.caller_arn(
        conn, connect_timeout=options.connect_timeout, read_timeout=options.read_timeout
    )
    if arn is not None:
        await store.update_job(job_id, caller_arn=arn)
