"""One job over two regions: two simulators stand for two regions, each with its own quota.
Each region plans, submits and verifies in parallel with its own client and bucket; items record
their region; resume restores each region."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import pytest

from fleetops.api import JobSpec, create_job, plan_job, run_job
from fleetops.aws.client import Connection
from fleetops.catalogue.options import JobOptions
from fleetops.catalogue.targets import Targets
from fleetops.engine.runner import JobRunner
from fleetops.records import ItemUpdate
from fleetops.sim import Simulator
from fleetops.states import ItemState, JobStatus
from fleetops.store import Store


@pytest.fixture
async def two_regions() -> AsyncIterator[tuple[Simulator, Simulator]]:
    async with (
        Simulator(
            workspaces=120, seed=1, region="us-east-1", rate=10, burst=5, transition_seconds=0.2
        ) as east,
        Simulator(
            workspaces=80, seed=2, region="eu-west-1", rate=10, burst=5, transition_seconds=0.2
        ) as west,
    ):
        yield east, west


def spec_for(east: Simulator, west: Simulator, **options: object) -> JobSpec:
    return JobSpec(
        action="reboot",
        targets=Targets(),
        connection=Connection("us-east-1", None, east.endpoint_url),
        more_regions=(Connection("eu-west-1", None, west.endpoint_url),),
        options=JobOptions(rate=10, burst=5, include_connected=True, **options),  # type: ignore[arg-type]
    )


async def test_one_job_spans_two_regions_each_with_its_own_quota(
    two_regions: tuple[Simulator, Simulator], store: Store
) -> None:
    east, west = two_regions
    job = await create_job(store, spec_for(east, west))
    assert job.regions == ("us-east-1", "eu-west-1")
    runners: list[JobRunner] = []
    job = await run_job(store, job.id, on_start=runners.append)
    assert job.status is JobStatus.SUCCEEDED, job.message
    # Two clients, two buckets: neither region waits on the other's quota.
    buckets = {region: client.bucket for region, client in runners[0].clients.items()}
    assert set(buckets) == {"us-east-1", "eu-west-1"}
    assert buckets["us-east-1"] is not buckets["eu-west-1"]
    regions: dict[str, set[str]] = {}
    async for page in store.iter_items(job.id, states=[ItemState.SUCCEEDED]):
        for item in page:
            regions.setdefault(item.region, set()).add(item.workspace_id)
    # Each region's WorkSpaces were rebooted by that region's endpoint, once each.
    for sim, region in ((east, "us-east-1"), (west, "eu-west-1")):
        reboots = sim.stats().calls_by_workspace["RebootWorkspaces"]
        assert set(reboots) == regions[region]
        assert set(reboots.values()) == {1}
        assert sim.stats().throttled <= 2


async def test_named_workspaces_are_recorded_once_in_the_region_that_holds_them(
    two_regions: tuple[Simulator, Simulator], store: Store
) -> None:
    """Ids named over two regions: each is one item, in the region that holds it; an id that
    neither holds is one item skipped as not found anywhere (not one per region)."""
    east, west = two_regions
    named = [*east.workspace_ids()[:3], *west.workspace_ids()[:2], "ws-zzzzzzzzzz"]
    spec = spec_for(east, west)
    spec = JobSpec(
        action=spec.action,
        targets=Targets.build(workspace_ids=named),
        connection=spec.connection,
        more_regions=spec.more_regions,
        options=JobOptions(rate=10, burst=5, include_connected=True, ignore_snapshot_age=True),
    )
    job = await run_job(store, (await create_job(store, spec)).id)
    assert job.status is JobStatus.SUCCEEDED, job.message
    got: dict[str, tuple[str, ItemState, str | None]] = {}
    async for page in store.iter_items(job.id):
        for item in page:
            assert item.workspace_id not in got  # one item per named WorkSpace
            got[item.workspace_id] = (item.region, item.state, item.reason)
    assert set(got) == set(named)
    for ws in east.workspace_ids()[:3]:
        assert got[ws][0] == "us-east-1"
    for ws in west.workspace_ids()[:2]:
        assert got[ws][0] == "eu-west-1"
    assert got["ws-zzzzzzzzzz"][1] is ItemState.SKIPPED
    assert "not found in any" in (got["ws-zzzzzzzzzz"][2] or "")
    rebooted = {
        *east.stats().calls_by_workspace["RebootWorkspaces"],
        *west.stats().calls_by_workspace["RebootWorkspaces"],
    }
    assert rebooted <= set(named) - {"ws-zzzzzzzzzz"}


async def test_resume_restores_each_region(
    two_regions: tuple[Simulator, Simulator], store: Store
) -> None:
    east, west = two_regions
    job = await create_job(store, spec_for(east, west))
    await plan_job(store, job.id)
    # A "crash" with a batch in flight in each region.
    in_flight: list[int] = []
    for region in ("us-east-1", "eu-west-1"):
        page = await store.items_page(job.id, states=[ItemState.PENDING], region=region, limit=5)
        in_flight.extend(item.id for item in page)
    writer = store.writer()
    async with anyio.create_task_group() as tg:
        tg.start_soon(writer.run)
        await writer.write([ItemUpdate(ids=in_flight, state=ItemState.IN_FLIGHT, attempts_inc=1)])
        writer.close()
    job = await run_job(store, job.id)
    assert job.status is JobStatus.SUCCEEDED, job.message
    counts = await store.counts(job.id)
    assert counts[ItemState.SUCCEEDED] + counts[ItemState.SKIPPED] == 200
    for sim in (east, west):
        assert set(sim.stats().calls_by_workspace["RebootWorkspaces"].values()) == {1}


def test_cli_runs_one_job_over_two_regions(tmp_path: object) -> None:
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    db = Path(str(tmp_path)) / "r.db"
    env = {**os.environ, "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}
    with (
        Simulator(
            workspaces=60, seed=3, region="us-east-1", rate=None, transition_seconds=0.1
        ).run_in_thread() as east,
        Simulator(
            workspaces=40, seed=4, region="eu-west-1", rate=None, transition_seconds=0.1
        ).run_in_thread() as west,
    ):
        base = [sys.executable, "-m", "fleetops", "--db", str(db), "--quiet"]
        done = subprocess.run(
            [
                *base,
                "run",
                "stop",
                "--region",
                "us-east-1",
                "--region",
                "eu-west-1",
                "--endpoint-url",
                east.endpoint_url,
                "--endpoint-url",
                west.endpoint_url,
                "--yes",
                "--rate",
                "50",
                "--burst",
                "20",
                "--include-connected",
                "--json",
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        job = json.loads(done.stdout)
        assert [r["region"] for r in job["regions"]] == ["us-east-1", "eu-west-1"]
        assert job["counts"]["succeeded"] > 0
        assert east.stats().calls_by_operation.get("StopWorkspaces")
        assert west.stats().calls_by_operation.get("StopWorkspaces")
        bad = subprocess.run(
            [
                *base,
                "run",
                "stop",
                "--region",
                "us-east-1",
                "--region",
                "eu-west-1",
                "--endpoint-url",
                "http://127.0.0.1:1",
                "--endpoint-url",
                "http://127.0.0.1:2",
                "--endpoint-url",
                "http://127.0.0.1:3",
                "--yes",
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        assert bad.returncode == 2
        assert "3 --endpoint-url for 2 --region" in bad.stderr
