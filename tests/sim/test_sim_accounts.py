"""The simulator serves several accounts and answers STS as botocore and boto3 speak it.

AssumeRole and GetCallerIdentity over the query protocol (form POST, XML answer, parsed by the
real clients); each account has its own fleet, quota and counters, chosen by the access key a
WorkSpaces request is signed with; an account can deny AssumeRole or require an external id;
temporary credentials expire.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import boto3
import botocore.exceptions
import pytest
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

from fleetops.sim import Simulator

REGION = "us-east-1"
ACCOUNT_A = "111111111111"
ACCOUNT_B = "222222222222"
DENIED = "333333333333"


def role(account: str, name: str = "FleetOps") -> str:
    return f"arn:aws:iam::{account}:role/{name}"


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(
        workspaces=60, rate=2.0, burst=5, transition_seconds=0.1, accounts=[ACCOUNT_A, ACCOUNT_B]
    ) as running:
        running.configure_account(DENIED, deny_assume_role=True)
        yield running


def sts(sim: Simulator, **keys: str) -> Any:
    return get_session().create_client(
        "sts",
        region_name=REGION,
        endpoint_url=sim.endpoint_url,
        aws_access_key_id=keys.get("key", "testing"),
        aws_secret_access_key=keys.get("secret", "testing"),
        aws_session_token=keys.get("token"),
    )


def workspaces(sim: Simulator, credentials: dict[str, Any] | None = None) -> Any:
    keys: dict[str, Any] = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    if credentials is not None:
        keys = {
            "aws_access_key_id": credentials["AccessKeyId"],
            "aws_secret_access_key": credentials["SecretAccessKey"],
            "aws_session_token": credentials["SessionToken"],
        }
    return get_session().create_client(
        "workspaces",
        region_name=REGION,
        endpoint_url=sim.endpoint_url,
        config=AioConfig(retries={"total_max_attempts": 1}),
        **keys,
    )


async def assume(sim: Simulator, account: str, **extra: Any) -> dict[str, Any]:
    async with sts(sim) as client:
        answer: dict[str, Any] = await client.assume_role(
            RoleArn=role(account), RoleSessionName="fleetops-test", **extra
        )
    return answer


async def ids_seen(sim: Simulator, credentials: dict[str, Any] | None) -> set[str]:
    async with workspaces(sim, credentials) as client:
        pages = client.get_paginator("describe_workspaces").paginate(PaginationConfig={})
        return {ws["WorkspaceId"] async for page in pages for ws in page["Workspaces"]}


async def test_assume_role_answers_temporary_credentials_of_the_role(sim: Simulator) -> None:
    before = datetime.now(UTC)
    answer = await assume(sim, ACCOUNT_A, DurationSeconds=900)
    after = datetime.now(UTC)  # the session was issued in between (seconds on a loaded machine)
    creds = answer["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA") and creds["SessionToken"]
    assert 850 <= (creds["Expiration"] - before).total_seconds()
    assert (creds["Expiration"] - after).total_seconds() <= 905
    assert answer["AssumedRoleUser"]["Arn"] == (
        f"arn:aws:sts::{ACCOUNT_A}:assumed-role/FleetOps/fleetops-test"
    )
    async with sts(
        sim, key=creds["AccessKeyId"], secret=creds["SecretAccessKey"], token=creds["SessionToken"]
    ) as client:
        identity = await client.get_caller_identity()
    assert identity["Account"] == ACCOUNT_A
    assert identity["Arn"] == answer["AssumedRoleUser"]["Arn"]
    assert sim.stats(ACCOUNT_A).sessions_issued == 1
    assert sim.stats().sts_calls == {"AssumeRole": 1}


async def test_each_account_has_its_own_fleet_chosen_by_the_signing_key(sim: Simulator) -> None:
    default_ids = await ids_seen(sim, None)
    a_ids = await ids_seen(sim, (await assume(sim, ACCOUNT_A))["Credentials"])
    b_ids = await ids_seen(sim, (await assume(sim, ACCOUNT_B))["Credentials"])
    assert len(default_ids) == len(a_ids) == len(b_ids) == 60
    assert not (default_ids & a_ids) and not (a_ids & b_ids) and not (default_ids & b_ids)
    assert set(sim.workspace_ids(ACCOUNT_A)) == a_ids
    per_account = sim.account_stats()
    for account in (sim.default_account, ACCOUNT_A, ACCOUNT_B):
        assert per_account[account].calls_by_operation == {"DescribeWorkspaces": 3}
    assert per_account[DENIED].calls_by_operation == {}


async def test_each_account_has_its_own_quota(sim: Simulator) -> None:
    creds = (await assume(sim, ACCOUNT_A))["Credentials"]
    sim.configure(rate=0.001, burst=5)  # no refill during the test
    async with workspaces(sim) as default, workspaces(sim, creds) as other:
        for _ in range(5):  # the burst of each account
            await default.describe_workspaces(Limit=1)
            await other.describe_workspaces(Limit=1)
        with pytest.raises(botocore.exceptions.ClientError) as info:
            await default.describe_workspaces(Limit=1)
    assert info.value.response["Error"]["Code"] == "ThrottlingException"
    assert sim.stats().throttled == 1
    assert sim.stats(ACCOUNT_A).throttled == 0


async def test_denied_account_answers_access_denied_naming_the_role(sim: Simulator) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as info:
        await assume(sim, DENIED)
    error = info.value.response["Error"]
    assert error["Code"] == "AccessDenied"
    assert f"sts:AssumeRole on resource: {role(DENIED)}" in error["Message"]
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    with pytest.raises(botocore.exceptions.ClientError) as unknown:
        await assume(sim, "444444444444")  # no such account: no such role
    assert unknown.value.response["Error"]["Code"] == "AccessDenied"


async def test_external_id_is_required_when_the_account_says_so(sim: Simulator) -> None:
    sim.configure_account(ACCOUNT_B, external_id="secret-42")
    with pytest.raises(botocore.exceptions.ClientError) as info:
        await assume(sim, ACCOUNT_B)
    assert info.value.response["Error"]["Code"] == "AccessDenied"
    answer = await assume(sim, ACCOUNT_B, ExternalId="secret-42")
    assert answer["Credentials"]["AccessKeyId"].startswith("ASIA")


async def test_expired_sessions_answer_expired_token_until_assumed_again(sim: Simulator) -> None:
    creds = (await assume(sim, ACCOUNT_A))["Credentials"]
    assert sim.expire_sessions(ACCOUNT_A) == 1
    async with workspaces(sim, creds) as client:
        with pytest.raises(botocore.exceptions.ClientError) as info:
            await client.describe_workspaces(Limit=1)
    assert info.value.response["Error"]["Code"] == "ExpiredTokenException"
    fresh = (await assume(sim, ACCOUNT_A))["Credentials"]
    async with workspaces(sim, fresh) as client:
        assert len((await client.describe_workspaces(Limit=1))["Workspaces"]) == 1


async def test_session_lifetime_knob_expires_credentials_by_the_clock(sim: Simulator) -> None:
    sim.set_session_seconds(60)
    creds = (await assume(sim, ACCOUNT_A))["Credentials"]
    async with workspaces(sim, creds) as client:
        await client.describe_workspaces(Limit=1)
        sim.advance(61)
        with pytest.raises(botocore.exceptions.ClientError) as info:
            await client.describe_workspaces(Limit=1)
    assert info.value.response["Error"]["Code"] == "ExpiredTokenException"


async def test_a_wrong_session_token_is_rejected(sim: Simulator) -> None:
    creds = dict((await assume(sim, ACCOUNT_A))["Credentials"], SessionToken="forged")
    async with workspaces(sim, creds) as client:
        with pytest.raises(botocore.exceptions.ClientError) as info:
            await client.describe_workspaces(Limit=1)
    assert info.value.response["Error"]["Code"] == "UnrecognizedClientException"


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"RoleArn": "arn:aws:iam::1:role/x", "RoleSessionName": "ok"}, "is invalid"),
        ({"RoleArn": role(ACCOUNT_A), "RoleSessionName": "bad name!"}, "roleSessionName"),
        ({"RoleArn": role(ACCOUNT_A), "RoleSessionName": "ok", "DurationSeconds": 7200}, "Max"),
    ],
)
async def test_invalid_assume_role_requests_are_validation_errors(
    sim: Simulator, params: dict[str, Any], fragment: str
) -> None:
    async with sts(sim) as client:
        with pytest.raises(botocore.exceptions.ClientError) as info:
            await client.assume_role(**params)
    assert info.value.response["Error"]["Code"] == "ValidationError"
    assert fragment in info.value.response["Error"]["Message"]


def test_boto3_assumes_a_role_and_reaches_that_accounts_fleet() -> None:
    with Simulator(workspaces=10, rate=None, accounts=[ACCOUNT_A]).run_in_thread() as sim:
        base = {
            "region_name": REGION,
            "endpoint_url": sim.endpoint_url,
            "aws_access_key_id": "AKIDBOTO3",
            "aws_secret_access_key": "s",
        }
        caller = boto3.client("sts", **base).get_caller_identity()
        assert caller["Account"] == sim.default_account
        creds = boto3.client("sts", **base).assume_role(
            RoleArn=role(ACCOUNT_A), RoleSessionName="boto3"
        )["Credentials"]
        client = boto3.client(
            "workspaces",
            region_name=REGION,
            endpoint_url=sim.endpoint_url,
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
        )
        ids = {ws["WorkspaceId"] for ws in client.describe_workspaces()["Workspaces"]}
        assert ids == set(sim.workspace_ids(ACCOUNT_A))
        assert sim.stats(ACCOUNT_A).calls_by_operation == {"DescribeWorkspaces": 1}
        assert sim.stats().calls_by_operation == {}


async def test_another_region_serves_an_issued_key_from_its_account(sim: Simulator) -> None:
    creds = (await assume(sim, ACCOUNT_B))["Credentials"]
    async with Simulator(workspaces=20, rate=None, seed=9, accounts=[ACCOUNT_B]) as other:
        ids = await ids_seen(other, creds)  # a process that never issued it, like another region
        assert ids == set(other.workspace_ids(ACCOUNT_B))
        assert other.stats(ACCOUNT_B).calls_by_operation == {"DescribeWorkspaces": 1}
        assert other.stats().calls_by_operation == {}


async def test_http_knobs_and_stats_per_account(sim: Simulator) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as http:
        answer = await http.post(
            f"{sim.endpoint_url}/_sim/account",
            json={"account": ACCOUNT_A, "deny_assume_role": True},
        )
        assert answer.status == 200
        with pytest.raises(botocore.exceptions.ClientError):
            await assume(sim, ACCOUNT_A)
        await http.post(
            f"{sim.endpoint_url}/_sim/account",
            json={"account": ACCOUNT_A, "deny_assume_role": False},
        )
        creds = (await assume(sim, ACCOUNT_A))["Credentials"]
        await ids_seen(sim, creds)
        answer = await http.post(
            f"{sim.endpoint_url}/_sim/account", json={"account": ACCOUNT_A, "expire_sessions": True}
        )
        assert await answer.json() == {"expired_sessions": 1}
        stats = await (await http.get(f"{sim.endpoint_url}/_sim/stats?account={ACCOUNT_A}")).json()
        assert stats["calls_by_operation"] == {"DescribeWorkspaces": 3}
        assert stats["sessions_issued"] == 1
        missing = await http.get(f"{sim.endpoint_url}/_sim/stats?account=999999999999")
        assert missing.status == 404
        bad = await http.post(f"{sim.endpoint_url}/_sim/account", json={"account": "12"})
        assert bad.status == 400
