"""The simulator at the API's edges: dotted refusal codes, "try again shortly", standby
WorkSpaces — through the real client over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import botocore.exceptions
import pytest

from fleetops.sim import Simulator

IdsInState = Callable[..., list[str]]


async def test_batch_refusals_are_dotted(
    client: Any, sim: Simulator, ids_in_state: IdsInState
) -> None:
    stopped = ids_in_state(sim, "STOPPED", 1)[0]
    answer = await client.reboot_workspaces(
        RebootWorkspaceRequests=[{"WorkspaceId": stopped}, {"WorkspaceId": "ws-zzzzzzzzzz"}]
    )
    codes = [f["ErrorCode"] for f in answer["FailedRequests"]]
    assert codes == ["InvalidResourceState.Workspace", "ResourceNotFound.Workspace"]


async def test_operation_in_progress_the_first_n_times(
    client: Any, sim: Simulator, ids_in_state: IdsInState
) -> None:
    sim.configure(in_progress_first=2)
    ws_id = ids_in_state(sim, "AVAILABLE", 1, RunningMode="AUTO_STOP")[0]
    for _ in range(2):
        with pytest.raises(botocore.exceptions.ClientError) as info:
            await client.modify_workspace_properties(
                WorkspaceId=ws_id, WorkspaceProperties={"ComputeTypeName": "POWER"}
            )
        assert info.value.response["Error"]["Code"] == "OperationInProgressException"
        assert sim.workspace(ws_id)["State"] == "AVAILABLE"  # type: ignore[index]
    await client.modify_workspace_properties(
        WorkspaceId=ws_id, WorkspaceProperties={"ComputeTypeName": "POWER"}
    )
    assert sim.workspace(ws_id)["State"] == "UPDATING"  # type: ignore[index]


async def test_create_standby_links_both_ways(
    client: Any, sim: Simulator, ids_in_state: IdsInState
) -> None:
    primary = ids_in_state(sim, "AVAILABLE", 1, RunningMode="AUTO_STOP")[0]
    directory = sim.workspace(primary)["DirectoryId"]  # type: ignore[index]
    answer = await client.create_standby_workspaces(
        PrimaryRegion="us-west-2",
        StandbyWorkspaces=[{"PrimaryWorkspaceId": primary, "DirectoryId": directory}],
    )
    assert answer["FailedStandbyRequests"] == []
    standby = answer["PendingStandbyRequests"][0]["WorkspaceId"]
    shown = await client.describe_workspaces(WorkspaceIds=[primary, standby])
    by_id = {ws["WorkspaceId"]: ws for ws in shown["Workspaces"]}
    assert by_id[standby]["State"] == "STOPPED"
    assert by_id[standby]["RelatedWorkspaces"] == [
        {"WorkspaceId": primary, "Region": "us-west-2", "State": "AVAILABLE", "Type": "PRIMARY"}
    ]
    assert [(r["WorkspaceId"], r["Type"]) for r in by_id[primary]["RelatedWorkspaces"]] == [
        (standby, "STANDBY")
    ]
    again = await client.create_standby_workspaces(
        PrimaryRegion="us-west-2",
        StandbyWorkspaces=[{"PrimaryWorkspaceId": primary, "DirectoryId": directory}],
    )
    assert [f["ErrorCode"] for f in again["FailedStandbyRequests"]] == [
        "ResourceAlreadyExists.Workspace"
    ]
    status = await client.describe_workspaces_connection_status(WorkspaceIds=[standby])
    assert "LastKnownUserConnectionTimestamp" not in status["WorkspacesConnectionStatus"][0]


async def test_generated_standbys() -> None:
    async with Simulator(workspaces=50, rate=None, standbys=3) as sim:
        await asyncio.sleep(0)
        shown = [sim.workspace(i) for i in sim.workspace_ids()]
        kinds = [
            r["Type"] for ws in shown if ws is not None for r in ws.get("RelatedWorkspaces", [])
        ]
        assert sorted(kinds) == ["PRIMARY"] * 3 + ["STANDBY"] * 3
        assert len(shown) == 53
