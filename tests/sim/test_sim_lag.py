"""The Describe lag knob: DescribeWorkspaces answers the fleet as it was N seconds ago.

The simulated clock is moved with ``advance`` so nothing here sleeps through the lag.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import AsyncIterator, Callable
from typing import Any

import boto3
import pytest

from fleetops.sim import Simulator

IdsInState = Callable[..., list[str]]
LAG = 2.0
TRANSITION = 1.0  # jittered to 0.75..1.25 s


@pytest.fixture
async def lag_sim() -> AsyncIterator[Simulator]:
    async with Simulator(
        workspaces=200, rate=None, transition_seconds=TRANSITION, describe_lag=LAG
    ) as running:
        yield running


async def _shown(client: Any, ids: list[str]) -> dict[str, dict[str, Any]]:
    answer = await client.describe_workspaces(WorkspaceIds=ids)
    return {ws["WorkspaceId"]: ws for ws in answer["Workspaces"]}


async def _states(client: Any, ids: list[str]) -> dict[str, str]:
    return {i: ws["State"] for i, ws in (await _shown(client, ids)).items()}


async def test_reboot_keeps_the_old_state_then_shows_each_state_late(
    lag_sim: Simulator, make_client: Any, ids_in_state: IdsInState
) -> None:
    ids = ids_in_state(lag_sim, "AVAILABLE", 3)
    async with make_client(lag_sim) as client:
        answer = await client.reboot_workspaces(
            RebootWorkspaceRequests=[{"WorkspaceId": i} for i in ids]
        )
        assert answer["FailedRequests"] == []
        # The truth is REBOOTING; a Describe still says AVAILABLE for the lag.
        assert {lag_sim.workspace(i)["State"] for i in ids} == {"REBOOTING"}  # type: ignore[index]
        assert await _states(client, ids) == dict.fromkeys(ids, "AVAILABLE")
        lag_sim.advance(LAG - 0.5)
        assert await _states(client, ids) == dict.fromkeys(ids, "AVAILABLE")
        # Past the lag the REBOOTING of 0.6 s ago shows, though the reboot may be over by now.
        lag_sim.advance(0.6)
        assert await _states(client, ids) == dict.fromkeys(ids, "REBOOTING")
        lag_sim.advance(1.5)  # every reboot (≤ 1.25 s) ended more than the lag ago
        assert {lag_sim.workspace(i)["State"] for i in ids} == {"AVAILABLE"}  # type: ignore[index]
        assert await _states(client, ids) == dict.fromkeys(ids, "AVAILABLE")
    for ws_id in ids:
        (began, rebooting), (ended, available) = lag_sim.timeline(ws_id)
        assert (rebooting, available) == ("REBOOTING", "AVAILABLE")
        assert 0.75 * TRANSITION <= ended - began <= 1.25 * TRANSITION


async def test_created_workspace_is_not_found_for_the_lag(
    lag_sim: Simulator, make_client: Any
) -> None:
    async with make_client(lag_sim) as client:
        directory = (await client.describe_workspace_directories())["Directories"][0]
        bundle = (await client.describe_workspace_bundles())["Bundles"][0]
        answer = await client.create_workspaces(
            Workspaces=[
                {
                    "DirectoryId": directory["DirectoryId"],
                    "UserName": "lagged",
                    "BundleId": bundle["BundleId"],
                }
            ]
        )
        (pending,) = answer["PendingRequests"]
        new_id = pending["WorkspaceId"]
        assert lag_sim.workspace(new_id) is not None  # it exists...
        assert await _shown(client, [new_id]) == {}  # ...but is not found by id
        by_user = await client.describe_workspaces(
            DirectoryId=directory["DirectoryId"], UserName="lagged"
        )
        assert by_user["Workspaces"] == []  # nor in a listing
        lag_sim.advance(LAG + 0.1)
        assert await _states(client, [new_id]) == {new_id: "PENDING"}
        lag_sim.advance(1.5)
        assert await _states(client, [new_id]) == {new_id: "AVAILABLE"}
        by_user = await client.describe_workspaces(
            DirectoryId=directory["DirectoryId"], UserName="lagged"
        )
        assert [ws["WorkspaceId"] for ws in by_user["Workspaces"]] == [new_id]
    assert [state for _, state in lag_sim.timeline(new_id)] == ["PENDING", "AVAILABLE"]


async def test_migrate_target_invisible_source_unchanged_for_the_lag(
    lag_sim: Simulator, make_client: Any, ids_in_state: IdsInState
) -> None:
    (source,) = ids_in_state(lag_sim, "AVAILABLE", 1)
    old = lag_sim.workspace(source)
    assert old is not None
    async with make_client(lag_sim) as client:
        bundles = [b["BundleId"] for b in (await client.describe_workspace_bundles())["Bundles"]]
        to_bundle = next(b for b in bundles if b != old["BundleId"])
        answer = await client.migrate_workspace(SourceWorkspaceId=source, BundleId=to_bundle)
        target = answer["TargetWorkspaceId"]
        shown = await _shown(client, [target, source])
        assert list(shown) == [source]
        assert (shown[source]["State"], shown[source]["BundleId"]) == ("AVAILABLE", old["BundleId"])
        lag_sim.advance(LAG + 0.1)
        assert await _states(client, [target, source]) == {
            target: "PENDING",
            source: "TERMINATING",
        }
        lag_sim.advance(1.5)
        # The source vanished more than the lag ago; the target settled.
        assert await _states(client, [target, source]) == {target: "AVAILABLE"}
    assert [s for _, s in lag_sim.timeline(source)] == ["TERMINATING", "TERMINATED"]


async def test_terminated_workspace_is_described_until_the_lag_passes(
    lag_sim: Simulator, make_client: Any, ids_in_state: IdsInState
) -> None:
    ids = ids_in_state(lag_sim, "STOPPED", 2)
    async with make_client(lag_sim) as client:
        await client.terminate_workspaces(
            TerminateWorkspaceRequests=[{"WorkspaceId": i} for i in ids]
        )
        lag_sim.advance(1.5)  # gone for real
        assert all(lag_sim.workspace(i) is None for i in ids)
        assert await _states(client, ids) == dict.fromkeys(ids, "STOPPED")
        lag_sim.advance(LAG)  # the TERMINATING of 1.5 s ago... or already gone
        assert set((await _states(client, ids)).values()) <= {"TERMINATING"}
        lag_sim.advance(1.0)
        assert await _states(client, ids) == {}
    for ws_id in ids:
        assert [s for _, s in lag_sim.timeline(ws_id)] == ["TERMINATING", "TERMINATED"]


async def test_modified_properties_read_back_late(
    lag_sim: Simulator, make_client: Any, ids_in_state: IdsInState
) -> None:
    (ws_id,) = ids_in_state(lag_sim, "AVAILABLE", 1, RunningMode="AUTO_STOP")
    async with make_client(lag_sim) as client:
        await client.modify_workspace_properties(
            WorkspaceId=ws_id, WorkspaceProperties={"RunningMode": "ALWAYS_ON"}
        )
        lag_sim.advance(1.5)  # applied for real
        assert lag_sim.workspace(ws_id)["WorkspaceProperties"]["RunningMode"] == "ALWAYS_ON"  # type: ignore[index]
        shown = (await _shown(client, [ws_id]))[ws_id]
        assert (shown["State"], shown["WorkspaceProperties"]["RunningMode"]) == (
            "AVAILABLE",
            "AUTO_STOP",
        )
        lag_sim.advance(LAG)
        shown = (await _shown(client, [ws_id]))[ws_id]
        assert (shown["State"], shown["WorkspaceProperties"]["RunningMode"]) == (
            "AVAILABLE",
            "ALWAYS_ON",
        )
    assert [s for _, s in lag_sim.timeline(ws_id)] == ["UPDATING", "AVAILABLE"]


def _post(url: str, data: dict[str, Any]) -> Any:
    request = urllib.request.Request(url, data=json.dumps(data).encode())
    with urllib.request.urlopen(request, timeout=10) as resp:
        return json.loads(resp.read())


def test_lag_is_a_knob_over_http_and_none_by_default(ids_in_state: IdsInState) -> None:
    with Simulator(workspaces=30, rate=None, transition_seconds=5).run_in_thread() as sim:
        client = boto3.client("workspaces", endpoint_url=sim.endpoint_url)
        first, second = ids_in_state(sim, "AVAILABLE", 2)
        client.reboot_workspaces(RebootWorkspaceRequests=[{"WorkspaceId": first}])
        shown = client.describe_workspaces(WorkspaceIds=[first])["Workspaces"]
        assert shown[0]["State"] == "REBOOTING"  # no lag unless asked for
        _post(sim.endpoint_url + "/_sim/config", {"describe_lag": 30})
        client.reboot_workspaces(RebootWorkspaceRequests=[{"WorkspaceId": second}])
        shown = client.describe_workspaces(WorkspaceIds=[second])["Workspaces"]
        assert shown[0]["State"] == "AVAILABLE"
        assert sim.visible_workspace(second)["State"] == "AVAILABLE"  # type: ignore[index]


def test_serve_takes_describe_lag() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "fleetops.sim", "serve", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "--describe-lag" in out and "SECONDS" in out
