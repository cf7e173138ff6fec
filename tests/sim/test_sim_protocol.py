"""The wire protocol as real clients see it: pagination, validation, errors, quota, faults."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import boto3
import botocore.exceptions
import pytest
from botocore.config import Config

from fleetops.aws.model import list_member_max
from fleetops.sim import Simulator


async def test_paginates_1000_workspaces_by_25(client: Any, sim: Simulator) -> None:
    pages = 0
    seen: list[str] = []
    async for page in client.get_paginator("describe_workspaces").paginate():
        pages += 1
        assert len(page["Workspaces"]) <= 25
        seen += [ws["WorkspaceId"] for ws in page["Workspaces"]]
    assert pages == 40
    assert len(seen) == 1000
    assert sorted(seen) == sorted(set(seen)) == sorted(sim.workspace_ids())


async def test_pagination_is_stable_while_workspaces_come_and_go(
    client: Any, sim: Simulator
) -> None:
    first = await client.describe_workspaces(Limit=25)
    seen = [ws["WorkspaceId"] for ws in first["Workspaces"]]
    initial = set(sim.workspace_ids())
    # terminate one WorkSpace not yet listed, then let it vanish
    victim = sorted(initial - set(seen))[10]
    await client.terminate_workspaces(TerminateWorkspaceRequests=[{"WorkspaceId": victim}])
    sim.advance(1.0)
    token = first["NextToken"]
    while token:
        page = await client.describe_workspaces(Limit=25, NextToken=token)
        seen += [ws["WorkspaceId"] for ws in page["Workspaces"]]
        token = page.get("NextToken")
    assert len(seen) == len(set(seen)) == 999
    assert set(seen) == initial - {victim}


def test_boto3_paginator_and_filters(thread_sim: Simulator) -> None:
    client = boto3.client("workspaces", endpoint_url=thread_sim.endpoint_url)
    paginator = client.get_paginator("describe_workspaces")
    ids = [ws["WorkspaceId"] for p in paginator.paginate() for ws in p["Workspaces"]]
    assert len(ids) == len(set(ids)) == 1000
    directory = client.describe_workspace_directories()["Directories"][0]["DirectoryId"]
    in_dir = [ws for p in paginator.paginate(DirectoryId=directory) for ws in p["Workspaces"]]
    assert len(in_dir) == 250 and {ws["DirectoryId"] for ws in in_dir} == {directory}
    user = in_dir[0]["UserName"]
    mine = client.describe_workspaces(DirectoryId=directory, UserName=user)["Workspaces"]
    assert [ws["UserName"] for ws in mine] == [user]
    bundles = client.describe_workspace_bundles()["Bundles"]
    assert len(bundles) == 3 and all(b["BundleId"].startswith("wsb-") for b in bundles)
    status = [
        s
        for p in client.get_paginator("describe_workspaces_connection_status").paginate()
        for s in p["WorkspacesConnectionStatus"]
    ]
    assert len(status) == 1000
    assert {"CONNECTED", "DISCONNECTED"} <= {s["ConnectionState"] for s in status}


async def test_describe_rejects_combined_filters_and_bad_tokens(client: Any) -> None:
    directory = (await client.describe_workspace_directories())["Directories"][0]["DirectoryId"]
    bundle = (await client.describe_workspace_bundles())["Bundles"][0]["BundleId"]
    for kwargs in (
        {"DirectoryId": directory, "BundleId": bundle},
        {"UserName": "user0001"},
        {"NextToken": "not-a-token"},
        {"WorkspaceIds": ["ws-0000000000"], "BundleId": bundle},
    ):
        with pytest.raises(botocore.exceptions.ClientError) as info:
            await client.describe_workspaces(**kwargs)
        assert info.value.response["Error"]["Code"] == "InvalidParameterValuesException", kwargs


async def test_26_item_reboot_is_a_validation_error_naming_the_limit(
    client: Any, sim: Simulator
) -> None:
    limit = list_member_max("RebootWorkspaces")
    ids = sim.workspace_ids()[: limit + 1]
    with pytest.raises(botocore.exceptions.ClientError) as info:
        await client.reboot_workspaces(RebootWorkspaceRequests=[{"WorkspaceId": i} for i in ids])
    error = info.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert error["Message"].startswith("1 validation error detected: Value '")
    assert error["Message"].endswith(
        "at 'rebootWorkspaceRequests' failed to satisfy constraint: "
        f"Member must have length less than or equal to {limit}"
    )
    assert sim.stats().states.get("REBOOTING", 0) == 0


async def test_malformed_id_enum_and_range_are_validation_errors(client: Any) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as info:
        await client.reboot_workspaces(RebootWorkspaceRequests=[{"WorkspaceId": "ws-NOPE"}])
    assert info.value.response["Error"]["Code"] == "ValidationException"
    assert "rebootWorkspaceRequests.1.member.workspaceId" in info.value.response["Error"]["Message"]
    with pytest.raises(botocore.exceptions.ClientError) as info:
        await client.modify_workspace_state(WorkspaceId="ws-0000000000", WorkspaceState="BROKEN")
    assert "enum value set" in info.value.response["Error"]["Message"]
    with pytest.raises(botocore.exceptions.ClientError) as info:
        await client.describe_workspaces(Limit=26)
    assert "less than or equal to 25" in info.value.response["Error"]["Message"]


async def _raw(sim: Simulator, target: str | None, body: Any) -> tuple[int, dict[str, Any], Any]:
    headers = {"Content-Type": "application/x-amz-json-1.1"}
    if target is not None:
        headers["X-Amz-Target"] = target
    async with (
        aiohttp.ClientSession() as session,
        session.post(sim.endpoint_url + "/", data=json.dumps(body), headers=headers) as resp,
    ):
        return resp.status, dict(resp.headers), await resp.json(content_type=None)


async def test_wire_format_and_unknown_operations(sim: Simulator) -> None:
    status, headers, body = await _raw(sim, "WorkspacesService.DescribeWorkspaces", {"Limit": 1})
    assert status == 200
    assert headers["Content-Type"] == "application/x-amz-json-1.1"
    assert len(headers["x-amzn-RequestId"]) == 36
    ws = body["Workspaces"][0]
    assert ws["WorkspaceId"].startswith("ws-") and len(ws["WorkspaceId"]) == 13
    status, _, body = await _raw(
        sim, "WorkspacesService.DescribeWorkspaceSnapshots", {"WorkspaceId": ws["WorkspaceId"]}
    )
    assert isinstance(body["RebuildSnapshots"][0]["SnapshotTime"], float)
    for target in ("WorkspacesService.NoSuchThing", None, "Other.DescribeWorkspaces"):
        status, headers, body = await _raw(sim, target, {})
        assert (status, body["__type"]) == (400, "UnknownOperationException")
        assert "x-amzn-RequestId" in headers
    status, _, body = await _raw(sim, "WorkspacesService.DescribeWorkspaces", {"Limit": "x"})
    assert (status, body["__type"]) == (400, "SerializationException")


async def test_throttling_is_a_client_error_and_retried_by_botocore(make_client: Any) -> None:
    async with Simulator(workspaces=10, rate=0.5, burst=2) as sim:
        async with make_client(sim, max_attempts=1) as client:
            await client.describe_workspaces()
            await client.describe_workspaces()
            with pytest.raises(botocore.exceptions.ClientError) as info:
                await client.describe_workspaces()
        assert info.value.response["Error"]["Code"] == "ThrottlingException"
        assert sim.stats().throttled == 1
        assert sim.stats().calls_by_operation == {"DescribeWorkspaces": 2}
        # The timeline counts both, by the second since the first request.
        timeline = sim.stats().timeline
        assert sum(timeline["admitted"]) == 2 and sum(timeline["throttled"]) == 1
        assert len(timeline["admitted"]) == len(timeline["throttled"]) >= 1
        # A token every 0.5 s: the second call comes before it, however loaded the machine.
        sim.configure(rate=2.0, burst=1)
        sim.reset_stats()
        async with make_client(sim, max_attempts=5) as client:
            await client.describe_workspaces()  # spends the one token
            answer = await client.describe_workspaces()  # throttled, then retried
        assert answer["ResponseMetadata"]["RetryAttempts"] >= 1
        stats = sim.stats()
        assert stats.throttled >= 1
        assert stats.calls_by_operation == {"DescribeWorkspaces": 2}
        assert stats.total_calls == 2 + stats.throttled


def test_boto3_standard_retries_recognise_throttling() -> None:
    with Simulator(workspaces=10, rate=20.0, burst=1).run_in_thread() as sim:
        client = boto3.client(
            "workspaces",
            endpoint_url=sim.endpoint_url,
            config=Config(retries={"total_max_attempts": 6, "mode": "standard"}),
        )
        client.describe_workspaces()
        answer = client.describe_workspaces()
        assert answer["ResponseMetadata"]["RetryAttempts"] >= 1
        assert sim.stats().throttled == answer["ResponseMetadata"]["RetryAttempts"]


async def test_per_operation_quota(make_client: Any) -> None:
    async with (
        Simulator(workspaces=10, rate=0.1, burst=1, per_operation_quota=True) as sim,
        make_client(sim) as client,
    ):
        await client.describe_workspaces()
        await client.describe_workspace_bundles()  # its own bucket
        with pytest.raises(botocore.exceptions.ClientError):
            await client.describe_workspaces()
        assert sim.stats().throttled == 1


async def test_injected_500s(make_client: Any) -> None:
    async with Simulator(workspaces=10, rate=None, error_rate=1.0) as sim:
        async with make_client(sim, max_attempts=1) as client:
            with pytest.raises(botocore.exceptions.ClientError) as info:
                await client.describe_workspaces()
        assert info.value.response["Error"]["Code"] == "InternalFailure"
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
        sim.configure(error_rate=0.3)
        sim.reset_stats()
        async with make_client(sim, max_attempts=1) as client:
            for _ in range(100):
                try:
                    await client.describe_workspaces()
                except botocore.exceptions.ClientError:
                    pass
        errors = sim.stats().errors_500
        assert 10 < errors < 50
        assert sim.stats().calls_by_operation["DescribeWorkspaces"] == 100


async def test_expired_credentials(client: Any, sim: Simulator) -> None:
    sim.expire_credentials(True)
    with pytest.raises(botocore.exceptions.ClientError) as info:
        await client.describe_workspaces()
    assert info.value.response["Error"]["Code"] == "ExpiredTokenException"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    sim.expire_credentials(False)
    assert (await client.describe_workspaces())["Workspaces"]


async def test_generation_is_deterministic() -> None:
    async with Simulator(workspaces=50, seed=7) as a, Simulator(workspaces=50, seed=7) as b:
        assert a.workspace_ids() == b.workspace_ids()
        assert [a.workspace(i) for i in a.workspace_ids()] == [
            b.workspace(i) for i in b.workspace_ids()
        ]
    async with Simulator(workspaces=50, seed=8) as c:
        assert c.workspace_ids() != a.workspace_ids()
