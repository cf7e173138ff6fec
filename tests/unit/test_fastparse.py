"""The plain JSON parser gives what botocore's gives, for responses of every shape fleetops reads
(timestamps, nested structures, lists, maps, errors), while skipping the walk of plain parts."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiobotocore.parsers import AioJSONParser

from fleetops.aws.fastparse import PlainJSONParser, PlainParserFactory, is_plain
from fleetops.aws.model import service_model

WORKSPACE = {
    "WorkspaceId": "ws-0123456789",
    "DirectoryId": "d-0123456789",
    "UserName": "alice",
    "IpAddress": "10.0.0.7",
    "State": "AVAILABLE",
    "BundleId": "wsb-0123456789",
    "ComputerName": "WSAMZN-1",
    "WorkspaceProperties": {
        "RunningMode": "AUTO_STOP",
        "RunningModeAutoStopTimeoutInMinutes": 60,
        "RootVolumeSizeGib": 80,
        "UserVolumeSizeGib": 50,
        "ComputeTypeName": "STANDARD",
        "Protocols": ["PCOIP"],
    },
    "ModificationStates": [{"Resource": "ROOT_VOLUME", "State": "UPDATE_IN_PROGRESS"}],
    "DataReplicationSettings": {
        "DataReplication": "PRIMARY_AS_SOURCE",
        "RecoverySnapshotTime": 1_780_000_000.5,
    },
    "RootVolumeEncryptionEnabled": False,
}

RESPONSES: dict[str, dict[str, Any]] = {
    "DescribeWorkspaces": {
        "Workspaces": [WORKSPACE, {**WORKSPACE, "WorkspaceId": "ws-1", "State": "REBOOTING"}],
        "NextToken": "abc",
    },
    "DescribeWorkspacesConnectionStatus": {
        "WorkspacesConnectionStatus": [
            {
                "WorkspaceId": "ws-0123456789",
                "ConnectionState": "DISCONNECTED",
                "ConnectionStateCheckTimestamp": 1_780_000_100,
                "LastKnownUserConnectionTimestamp": 1_779_990_000.25,
            }
        ]
    },
    "RebootWorkspaces": {
        "FailedRequests": [
            {"WorkspaceId": "ws-1", "ErrorCode": "InvalidResourceState", "ErrorMessage": "no"}
        ]
    },
    "DescribeWorkspaceSnapshots": {
        "RebuildSnapshots": [{"SnapshotTime": 1_780_000_000}],
        "RestoreSnapshots": [{"SnapshotTime": 1_779_000_000}, {"SnapshotTime": 1_779_500_000}],
    },
    "DescribeTags": {"TagList": [{"Key": "team", "Value": "blue"}]},
}


def _response(body: dict[str, Any], status: int = 200) -> dict[str, Any]:
    return {
        "body": json.dumps(body).encode(),
        "headers": {"x-amzn-requestid": "req-1"},
        "status_code": status,
        "context": {"operation_name": "x"},
    }


@pytest.mark.parametrize("operation", sorted(RESPONSES))
async def test_same_result_as_botocore(operation: str) -> None:
    shape = service_model().operation_model(operation).output_shape
    response = _response(RESPONSES[operation])
    expected = await AioJSONParser().parse(dict(response), shape)
    got = await PlainJSONParser().parse(dict(response), shape)
    assert got == expected


async def test_timestamps_are_still_converted() -> None:
    shape = service_model().operation_model("DescribeWorkspaces").output_shape
    got = await PlainJSONParser().parse(_response(RESPONSES["DescribeWorkspaces"]), shape)
    when = got["Workspaces"][0]["DataReplicationSettings"]["RecoverySnapshotTime"]
    assert when.timestamp() == 1_780_000_000.5


async def test_errors_parse_as_botocore_parses_them() -> None:
    model = service_model()
    error_shape = model.shape_for("ResourceNotFoundException")
    body = {"__type": "ResourceNotFoundException", "message": "no such WorkSpace"}
    for shape in (error_shape, None):  # the modeled fields, then the generic error
        expected = await AioJSONParser().parse(_response(body, 400), shape)
        got = await PlainJSONParser().parse(_response(body, 400), shape)
        assert got == expected
    assert got["Error"]["Code"] == "ResourceNotFoundException"


def test_which_shapes_are_plain() -> None:
    model = service_model()
    assert is_plain(model.shape_for("WorkspaceProperties"))
    assert is_plain(model.shape_for("FailedWorkspaceChangeRequest"))
    assert not is_plain(model.shape_for("Workspace"))  # DataReplicationSettings has a time
    assert not is_plain(model.shape_for("WorkspaceConnectionStatus"))
    assert not is_plain(model.shape_for("ResourceNotFoundException"))  # an exception


def test_only_the_json_protocol_changes() -> None:
    factory = PlainParserFactory()
    assert type(factory.create_parser("json")) is PlainJSONParser
    assert not isinstance(factory.create_parser("query"), PlainJSONParser)  # STS
