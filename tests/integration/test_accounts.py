"""One job over several accounts and regions, by assumed role, against the simulator.

Two simulators stand for two regions of the same accounts (STS and its sessions are shared, as
IAM is global; every account has its own fleet in each region). The caller signs with the
simulator's dummy keys (the default account) and assumes a role in each target account.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from engine_support import isolate_aws_configuration

from fleetops.aws.client import Connection
from fleetops.catalogue.accounts import AssumeSpec
from fleetops.catalogue.options import JobOptions
from fleetops.catalogue.targets import Targets
from fleetops.engine.clients import open_scope_clients
from fleetops.engine.runner import JobRunner
from fleetops.records import ItemRecord, ItemUpdate, JobRecord, NewJob
from fleetops.sim import Simulator
from fleetops.states import ItemState, JobStatus
from fleetops.store import Store
from fleetops.store.history import job_history

ACCOUNTS = ("111111111111", "222222222222", "333333333333")
EAST, WEST = "us-east-1", "eu-west-1"
SPEC = AssumeSpec(role_name="FleetOps", external_id="fleet-ext")
PER_ACCOUNT = 30


@pytest.fixture(autouse=True)
def no_aws_configuration(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No AWS configuration of the machine running the tests leaks into one."""
    yield from isolate_aws_configuration(monkeypatch, tmp_path)


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


async def test_named_workspaces_over_accounts_one_denied(
    regions: dict[str, Simulator], store: Store
) -> None:
    """Ids named over three accounts x two regions: each is one item where it lives; those of
    the account whose role is denied cannot be found anywhere reachable and fail with that
    account's reason (not skipped as if they did not exist)."""
    denied = ACCOUNTS[1]
    for sim in regions.values():
        sim.configure_account(denied, deny_assume_role=True)
    east, west = regions[EAST], regions[WEST]
    reachable = [east.workspace_ids(ACCOUNTS[0])[0], west.workspace_ids(ACCOUNTS[2])[0]]
    lost = east.workspace_ids(denied)[0]
    job = await new_job(store, regions)
    await store.update_job(
        job.id, targets=Targets.build(workspace_ids=[*reachable, lost]).as_dict()
    )
    job = await run(store, job.id)
    assert job.status is JobStatus.FAILED
    got = {i.workspace_id: i for i in await items_of(store, job.id)}
    assert set(got) == {*reachable, lost}  # one item each, no duplicate per scope
    assert (got[reachable[0]].account, got[reachable[0]].region) == (ACCOUNTS[0], EAST)
    assert (got[reachable[1]].account, got[reachable[1]].region) == (ACCOUNTS[2], WEST)
    assert got[lost].state is ItemState.FAILED
    assert got[lost].error_code == "AccessDenied"
    assert denied in (got[lost].error_message or "")


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
    # The plan shows its spread: counts, calls and quota time of each account and region.
    summary = runners[0].plan_summary
    assert summary is not None
    rows = summary.as_dict()["scopes"]
    assert [r["scope"] for r in rows] == sorted(f"{a}/{r}" for a in ACCOUNTS for r in regions)
    assert sum(r["eligible"] for r in rows) == summary.eligible
    assert summary.seconds_at_quota == max(s.seconds_at_quota for s in summary.by_scope.values())
    # (each scope on its own quota: not the time of all the calls on one quota)
    assert summary.seconds_at_quota < (summary.calls_needed - summary.burst) / (summary.rate or 1)
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
    # A retry keeps each failed item's account: only the denied one, with the same role.
    from fleetops.api import retry_job

    child = await retry_job(store, job.id)
    assert child.accounts == (denied,) and child.assume == SPEC.as_dict()
    assert set(child.targets["workspace_ids"]) == {i.workspace_id for i in failed}
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


# --- the command line ---------------------------------------------------------------------


def fleetops(db: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "fleetops", "--db", str(db), *args]


def cli_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_CONFIG_FILE=str(tmp_path / "aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "aws-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    return env


def account_args(sims: dict[str, Simulator], accounts: tuple[str, ...] = ACCOUNTS) -> list[str]:
    args: list[str] = []
    for region, sim in sims.items():
        args += ["--region", region, "--endpoint-url", sim.endpoint_url]
    for account in accounts:
        args += ["--account", account]
    return [*args, "--role-name", "FleetOps", "--external-id", "fleet-ext"]


@contextmanager
def threaded_regions(**knobs: Any) -> Iterator[dict[str, Simulator]]:
    common: dict[str, Any] = {
        "workspaces": PER_ACCOUNT,
        "rate": 20,
        "burst": 5,
        "accounts": ACCOUNTS,
        "connected_fraction": 0.0,
        **knobs,
    }
    with (
        Simulator(seed=1, region=EAST, **common).run_in_thread() as east,
        Simulator(seed=2, region=WEST, **common).run_in_thread() as west,
    ):
        for sim in (east, west):
            for account in ACCOUNTS:
                sim.configure_account(account, external_id="fleet-ext")
        yield {EAST: east, WEST: west}


def test_cli_one_account_denied_exits_1_and_shows_it_by_account(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    denied = ACCOUNTS[0]
    with threaded_regions(transition_seconds=0.2) as sims:
        for sim in sims.values():
            sim.configure_account(denied, deny_assume_role=True)
        planned = subprocess.run(
            fleetops(db, "run", "reboot", "--dry-run", "--json", *account_args(sims)),
            capture_output=True,
            text=True,
            env=cli_env(tmp_path),
            timeout=300,
        )
        assert planned.returncode == 0, planned.stderr
        spread = {row["scope"]: row for row in json.loads(planned.stdout)["scopes"]}
        assert set(spread) == {f"{a}/{r}" for a in ACCOUNTS for r in (EAST, WEST)}
        assert "AccessDenied" in spread[f"{denied}/{EAST}"]["unreachable"]
        assert all(spread[f"{ACCOUNTS[1]}/{r}"]["eligible"] > 0 for r in (EAST, WEST))
        assert all(
            sim.stats(a).calls_by_operation.get("RebootWorkspaces") is None
            for sim in sims.values()
            for a in ACCOUNTS
        )  # a dry run acts on nothing
        done = subprocess.run(
            fleetops(db, "run", "reboot", "--yes", "--json", *account_args(sims)),
            capture_output=True,
            text=True,
            env=cli_env(tmp_path),
            timeout=300,
        )
        assert done.returncode == 1, done.stderr
        job = json.loads(done.stdout.strip().splitlines()[-1])
        assert job["status"] == "failed"
        assert f"arn:aws:iam::{denied}:role/FleetOps" in job["message"]
        assert "AccessDenied" in job["message"]
        assert job["counts"]["failed"] == 0 and job["counts"]["succeeded"] > 0
        for sim in sims.values():
            assert sim.stats(denied).calls_by_operation == {}
            for account in ACCOUNTS[1:]:
                assert set(rebooted(sim, account).values()) == {1}
    assert job["caller_arn"] == "arn:aws:iam::123456789012:user/fleetops-sim"
    shown = subprocess.run(
        fleetops(db, "jobs", "show", job["id"], "--json"),
        capture_output=True,
        text=True,
        env=cli_env(tmp_path),
        timeout=120,
    )
    assert shown.returncode == 0, shown.stderr
    scopes = {s["scope"]: s for s in json.loads(shown.stdout)["scopes"]}
    assert set(scopes) == {f"{a}/{r}" for a in ACCOUNTS[1:] for r in (EAST, WEST)}
    listed = subprocess.run(
        fleetops(db, "jobs", "items", job["id"], "--account", ACCOUNTS[1], "--json"),
        capture_output=True,
        text=True,
        env=cli_env(tmp_path),
        timeout=120,
    )
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert rows and {row["account"] for row in rows} == {ACCOUNTS[1]}


def test_cli_sigkill_then_resume_across_accounts(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    with threaded_regions(transition_seconds=3.0, rate=4) as sims:
        proc = subprocess.Popen(
            fleetops(db, "-q", "run", "reboot", "--yes", "--rate", "4", *account_args(sims)),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=cli_env(tmp_path),
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            sent = sum(len(rebooted(s, a)) for s in sims.values() for a in ACCOUNTS)
            if sent >= 40:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert 0 < sent < 3 * 2 * PER_ACCOUNT
        with sqlite3.connect(db) as conn:  # what the kill left in flight (may be sent again)
            in_flight = set(
                conn.execute(
                    "SELECT account, region, workspace_id FROM items WHERE state = 'in_flight'"
                ).fetchall()
            )
        listed = subprocess.run(
            fleetops(db, "jobs", "list", "--json"),
            capture_output=True,
            text=True,
            env=cli_env(tmp_path),
            timeout=120,
        )
        job_id = json.loads(listed.stdout)[0]["id"]
        resumed = subprocess.run(
            fleetops(db, "jobs", "resume", job_id, "--json"),
            capture_output=True,
            text=True,
            env=cli_env(tmp_path),
            timeout=300,
        )
        assert resumed.returncode == 0, resumed.stderr
        job = json.loads(resumed.stdout.strip().splitlines()[-1])
        assert job["status"] == "succeeded"
        for region, sim in sims.items():
            for account in ACCOUNTS:
                counts = rebooted(sim, account)
                assert counts
                # Only what was in flight at the kill (and showed no sign of rebooting by the
                # time the resume looked) may have been sent twice.
                twice = {(account, region, ws) for ws, n in counts.items() if n > 1}
                assert twice <= in_flight
                assert max(counts.values()) <= 2
        # The roles were assumed again by the resume (no credentials were stored).
        assert [sims[EAST].stats(a).sessions_issued for a in ACCOUNTS] == [2, 2, 2]


async def test_a_stored_plan_shows_its_spread_and_the_caller(
    regions: dict[str, Simulator], store: Store
) -> None:
    from fleetops.api import plan_job, stored_plan

    job = await plan_job(store, (await new_job(store, regions)).id)
    assert job.caller_arn == f"arn:aws:iam::{regions[EAST].default_account}:user/fleetops-sim"
    assert job.accounts == ACCOUNTS and job.assume == SPEC.as_dict()
    summary = await stored_plan(store, job.id)
    rows = summary.scope_rows()
    assert [row["scope"] for row in rows] == sorted(f"{a}/{r}" for a in ACCOUNTS for r in regions)
    assert sum(row["eligible"] for row in rows) == summary.eligible > 0
    assert summary.seconds_at_quota == max(s.seconds_at_quota for s in summary.by_scope.values())
