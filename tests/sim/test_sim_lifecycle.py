"""Each action's eligibility, transitional state and end state, through the real client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import botocore.exceptions
import pytest

from fleetops.sim import Simulator

IdsInState = Callable[..., list[str]]
# Transitions that never end by themselves while a test looks at them, however loaded the
# machine: they end when the test moves the simulator's clock past them (jitter is ±25 %).
TRANSITION = 30.0
SETTLE = 2 * TRANSITION


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    """1,000 WorkSpaces, no quota, transitions that end when the clock is moved."""
    async with Simulator(workspaces=1000, rate=None, transition_seconds=TRANSITION) as running:
        yield running


async def _states(client: Any, ids: list[str]) -> dict[str, str]:
    answer = await client.describe_workspaces(WorkspaceIds=ids)
    return {ws["WorkspaceId"]: ws["State"] for ws in answer["Workspaces"]}


def _requests(ids: list[str]) -> list[dict[str, str]]:
    return [{"WorkspaceId": i} for i in ids]


@pytest.mark.parametrize(
    ("method", "member", "start", "during", "end", "props"),
    [
        ("reboot_workspaces", "RebootWorkspaceRequests", "AVAILABLE", "REBOOTING", "AVAILABLE", {}),
        ("reboot_workspaces", "RebootWorkspaceRequests", "UNHEALTHY", "REBOOTING", "AVAILABLE", {}),
        ("start_workspaces", "StartWorkspaceRequests", "STOPPED", "STARTING", "AVAILABLE",
         {"RunningMode": "AUTO_STOP"}),
        ("stop_workspaces", "StopWorkspaceRequests", "AVAILABLE", "STOPPING", "STOPPED",
         {"RunningMode": "AUTO_STOP"}),
        ("rebuild_workspaces", "RebuildWorkspaceRequests", "ERROR", "REBUILDING", "AVAILABLE", {}),
        ("terminate_workspaces", "TerminateWorkspaceRequests", "STOPPED", "TERMINATING", None, {}),
    ],
)  # fmt: skip
async def test_batch_action_transitions(
    client: Any,
    sim: Simulator,
    ids_in_state: IdsInState,
    method: str,
    member: str,
    start: str,
    during: str,
    end: str | None,
    props: dict[str, str],
) -> None:
    count = 1 if method == "rebuild_workspaces" else 3
    ids = ids_in_state(sim, start, count, **props)
    answer = await getattr(client, method)(**{member: _requests(ids)})
    assert answer["FailedRequests"] == []
    assert await _states(client, ids) == dict.fromkeys(ids, during)
    sim.advance(SETTLE)
    expected = {} if end is None else dict.fromkeys(ids, end)
    assert await _states(client, ids) == expected
    if end is None:
        assert not set(ids) & set(sim.workspace_ids())
        assert all(sim.workspace(i) is None for i in ids)


async def test_ineligible_and_unknown_items_come_back_failed(
    client: Any, sim: Simulator, ids_in_state: IdsInState
) -> None:
    stopped = ids_in_state(sim, "STOPPED", 1)[0]
    always_on = ids_in_state(sim, "AVAILABLE", 1, RunningMode="ALWAYS_ON")[0]
    good = ids_in_state(sim, "AVAILABLE", 1, RunningMode="AUTO_STOP")[0]
    unknown = "ws-zzzzzzzzzz"
    answer = await client.reboot_workspaces(
        RebootWorkspaceRequests=_requests([stopped, good, unknown])
    )
    codes = {f["WorkspaceId"]: f["ErrorCode"] for f in answer["FailedRequests"]}
    assert codes == {
        stopped: "InvalidResourceState.Workspace",
        unknown: "ResourceNotFound.Workspace",
    }
    assert all(f["ErrorMessage"] for f in answer["FailedRequests"])
    assert sim.workspace(stopped)["State"] == "STOPPED"  # type: ignore[index]
    answer = await client.stop_workspaces(StopWorkspaceRequests=_requests([always_on]))
    assert answer["FailedRequests"][0]["ErrorCode"] == "OperationNotSupportedException"
    answer = await client.start_workspaces(StartWorkspaceRequests=_requests([good]))
    assert answer["FailedRequests"][0]["ErrorCode"] == "InvalidResourceState.Workspace"


async def test_admin_maintenance_blocks_actions(
    client: Any, sim: Simulator, ids_in_state: IdsInState
) -> None:
    ws_id = ids_in_state(sim, "AVAILABLE", 1, RunningMode="AUTO_STOP")[0]
    await client.modify_workspace_state(WorkspaceId=ws_id, WorkspaceState="ADMIN_MAINTENANCE")
    assert sim.workspace(ws_id)["State"] == "ADMIN_MAINTENANCE"  # type: ignore[index]
    for method, member in (
        ("reboot_workspaces", "RebootWorkspaceRequests"),
        ("stop_workspaces", "StopWorkspaceRequests"),
        ("start_workspaces", "StartWorkspaceRequests"),
        ("rebuild_workspaces", "RebuildWorkspaceRequests"),
    ):
        answer = await getattr(client, method)(**{member: _requests([ws_id])})
        assert answer["FailedRequests"][0]["ErrorCode"] == "InvalidResourceState.Workspace"
    with pytest.raises(botocore.exceptions.ClientError) as info:
        await client.restore_workspace(WorkspaceId=ws_id)
    assert info.value.response["Error"]["Code"] == "OperationNotSupportedException"
    await client.modify_workspace_state(WorkspaceId=ws_id, WorkspaceState="AVAILABLE")
    assert sim.workspace(ws_id)["State"] == "AVAILABLE"  # type: ignore[index]
    rebooting = ids_in_state(sim, "AVAILABLE", 2)[1]
    sim.set_state(rebooting, "REBOOTING")
    with pytest.raises(botocore.exceptions.ClientError) as info:
        await client.modify_workspace_state(
            WorkspaceId=rebooting, WorkspaceState="ADMIN_MAINTENANCE"
        )
    assert info.value.response["Error"]["Code"] == "InvalidResourceStateException"


async def test_restore_and_single_item_errors(
    client: Any, sim: Simulator, ids_in_state: IdsInState
) -> None:
    ws_id = ids_in_state(sim, "UNHEALTHY", 1)[0]
    await client.restore_workspace(WorkspaceId=ws_id)
    assert sim.workspace(ws_id)["State"] == "RESTORING"  # type: ignore[index]
    sim.advance(SETTLE)
    assert sim.workspace(ws_id)["State"] == "AVAILABLE"  # type: ignore[index]
    with pytest.raises(botocore.exceptions.ClientError) as info:
        await client.restore_workspace(WorkspaceId="ws-zzzzzzzzzz")
    assert info.value.response["Error"]["Code"] == "ResourceNotFoundException"


async def test_stuck_reboot_stays_rebooting_until_20_minutes(
    client: Any, sim: Simulator, ids_in_state: IdsInState
) -> None:
    sim.configure(stuck_reboot_rate=1.0)
    ws_id = ids_in_state(sim, "AVAILABLE", 1)[0]
    await client.reboot_workspaces(RebootWorkspaceRequests=_requests([ws_id]))
    sim.advance(SETTLE)
    assert sim.workspace(ws_id)["State"] == "REBOOTING"  # type: ignore[index]
    again = await client.reboot_workspaces(RebootWorkspaceRequests=_requests([ws_id]))
    assert again["FailedRequests"][0]["ErrorCode"] == "InvalidResourceState.Workspace"
    sim.advance(21 * 60)
    sim.configure(stuck_reboot_rate=0.0)
    again = await client.reboot_workspaces(RebootWorkspaceRequests=_requests([ws_id]))
    assert again["FailedRequests"] == []
    sim.advance(SETTLE)
    assert sim.workspace(ws_id)["State"] == "AVAILABLE"  # type: ignore[index]


async def test_injected_item_failures_leave_workspaces_unchanged(
    client: Any, sim: Simulator, ids_in_state: IdsInState
) -> None:
    sim.configure(item_failure_rate=1.0)
    ids = ids_in_state(sim, "AVAILABLE", 5)
    answer = await client.reboot_workspaces(RebootWorkspaceRequests=_requests(ids))
    assert [f["ErrorCode"] for f in answer["FailedRequests"]] == ["InternalFailure"] * 5
    assert await _states(client, ids) == dict.fromkeys(ids, "AVAILABLE")


async def test_create_workspaces_pending_then_available(client: Any, sim: Simulator) -> None:
    directory = (await client.describe_workspace_directories())["Directories"][0]["DirectoryId"]
    bundle = (await client.describe_workspace_bundles())["Bundles"][0]["BundleId"]
    answer = await client.create_workspaces(
        Workspaces=[
            {"DirectoryId": directory, "UserName": "newuser", "BundleId": bundle,
             "WorkspaceProperties": {"RunningMode": "AUTO_STOP"},
             "Tags": [{"Key": "team", "Value": "new"}]},
            {"DirectoryId": "d-0000000000", "UserName": "lost", "BundleId": bundle},
        ]
    )  # fmt: skip
    assert [f["ErrorCode"] for f in answer["FailedRequests"]] == ["ResourceNotFound.Directory"]
    [pending] = answer["PendingRequests"]
    assert pending["State"] == "PENDING" and pending["UserName"] == "newuser"
    ws_id = pending["WorkspaceId"]
    assert ws_id in sim.workspace_ids()
    sim.advance(SETTLE)
    assert await _states(client, [ws_id]) == {ws_id: "AVAILABLE"}
    tags = (await client.describe_tags(ResourceId=ws_id))["TagList"]
    assert tags == [{"Key": "team", "Value": "new"}]


async def test_migrate_replaces_the_workspace_with_its_target(
    client: Any, sim: Simulator, ids_in_state: IdsInState
) -> None:
    source_id = ids_in_state(sim, "AVAILABLE", 1)[0]
    source = sim.workspace(source_id)
    assert source is not None
    bundles = [b["BundleId"] for b in (await client.describe_workspace_bundles())["Bundles"]]
    target_bundle = next(b for b in bundles if b != source["BundleId"])
    answer = await client.migrate_workspace(SourceWorkspaceId=source_id, BundleId=target_bundle)
    assert answer["SourceWorkspaceId"] == source_id
    target_id = answer["TargetWorkspaceId"]
    assert target_id != source_id
    assert await _states(client, [source_id, target_id]) == {
        source_id: "TERMINATING",
        target_id: "PENDING",
    }
    sim.advance(SETTLE)
    assert await _states(client, [source_id, target_id]) == {target_id: "AVAILABLE"}
    target = sim.workspace(target_id)
    assert target is not None
    assert (target["UserName"], target["DirectoryId"], target["BundleId"]) == (
        source["UserName"],
        source["DirectoryId"],
        target_bundle,
    )
    mine = await client.describe_workspaces(
        DirectoryId=source["DirectoryId"], UserName=source["UserName"]
    )
    assert [ws["WorkspaceId"] for ws in mine["Workspaces"]] == [target_id]
    with pytest.raises(botocore.exceptions.ClientError) as info:
        await client.migrate_workspace(SourceWorkspaceId=source_id, BundleId=target_bundle)
    assert info.value.response["Error"]["Code"] == "ResourceNotFoundException"


async def test_modify_properties_updates_then_applies(
    client: Any, sim: Simulator, ids_in_state: IdsInState
) -> None:
    ws_id = ids_in_state(sim, "STOPPED", 1, RunningMode="AUTO_STOP")[0]
    await client.modify_workspace_properties(
        WorkspaceId=ws_id,
        WorkspaceProperties={"RunningModeAutoStopTimeoutInMinutes": 120,
                             "ComputeTypeName": "POWER", "UserVolumeSizeGib": 100},
    )  # fmt: skip
    assert sim.workspace(ws_id)["State"] == "UPDATING"  # type: ignore[index]
    with pytest.raises(botocore.exceptions.ClientError) as info:
        await client.modify_workspace_properties(
            WorkspaceId=ws_id, WorkspaceProperties={"ComputeTypeName": "VALUE"}
        )
    assert info.value.response["Error"]["Code"] == "OperationInProgressException"
    sim.advance(SETTLE)
    ws = sim.workspace(ws_id)
    assert ws is not None and ws["State"] == "STOPPED"
    props = ws["WorkspaceProperties"]
    assert (props["RunningModeAutoStopTimeoutInMinutes"], props["ComputeTypeName"]) == (
        120,
        "POWER",
    )
    assert props["UserVolumeSizeGib"] == 100
    error_id = ids_in_state(sim, "ERROR", 1)[0]
    with pytest.raises(botocore.exceptions.ClientError) as info:
        await client.modify_workspace_properties(
            WorkspaceId=error_id, WorkspaceProperties={"ComputeTypeName": "VALUE"}
        )
    assert info.value.response["Error"]["Code"] == "InvalidResourceStateException"


async def test_tags_round_trip(client: Any, sim: Simulator) -> None:
    ws_id = sim.workspace_ids()[0]
    before = {t["Key"] for t in (await client.describe_tags(ResourceId=ws_id))["TagList"]}
    assert {"team", "env"} <= before
    await client.create_tags(ResourceId=ws_id, Tags=[{"Key": "owner", "Value": "ops"}])
    await client.delete_tags(ResourceId=ws_id, TagKeys=["team"])
    after = {
        t["Key"]: t["Value"] for t in (await client.describe_tags(ResourceId=ws_id))["TagList"]
    }
    assert after["owner"] == "ops" and "team" not in after
    with pytest.raises(botocore.exceptions.ClientError) as info:
        await client.describe_tags(ResourceId="ws-zzzzzzzzzz")
    assert info.value.response["Error"]["Code"] == "ResourceNotFoundException"


async def test_snapshots_and_generated_fleet_shape(client: Any, sim: Simulator) -> None:
    stats = sim.stats()
    assert sum(stats.states.values()) == 1000
    assert stats.states["AVAILABLE"] > 700 and stats.states["STOPPED"] > 30
    ws_id = sim.workspace_ids()[0]
    snaps = await client.describe_workspace_snapshots(WorkspaceId=ws_id)
    assert snaps["RebuildSnapshots"] and snaps["RestoreSnapshots"]
    skipped = 0
    for i in sim.workspace_ids()[:200]:
        tags = (await client.describe_tags(ResourceId=i))["TagList"]
        skipped += {"Key": "fleetops:skip", "Value": "true"} in tags
    assert 0 < skipped < 40
