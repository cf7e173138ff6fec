"""Assumed roles over real HTTP against the simulator: one AssumeRole per account, the job's
session name and external id sent, denial named, refresh before expiry and after ExpiredToken,
STS where botocore sends it (AWS_ENDPOINT_URL_STS)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio
import pytest
from engine_support import isolate_aws_configuration

from fleetops.aws.client import Connection, WorkSpacesClient
from fleetops.aws.ratelimit import TokenBucket
from fleetops.aws.retry import RetryPolicy
from fleetops.aws.roles import AssumedRole, UnreachableAccount, caller_arn
from fleetops.catalogue.accounts import (
    AssumeSpec,
    accounts_from_flags,
    merge_accounts,
    read_accounts_file,
    session_name,
)
from fleetops.catalogue.options import JobOptions
from fleetops.engine.clients import open_scope_clients
from fleetops.errors import AssumeRoleError, UsageError
from fleetops.sim import Simulator

REGION = "us-east-1"
ACCOUNT = "111111111111"
DENIED = "222222222222"
SPEC = AssumeSpec(role_name="FleetOps", external_id="ext-1234")
FAST = RetryPolicy(attempts=2, base=0.01, cap=0.05)


@pytest.fixture(autouse=True)
def no_aws_configuration(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No AWS configuration of the machine running the tests leaks into one."""
    yield from isolate_aws_configuration(monkeypatch, tmp_path)


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(workspaces=30, rate=None, accounts=[ACCOUNT]) as running:
        running.configure_account(ACCOUNT, external_id="ext-1234")
        running.configure_account(DENIED, deny_assume_role=True)
        yield running


def role_for(sim: Simulator, account: str = ACCOUNT, job_id: str = "j1") -> AssumedRole:
    caller = Connection(REGION, endpoint_url=sim.endpoint_url)
    return AssumedRole(caller, account, SPEC, session_name=session_name(job_id))


def client_for(sim: Simulator, role: AssumedRole) -> WorkSpacesClient:
    conn = Connection(REGION, endpoint_url=sim.endpoint_url, account=role.account)
    return WorkSpacesClient(conn, bucket=TokenBucket(None, 1), policy=FAST, role=role)


async def test_a_role_reaches_its_accounts_fleet_with_one_assume_role(sim: Simulator) -> None:
    role = role_for(sim, job_id="j20260101abc")
    async with client_for(sim, role) as client:
        for _ in range(3):
            result = await client.call("DescribeWorkspaces", Limit=25)
    ids = {ws["WorkspaceId"] for ws in result.response["Workspaces"]}
    assert ids <= set(sim.workspace_ids(ACCOUNT))
    assert not ids & set(sim.workspace_ids())
    assert sim.stats(ACCOUNT).sessions_issued == 1
    assert sim.stats(ACCOUNT).calls_by_operation == {"DescribeWorkspaces": 3}
    assert sim.stats().calls_by_operation == {}  # the caller's own account saw only STS
    assert sim.stats().sts_calls == {"AssumeRole": 1}
    assert role.session_name == "fleetops-j20260101abc"


async def test_the_session_name_and_external_id_reach_sts(sim: Simulator) -> None:
    sim.configure_account(ACCOUNT, external_id="another")  # the spec's id no longer matches
    with pytest.raises(AssumeRoleError):
        await role_for(sim).session()
    sim.configure_account(ACCOUNT, external_id="ext-1234")
    await role_for(sim).session()
    arn = await caller_arn(
        Connection(REGION, endpoint_url=sim.endpoint_url)
    )  # the caller itself: dummy keys against the simulator
    assert arn == f"arn:aws:iam::{sim.default_account}:user/fleetops-sim"


async def test_a_denied_role_names_the_role_and_the_account(sim: Simulator) -> None:
    role = role_for(sim, DENIED)
    with pytest.raises(AssumeRoleError) as info:
        async with client_for(sim, role):
            pass
    assert info.value.code == "AccessDenied"
    assert f"arn:aws:iam::{DENIED}:role/FleetOps" in str(info.value)
    assert f"in account {DENIED}" in str(info.value)
    assert sim.stats(DENIED).calls_by_operation == {}


async def test_expired_token_assumes_the_role_again_once_for_all_calls(sim: Simulator) -> None:
    role = role_for(sim)
    async with client_for(sim, role) as client:
        await client.call("DescribeWorkspaces", Limit=1)
        sim.expire_sessions(ACCOUNT)
        async with anyio.create_task_group() as tg:
            for _ in range(8):
                tg.start_soon(lambda: client.call("DescribeWorkspaces", Limit=1))
    assert sim.stats(ACCOUNT).sessions_issued == 2  # eight calls expired, one AssumeRole
    assert sim.stats(ACCOUNT).total_calls == 1 + 8 + 8  # eight refused, eight sent again
    assert sim.stats(ACCOUNT).calls_by_operation == {"DescribeWorkspaces": 1 + 8}
    assert client.stats.errors_by_code == {"ExpiredTokenException": 8}


async def test_short_lived_credentials_are_refreshed_before_they_expire(sim: Simulator) -> None:
    sim.set_session_seconds(4)
    role = role_for(sim)
    async with client_for(sim, role) as client:
        for _ in range(14):
            await client.call("DescribeWorkspaces", Limit=1)
            await anyio.sleep(0.5)
    assert sim.stats(ACCOUNT).sessions_issued >= 2
    assert client.stats.errors_by_code == {}  # never sent with expired credentials


async def test_sts_endpoint_from_the_environment_is_honoured(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with Simulator(workspaces=5, rate=None, accounts=[ACCOUNT]) as sts_sim:
        sts_sim.configure_account(ACCOUNT, external_id="ext-1234")
        monkeypatch.setenv("AWS_ENDPOINT_URL_STS", sts_sim.endpoint_url)
        await role_for(sim).session()
        assert sts_sim.stats().sts_calls == {"AssumeRole": 1}
    assert sim.stats().sts_calls == {}


def test_account_lists_and_role_specs_are_checked(tmp_path: Path) -> None:
    listing = tmp_path / "accounts.txt"
    listing.write_text("# estate\n111111111111\n\n222222222222  # sales\n111111111111\n")
    assert read_accounts_file(listing) == ["111111111111", "222222222222"]
    listing.write_text("111111111111\n12345\n")
    with pytest.raises(UsageError, match=r"accounts.txt:2: '12345' is not an AWS account id"):
        read_accounts_file(listing)
    assert merge_accounts(["333333333333", "111111111111"], ["111111111111"]) == (
        "333333333333",
        "111111111111",
    )
    template = AssumeSpec(role_arn_template="arn:aws:iam::{account}:role/ops/FleetOps")
    assert template.role_arn("444444444444") == "arn:aws:iam::444444444444:role/ops/FleetOps"
    assert AssumeSpec.from_dict(template.as_dict()) == template
    for bad in (
        {},
        {"role_name": "A", "role_arn_template": "arn:aws:iam::{account}:role/A"},
        {"role_arn_template": "arn:aws:iam::111111111111:role/A"},
        {"role_arn_template": "arn:aws:iam::{account}:role/{name}"},
        {"role_name": "bad name"},
        {"role_name": "A", "external_id": "x"},
    ):
        with pytest.raises(UsageError):
            AssumeSpec(**bad)
    assert session_name("j" * 80) == "fleetops-" + "j" * 55
    assert accounts_from_flags() == (None, None)
    listing.write_text("222222222222\n")
    assert accounts_from_flags(["111111111111"], listing, role_name="R") == (
        ("111111111111", "222222222222"),
        AssumeSpec(role_name="R"),
    )
    with pytest.raises(UsageError, match="need accounts"):
        accounts_from_flags(role_name="R")
    with pytest.raises(UsageError, match="--role-name NAME or --role-arn-template"):
        accounts_from_flags(["111111111111"])


async def test_every_account_and_region_has_its_own_client_and_bucket(sim: Simulator) -> None:
    other = "444444444444"
    sim.configure_account(other, external_id="ext-1234")
    conns = [
        Connection(REGION, endpoint_url=sim.endpoint_url),
        Connection("eu-west-1", endpoint_url=sim.endpoint_url),
    ]
    async with open_scope_clients(
        conns, JobOptions(), accounts=[ACCOUNT, other, DENIED], assume=SPEC, job_id="j2"
    ) as clients:
        assert set(clients) == {
            f"{account}/{region}"
            for account in (ACCOUNT, other, DENIED)
            for region in (REGION, "eu-west-1")
        }
        reachable = [c for c in clients.values() if isinstance(c, WorkSpacesClient)]
        assert len(reachable) == 4
        assert len({id(c.bucket) for c in reachable}) == 4  # one quota per account and region
        denied = clients[f"{DENIED}/{REGION}"]
        assert isinstance(denied, UnreachableAccount)
        with pytest.raises(AssumeRoleError, match=f"in account {DENIED}"):
            await denied.call("DescribeWorkspaces")
    assert sim.stats().sts_calls == {"AssumeRole": 3}  # one per account, whatever the regions


def test_job_files_and_flags_name_accounts(tmp_path: Path) -> None:
    from fleetops.api import RunRequest, Where, build_spec

    listing = tmp_path / "accounts.txt"
    listing.write_text("333333333333\n")
    job = tmp_path / "job.yaml"
    job.write_text(
        "action: reboot\ntargets: {states: [UNHEALTHY]}\nregion: [us-east-1]\n"
        "accounts: ['111111111111', 222222222222]\naccounts_file: accounts.txt\n"
        "role_name: FleetOps\nexternal_id: ext-1234\n"
    )
    spec = build_spec(RunRequest(str(job)))
    assert spec.accounts == ("111111111111", "222222222222", "333333333333")
    assert spec.assume == AssumeSpec(role_name="FleetOps", external_id="ext-1234")
    # Flags override the file's fields.
    flags = Where(account=("444444444444",), role_arn_template="arn:aws:iam::{account}:role/X")
    spec = build_spec(RunRequest(str(job), where=flags))
    assert spec.accounts == ("444444444444",)  # the flag's accounts replace the file's
    assert spec.assume.role_arn("444444444444") == "arn:aws:iam::444444444444:role/X"
    job.write_text("action: reboot\ntargets: {states: [UNHEALTHY]}\naccounts: ['1234']\n")
    with pytest.raises(UsageError, match="not an AWS account id"):
        build_spec(RunRequest(str(job)))


def test_the_readme_role_policy_names_exactly_the_operations_fleetops_calls() -> None:
    """The IAM policy in README allows every WorkSpaces operation fleetops's code calls (the
    catalogue, planning, verification) and nothing more."""
    import json
    import re

    from fleetops.aws.model import service_model

    root = Path(__file__).resolve().parents[2]
    operations = set(service_model().operation_names)
    called: set[str] = set()
    for source in (root / "fleetops").rglob("*.py"):
        if {"sim", "bench"} & set(source.relative_to(root / "fleetops").parts):
            continue  # the simulator serves operations, the benchmark's peer calls its own
        called |= set(re.findall(r'"([A-Z][A-Za-z]+)"', source.read_text())) & operations
    readme = (root / "README.md").read_text()
    policies = [
        json.loads(block)
        for block in re.findall(r"```json\n(.*?)```", readme, re.S)
        if "FleetOpsRead" in block
    ]
    assert len(policies) == 1
    allowed = {
        action.removeprefix("workspaces:")
        for statement in policies[0]["Statement"]
        for action in statement["Action"]
    }
    assert allowed == called
    assert {"RebootWorkspaces", "DescribeWorkspaces"} <= called  # the scan found the code
