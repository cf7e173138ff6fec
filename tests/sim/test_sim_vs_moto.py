"""The same boto3 code against the simulator and against moto's server: the same answers.

moto 5 implements only part of WorkSpaces: CreateWorkspaces, DescribeWorkspaces,
TerminateWorkspaces, DescribeWorkspaceDirectories, CreateTags/DescribeTags (no DeleteTags, no
reboot/start/stop/rebuild/restore/migrate/modify, no snapshots or bundles). Only what both
implement is compared; an operation moto lacks is skipped with a message saying so. moto creates
WorkSpaces directly AVAILABLE and removes terminated ones at once, so states are compared after
the simulator's transitions have settled.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config
from moto.server import ThreadedMotoServer

from fleetops.sim import Simulator

# One worker runs this module: its moto server and scenarios (seconds of processor time) are
# made once, not once per xdist worker.
pytestmark = pytest.mark.xdist_group("moto")


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    """moto in server mode on 127.0.0.1, with dummy credentials for the whole module."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_ACCESS_KEY_ID", "testing")
        env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        env.setenv("AWS_DEFAULT_REGION", "us-east-1")
        env.setenv("AWS_CONFIG_FILE", "/dev/null")
        env.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        env.delenv("AWS_PROFILE", raising=False)
        try:
            yield f"http://{host}:{port}"
        finally:
            server.stop()


def _moto_directory(url: str) -> str:
    ec2 = boto3.client("ec2", endpoint_url=url)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"us-east-1{z}")
        ["Subnet"]["SubnetId"]
        for i, z in enumerate("ab")
    ]  # fmt: skip
    ds = boto3.client("ds", endpoint_url=url)
    directory = ds.create_directory(
        Name="corp.example.com",
        Password="Passw0rd!Passw0rd",
        Size="Small",
        VpcSettings={"VpcId": vpc, "SubnetIds": subnets},
    )["DirectoryId"]
    boto3.client("workspaces", endpoint_url=url).register_workspace_directory(
        DirectoryId=directory, SubnetIds=subnets
    )
    return directory


def _scenario(url: str, directory: str, bundle: str, settle: float) -> dict[str, Any]:
    """The client code under test: create, describe, tag, terminate, describe again."""
    once = Config(retries={"total_max_attempts": 1})  # moto answers 500 for what it lacks
    client = boto3.client("workspaces", endpoint_url=url, config=once)
    out: dict[str, Any] = {}
    created = client.create_workspaces(
        Workspaces=[
            {"DirectoryId": directory, "UserName": f"cross{i}", "BundleId": bundle,
             "WorkspaceProperties": {"RunningMode": "AUTO_STOP",
                                     "RunningModeAutoStopTimeoutInMinutes": 60}}
            for i in range(2)
        ]
    )  # fmt: skip
    out["create_keys"] = sorted(created)
    out["failed"] = created["FailedRequests"]
    ids = [ws["WorkspaceId"] for ws in created["PendingRequests"]]
    out["pending_users"] = [ws["UserName"] for ws in created["PendingRequests"]]
    time.sleep(settle)
    described = client.describe_workspaces(WorkspaceIds=ids)["Workspaces"]
    out["states"] = sorted(ws["State"] for ws in described)
    out["describe_keys"] = [sorted(ws) for ws in described]
    out["running_modes"] = [ws["WorkspaceProperties"]["RunningMode"] for ws in described]
    out["bundles"] = {ws["BundleId"] for ws in described} == {bundle}
    tags = [{"Key": "team", "Value": "cross"}, {"Key": "env", "Value": "test"}]
    client.create_tags(ResourceId=ids[0], Tags=tags)
    got = client.describe_tags(ResourceId=ids[0])["TagList"]
    out["tags"] = sorted((t["Key"], t["Value"]) for t in got)
    terminated = client.terminate_workspaces(TerminateWorkspaceRequests=[{"WorkspaceId": ids[0]}])
    out["terminate_failed"] = terminated["FailedRequests"]
    time.sleep(settle)
    remaining = client.describe_workspaces(WorkspaceIds=ids)["Workspaces"]
    out["remaining"] = [ws["WorkspaceId"] == ids[1] for ws in remaining]
    try:
        client.delete_tags(ResourceId=ids[1], TagKeys=["team"])
        out["delete_tags"] = "ok"
    except botocore.exceptions.ClientError as exc:
        out["delete_tags"] = exc.response["Error"]["Code"]
    return out


@pytest.fixture(scope="module")
def answers(moto_url: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(moto's answers, the simulator's answers) to the same scenario."""
    moto = _scenario(moto_url, _moto_directory(moto_url), "wsb-abcdefghi", settle=0.0)
    with Simulator(workspaces=10, rate=None, transition_seconds=0.05).run_in_thread() as sim:
        client = boto3.client("workspaces", endpoint_url=sim.endpoint_url)
        directory = client.describe_workspace_directories()["Directories"][0]["DirectoryId"]
        bundle = client.describe_workspace_bundles()["Bundles"][0]["BundleId"]
        ours = _scenario(sim.endpoint_url, directory, bundle, settle=0.1)
    return moto, ours


@pytest.mark.parametrize(
    "key",
    ["create_keys", "failed", "pending_users", "states", "running_modes", "bundles", "tags",
     "terminate_failed", "remaining"],
)  # fmt: skip
def test_same_answers_from_simulator_and_moto(
    answers: tuple[dict[str, Any], dict[str, Any]], key: str
) -> None:
    moto, ours = answers
    assert ours[key] == moto[key]


def test_simulator_describes_every_field_moto_describes(
    answers: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    moto, ours = answers
    assert ours["states"] == ["AVAILABLE", "AVAILABLE"] and ours["remaining"] == [True]
    for moto_keys, our_keys in zip(moto["describe_keys"], ours["describe_keys"], strict=True):
        assert set(moto_keys) - set(our_keys) <= {"ErrorCode", "ErrorMessage"}


def test_delete_tags(answers: tuple[dict[str, Any], dict[str, Any]]) -> None:
    moto, ours = answers
    assert ours["delete_tags"] == "ok"
    if moto["delete_tags"] != "ok":
        pytest.skip(f"moto 5 lacks DeleteTags (answers {moto['delete_tags']}): not compared")
    assert ours["delete_tags"] == moto["delete_tags"]
