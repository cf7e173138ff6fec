"""One job over several accounts and regions, by assumed role, against the simulator.

Two simulators stand for two regions of the same accounts (STS and its sessions are shared, as
IAM is global; every account has its own fleet in each region). The caller signs with the
simulator's dummy keys (the default account) and assumes a role in each target account.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from fleetops.accounts import AssumeSpec, open_scope_clients
from fleetops.aws import Connection, _cached_session, _sim_session
from fleetops.options import JobOptions
from fleetops.runner import JobRunner
from fleetops.sim import Simulator
from fleetops.states import ItemState, JobStatus
from fleetops.store import ItemRecord, ItemUpdate, JobRecord, NewJob, Store
from fleetops.store.history import job_history
from fleetops.targets import Targets

ACCOUNTS = ("111111111111", "222222222222", "333333333333")
EAST, WEST = "us-east-1", "eu-west-1"
SPEC = AssumeSpec(role_name="FleetOps", external_id="fleet-ext")
PER_ACCOUNT = 30


@pytest.fixture(autouse=True)
def no_aws_configuration(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for name in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL_WORKSPACES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    _cached_session.cache_clear()
    _sim_session.cache_clear()
    yield
    _cached_session.cache_clear()
    _sim_session.cache_clear()


@pytest.fixture
async def regions() -> AsyncIterator[dict[str, Simulator]]:
    common: dict[str, Any] = {
        "workspaces": PER_ACCOUNT,
        "rate": 20,
        "burst": 5,
        "transition_seconds": 0.2,
        "accounts": ACCOUNTS,
        "connected_fraction": 0.0,
    }
    async with (
        Simulator(seed=1, region=EAST, **common) as east,
        Simulator(seed=2, region=WEST, **common) as west,
    ):
        west.share_credentials(east)
        for sim in (east, west):
            for account in ACCOUNTS:
                sim.configure_account(account, external_id="fleet-ext")
        yield {EAST: east, WEST: west}


async def new_job(
    store: Store, sims: dict[str, Simulator], accounts: tuple[str, ...] = ACCOUNTS
) -> JobRecord:
    options = JobOptions(rate=20, burst=5, include_connected=True)
    return await store.create_job(
        NewJob(
            action="reboot",
            params={},
            targets=Targets().as_dict(),
            options=options.as_dict(),
            region=EAST,
            endpoint_url=sims[EAST].endpoint_url,
            regions=[{"region": r, "endpoint_url": sim.endpoint_url} for r, sim in sims.items()],
            accounts=list(accounts),
            assume=SPEC.as_dict(),
        )
    )


async def run(store: Store, job_id: str, **runner: Any) -> JobRecord:
    """Run the recorded job over its accounts x regions, assuming each account's role."""
    job = await store.get_job(job_id)
    conns = [Connection(r, None, job.endpoints.get(r)) for r in job.regions]
    assume = AssumeSpec.from_dict(job.assume or {})
    async with open_scope_clients(
        conns,
        JobOptions.from_dict(job.options),
        accounts=job.accounts,
        assume=assume,
        job_id=job.id,
    ) as clients:
        return await JobRunner(store, clients, job, **runner).run()


async def items_of(store: Store, job_id: str) -> list[ItemRecord]:
    out: list[ItemRecord] = []
    async for page in store.iter_items(job_id):
        out.extend(page)
    return out


def rebooted(sim: Simulator, account: str) -> dict[str, int]:
    return dict(sim.stats(account).calls_by_workspace.get("RebootWorkspaces", {}))


async def test_a_job_over_three_accounts_and_two_regions_acts_on_each_workspace_once(
    regions: dict[str, Simulator], store: Store
) -> None:
    job = await run(store, (await new_job(store, regions)).id)
    assert job.status is JobStatus.SUCCEEDED, job.message
    items = await items_of(store, job.id)
    assert len(items) == 3 * 2 * PER_ACCOUNT
    for region, sim in regions.items():
        for account in ACCOUNTS:
            mine = [i for i in items if (i.account, i.region) == (account, region)]
            assert {i.workspace_id for i in mine} == set(sim.workspace_ids(account))
            acted = {i.workspace_id for i in mine if i.state is ItemState.SUCCEEDED}
            assert {i.state for i in mine} <= {ItemState.SUCCEEDED, ItemState.SKIPPED}
            assert len(acted) >= PER_ACCOUNT * 0.7
            assert rebooted(sim, account) == dict.fromkeys(acted, 1)  # each exactly once
            assert sim.stats(account).throttled <= 2
        assert sim.stats().calls_by_operation == {}  # the caller's own fleet untouched
    # One AssumeRole per account for the whole job (both regions share the role).
    east = regions[EAST]
    assert east.stats().sts_calls == {"AssumeRole": 3}
    assert [east.stats(a).sessions_issued for a in ACCOUNTS] == [1, 1, 1]


async def test_an_account_denying_the_role_fails_alone(
    regions: dict[str, Simulator], store: Store
) -> None:
    denied = ACCOUNTS[1]
    for sim in regions.values():
        sim.configure_account(denied, deny_assume_role=True)
    job = await run(store, (await new_job(store, regions)).id)
    assert job.status is JobStatus.FAILED
    assert job.message is not None
    assert "AccessDenied" in job.message
    assert f"arn:aws:iam::{denied}:role/FleetOps" in job.message
    assert f"account {denied}" in job.message
    items = await items_of(store, job.id)
    assert {i.account for i in items} == {ACCOUNTS[0], ACCOUNTS[2]}
    assert {i.state for i in items} == {ItemState.SUCCEEDED, ItemState.SKIPPED}
    for sim in regions.values():
        assert sim.stats(denied).calls_by_operation == {}
        for account in (ACCOUNTS[0], ACCOUNTS[2]):
            assert set(rebooted(sim, account).values()) == {1}


async def test_a_role_denied_on_resume_fails_that_accounts_items_with_the_reason(
    regions: dict[str, Simulator], store: Store
) -> None:
    job = await new_job(store, regions)
    runners: list[JobRunner] = []
    # Plan only, then the role's trust is withdrawn before the job runs.
    conns = [Connection(r, None, s.endpoint_url) for r, s in regions.items()]
    async with open_scope_clients(
        conns, JobOptions(rate=20), accounts=ACCOUNTS, assume=SPEC, job_id=job.id
    ) as clients:
        runners.append(JobRunner(store, clients, job))
        await runners[0].plan_only()
    denied = ACCOUNTS[2]
    for sim in regions.values():
        sim.configure_account(denied, deny_assume_role=True)
    job = await run(store, job.id)
    assert job.status is JobStatus.FAILED
    items = await items_of(store, job.id)
    failed = [i for i in items if i.state is ItemState.FAILED]
    assert {i.account for i in failed} == {denied}
    eligible = [i for i in items if i.account == denied and i.state is not ItemState.SKIPPED]
    assert len(failed) == len(eligible) > PER_ACCOUNT
    assert {i.error_code for i in failed} == {"AccessDenied"}
    assert all(
        f"role arn:aws:iam::{denied}:role/FleetOps" in (i.error_message or "") for i in failed
    )
    others = [i for i in items if i.account != denied]
    assert {i.state for i in others} == {ItemState.SUCCEEDED, ItemState.SKIPPED}
    # History groups counts and errors by account and region.
    scopes = {s.key: s for s in (await job_history(store, job)).scopes}
    assert set(scopes) == {f"{a}/{r}" for a in ACCOUNTS for r in regions}
    for region in regions:
        mine = scopes[f"{denied}/{region}"]
        assert mine.errors == {"AccessDenied": mine.counts["failed"]}
        assert mine.counts["succeeded"] == 0
        fine = scopes[f"{ACCOUNTS[0]}/{region}"]
        assert fine.errors == {} and fine.counts["succeeded"] > 0


async def test_credentials_expiring_mid_job_are_refreshed(
    regions: dict[str, Simulator], store: Store
) -> None:
    east = regions[EAST]
    job = await new_job(store, regions)
    runners: list[JobRunner] = []

    async def expire_once_submitting() -> None:
        while not runners or runners[0].stats.submitted < 20:
            await anyio.sleep(0.01)
        assert east.expire_sessions() == 3  # every account's role session, both regions

    async with anyio.create_task_group() as tg:
        tg.start_soon(expire_once_submitting)
        result: list[JobRecord] = []

        async def go() -> None:
            job_id = job.id
            loaded = await store.get_job(job_id)
            conns = [Connection(r, None, loaded.endpoints.get(r)) for r in loaded.regions]
            async with open_scope_clients(
                conns,
                JobOptions.from_dict(loaded.options),
                accounts=loaded.accounts,
                assume=SPEC,
                job_id=job_id,
            ) as clients:
                runner = JobRunner(store, clients, loaded)
                runners.append(runner)
                result.append(await runner.run())

        tg.start_soon(go)
    assert result[0].status is JobStatus.SUCCEEDED, result[0].message
    assert [east.stats(a).sessions_issued for a in ACCOUNTS] == [2, 2, 2]  # assumed again once
    expired = sum(
        sim.stats(a).total_calls - sum(sim.stats(a).calls_by_operation.values())
        for sim in regions.values()
        for a in ACCOUNTS
    )
    assert expired >= 1  # some calls were refused as expired, then sent again
    for sim in regions.values():
        for account in ACCOUNTS:
            assert set(rebooted(sim, account).values()) == {1}


async def test_resume_assumes_the_roles_again_and_acts_once(
    regions: dict[str, Simulator], store: Store
) -> None:
    job = await new_job(store, regions)
    conns = [Connection(r, None, s.endpoint_url) for r, s in regions.items()]
    async with open_scope_clients(
        conns, JobOptions(rate=20), accounts=ACCOUNTS, assume=SPEC, job_id=job.id
    ) as clients:
        await JobRunner(store, clients, job).plan_only()
    # A "crash" with a batch in flight in every account and region.
    in_flight = [i.id for i in await items_of(store, job.id) if i.workspace_id[-1] in "02468"]
    writer = store.writer()
    async with anyio.create_task_group() as tg:
        tg.start_soon(writer.run)
        await writer.write([ItemUpdate(ids=in_flight, state=ItemState.IN_FLIGHT, attempts_inc=1)])
        writer.close()
    job = await run(store, job.id)
    assert job.status is JobStatus.SUCCEEDED, job.message
    assert [regions[EAST].stats(a).sessions_issued for a in ACCOUNTS] == [2, 2, 2]
    for sim in regions.values():
        for account in ACCOUNTS:
            assert set(rebooted(sim, account).values()) == {1}
