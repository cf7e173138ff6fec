"""Helpers of the engine's integration tests: job specs against a simulator, item listings."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any

from aiobotocore.session import get_session

from fleetops.api import JobSpec
from fleetops.aws import Connection
from fleetops.options import JobOptions
from fleetops.sim import Simulator
from fleetops.store import ItemRecord, Store
from fleetops.targets import Targets

REGION = "us-east-1"


def spec_for(
    sim: Simulator,
    action: str,
    targets: Targets | None = None,
    params: dict[str, Any] | None = None,
    **options: Any,
) -> JobSpec:
    """A job over ``sim``; no client-side quota unless the test asks for one."""
    options.setdefault("rate", None)
    return JobSpec(
        action=action,
        targets=targets or Targets(),
        connection=Connection(REGION, None, sim.endpoint_url),
        options=JobOptions(**options),
        params=params or {},
    )


async def items_of(store: Store, job_id: str) -> list[ItemRecord]:
    out: list[ItemRecord] = []
    async for page in store.iter_items(job_id):
        out.extend(page)
    return out


def sim_client(sim: Simulator) -> AbstractAsyncContextManager[Any]:
    """A plain aiobotocore client of ``sim``, for tests that act or look behind the engine."""
    return get_session().create_client(
        "workspaces",
        region_name=REGION,
        endpoint_url=sim.endpoint_url,
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
