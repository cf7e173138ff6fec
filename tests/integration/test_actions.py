"""Every action end to end against the simulator (real HTTP, real SQLite): the states reached,
the items recorded, and the calls made as the simulator counted them."""

from __future__ import annotations

import csv
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import anyio
import pytest
from engine_support import items_of, sim_client, spec_for

from fleetops.api import JobSpec, create_job, plan_job, run_job
from fleetops.catalogue.actions import create_key
from fleetops.catalogue.targets import Targets
from fleetops.errors import UsageError
from fleetops.records import ItemRecord, ItemUpdate
from fleetops.sim import Simulator
from fleetops.states import ItemState, JobStatus, exit_code_for
from fleetops.store import Store


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(
        workspaces=120, rate=None, transition_seconds=0.2, connected_fraction=0.1
    ) as running:
        yield running


async def run(store: Store, spec: JobSpec) -> tuple[Any, dict[str, int], list[ItemRecord]]:
    job = await run_job(store, (await create_job(store, spec)).id)
    return job, await store.counts(job.id), await items_of(store, job.id)


def pick(sim: Simulator, n: int, **want: Any) -> list[str]:
    """The first ``n`` WorkSpaces whose description matches ``want`` (props by their name)."""
    out = []
    for ws_id in sim.workspace_ids():
        ws = sim.workspace(ws_id)
        assert ws is not None
        props = ws["WorkspaceProperties"]
        if all(ws.get(k, props.get(k)) == v for k, v in want.items()):
            out.append(ws_id)
        if len(out) == n:
            break
    assert len(out) == n, want
    return out


async def api(sim: Simulator, operation: str, **params: Any) -> dict[str, Any]:
    async with sim_client(sim) as client:
        result: dict[str, Any] = await getattr(client, operation)(**params)
        return result


async def bundles(sim: Simulator) -> list[str]:
    response = await api(sim, "describe_workspace_bundles", Owner="123456789012")
    return [b["BundleId"] for b in response["Bundles"]]


# -- migrate -------------------------------------------------------------------------------


async def test_migrate_records_the_new_workspace_and_verifies_it(
    sim: Simulator, store: Store
) -> None:
    target = (await bundles(sim))[0]
    ids = [
        ws
        for ws in pick(sim, 40, State="AVAILABLE")
        if sim.workspace(ws)["BundleId"] != target  # type: ignore[index]
    ][:5]
    same = pick(sim, 1, BundleId=target, State="AVAILABLE")
    sim.reset_stats()
    spec = spec_for(
        sim,
        "migrate",
        Targets.build(workspace_ids=[*ids, *same]),
        {"to_bundle": target},
        include_connected=True,
        ignore_snapshot_age=True,
    )
    job, counts, items = await run(store, spec)
    assert job.status is JobStatus.SUCCEEDED, job.message
    assert counts[ItemState.SUCCEEDED] == 5 and counts[ItemState.SKIPPED] == 1
    by_ws = {i.workspace_id: i for i in items}
    assert by_ws[same[0]].reason == f"already on bundle {target}"
    for ws_id in ids:
        new_id = by_ws[ws_id].result
        assert new_id and new_id != ws_id
        new = sim.workspace(new_id)
        assert new is not None and new["State"] == "AVAILABLE" and new["BundleId"] == target
        assert sim.workspace(ws_id) is None  # the source is gone
    stats = sim.stats()
    assert stats.calls_by_workspace["MigrateWorkspace"] == dict.fromkeys(ids, 1)
    assert stats.largest_batch["MigrateWorkspace"] == 1
    assert "DescribeWorkspaceSnapshots" not in stats.calls_by_operation  # ignored by request


async def test_migrate_resume_finds_the_new_workspace_or_holds_the_item(
    sim: Simulator, store: Store
) -> None:
    target = (await bundles(sim))[1]
    ids = [
        ws
        for ws in pick(sim, 40, State="AVAILABLE")
        if sim.workspace(ws)["BundleId"] != target  # type: ignore[index]
    ][:4]
    spec = spec_for(
        sim,
        "migrate",
        Targets.build(workspace_ids=ids),
        {"to_bundle": target},
        include_connected=True,
        ignore_snapshot_age=True,
    )
    job = await plan_job(store, (await create_job(store, spec)).id)
    items = await items_of(store, job.id)
    # A crash after the in_flight commit: the first call reached the API, the second did not.
    await mark_in_flight(store, [items[0].id, items[1].id])
    migrated = (await api(sim, "migrate_workspace", SourceWorkspaceId=ids[0], BundleId=target))[
        "TargetWorkspaceId"
    ]
    sim.reset_stats()
    job = await run_job(store, job.id)
    counts = await store.counts(job.id)
    by_ws = {i.workspace_id: i for i in await items_of(store, job.id)}
    assert by_ws[ids[0]].state is ItemState.SUCCEEDED and by_ws[ids[0]].result == migrated
    assert by_ws[ids[1]].state is ItemState.IN_DOUBT
    assert counts[ItemState.SUCCEEDED] == 3
    assert exit_code_for(job.status, counts) == 4
    calls = sim.stats().calls_by_workspace["MigrateWorkspace"]
    assert calls == {ids[2]: 1, ids[3]: 1}  # neither the migrated nor the doubtful re-sent
    assert sim.workspace(ids[1]) is not None


# -- modify --------------------------------------------------------------------------------


async def test_modify_running_mode_skips_equal_ones_and_reads_properties_back(
    sim: Simulator, store: Store
) -> None:
    always = pick(sim, 2, RunningMode="ALWAYS_ON", State="AVAILABLE")
    auto = pick(sim, 4, RunningMode="AUTO_STOP", State="AVAILABLE")
    stopped = pick(sim, 1, RunningMode="AUTO_STOP", State="STOPPED")
    spec = spec_for(
        sim,
        "modify",
        Targets.build(workspace_ids=[*always, *auto, *stopped]),
        {"running_mode": "ALWAYS_ON"},
    )
    sim.reset_stats()
    job, counts, items = await run(store, spec)
    assert job.status is JobStatus.SUCCEEDED, job.message
    assert counts[ItemState.SUCCEEDED] == 5 and counts[ItemState.SKIPPED] == 2
    assert {i.reason for i in items if i.state is ItemState.SKIPPED} == {
        "already in the desired state"
    }
    for ws_id in [*auto, *stopped]:
        ws = sim.workspace(ws_id)
        assert ws is not None and ws["WorkspaceProperties"]["RunningMode"] == "ALWAYS_ON"
    stats = sim.stats()
    assert stats.calls_by_workspace["ModifyWorkspaceProperties"] == dict.fromkeys(
        [*auto, *stopped], 1
    )
    # A running-mode change interrupts no session: connection status is not even asked.
    assert "DescribeWorkspacesConnectionStatus" not in stats.calls_by_operation


async def test_modify_compute_type_leaves_connected_users_alone(
    sim: Simulator, store: Store
) -> None:
    directory = sim.workspace(sim.workspace_ids()[0])["DirectoryId"]  # type: ignore[index]
    spec = spec_for(
        sim,
        "modify",
        Targets.build(directory_id=directory, states=["AVAILABLE"]),
        {"compute_type": "POWERPRO", "user_volume": 100},
    )
    job, _counts, items = await run(store, spec)
    assert job.status is JobStatus.SUCCEEDED, job.message
    connected = [i.workspace_id for i in items if i.reason and "connected" in i.reason]
    assert connected
    modified = sim.stats().calls_by_workspace["ModifyWorkspaceProperties"]
    assert not set(connected) & set(modified)
    for ws_id in modified:
        props = sim.workspace(ws_id)["WorkspaceProperties"]  # type: ignore[index]
        assert (props["ComputeTypeName"], props["UserVolumeSizeGib"]) == ("POWERPRO", 100)


# -- maintenance ---------------------------------------------------------------------------


async def test_maintenance_on_then_off(sim: Simulator, store: Store) -> None:
    ids = pick(sim, 6, State="AVAILABLE")
    targets = Targets.build(workspace_ids=ids)
    job, counts, _ = await run(store, spec_for(sim, "maintenance", targets, {"maintenance": True}))
    assert job.status is JobStatus.SUCCEEDED and counts[ItemState.SUCCEEDED] == 6
    assert {sim.workspace(i)["State"] for i in ids} == {"ADMIN_MAINTENANCE"}  # type: ignore[index]
    # Maintenance blocks reboots: they are skipped with that reason, no call made.
    sim.reset_stats()
    job, counts, items = await run(store, spec_for(sim, "reboot", targets, include_connected=True))
    assert counts[ItemState.SKIPPED] == 6
    assert {i.reason for i in items} == {"state ADMIN_MAINTENANCE blocks reboot"}
    assert "RebootWorkspaces" not in sim.stats().calls_by_operation
    job, counts, _ = await run(store, spec_for(sim, "maintenance", targets, {"maintenance": False}))
    assert job.status is JobStatus.SUCCEEDED and counts[ItemState.SUCCEEDED] == 6
    assert {sim.workspace(i)["State"] for i in ids} == {"AVAILABLE"}  # type: ignore[index]
    assert sim.stats().calls_by_workspace["ModifyWorkspaceState"] == dict.fromkeys(ids, 1)


# -- tag -----------------------------------------------------------------------------------


async def test_tag_sets_and_removes_one_resource_per_call_without_polling(
    sim: Simulator, store: Store
) -> None:
    ids = sim.workspace_ids()[:7]
    sim.reset_stats()
    spec = spec_for(
        sim,
        "tag",
        Targets.build(workspace_ids=ids),
        {"set": {"owner": "ops", "cost": "42"}, "remove": ["env"]},
    )
    job, counts, _ = await run(store, spec)
    assert job.status is JobStatus.SUCCEEDED and counts[ItemState.SUCCEEDED] == 7
    for ws_id in ids:
        tags = (await api(sim, "describe_tags", ResourceId=ws_id))["TagList"]
        values = {t["Key"]: t["Value"] for t in tags}
        assert values["owner"] == "ops" and values["cost"] == "42" and "env" not in values
    stats = sim.stats()
    assert stats.calls_by_workspace["CreateTags"] == dict.fromkeys(ids, 1)
    assert stats.calls_by_workspace["DeleteTags"] == dict.fromkeys(ids, 1)
    # An accepted tag call is the end of the item: the only describe is the plan's.
    assert stats.calls_by_operation["DescribeWorkspaces"] == 1


# -- create --------------------------------------------------------------------------------


def write_csv(
    path: Path, rows: Sequence[Sequence[str]], header: Sequence[str] | None = None
) -> Path:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(
            header or ("directory_id", "user_name", "bundle_id", "running_mode", "tags")
        )
        writer.writerows(rows)
    return path


async def test_create_from_csv_follows_pending_requests_and_records_failures(
    sim: Simulator, store: Store, tmp_path: Path
) -> None:
    directories = [
        d["DirectoryId"] for d in (await api(sim, "describe_workspace_directories"))["Directories"]
    ]
    bundle = (await bundles(sim))[0]
    rows = [
        (directories[n % 2], f"new{n:03d}", bundle, "AUTO_STOP" if n % 3 else "", "team=ops;cc=7")
        for n in range(30)
    ]
    rows.append((directories[0], "nobundle", "wsb-doesnotexist", "", ""))
    path = write_csv(tmp_path / "users.csv", rows)
    sim.reset_stats()
    job, counts, items = await run(store, spec_for(sim, "create", params={"from": str(path)}))
    assert job.status is JobStatus.FAILED, job.message
    assert counts[ItemState.SUCCEEDED] == 30 and counts[ItemState.FAILED] == 1
    by_key = {i.workspace_id: i for i in items}
    bad = by_key[create_key(directories[0], "nobundle")]
    assert bad.error_code == "ResourceNotFound.Bundle" and bad.result is None
    for directory, user, _, mode, _ in rows[:30]:
        item = by_key[create_key(directory, user)]
        assert item.user_name == user and item.result
        ws = sim.workspace(item.result)
        assert ws is not None and ws["State"] == "AVAILABLE" and ws["UserName"] == user
        assert ws["WorkspaceProperties"]["RunningMode"] == (mode or "ALWAYS_ON")
        if user.endswith("0"):  # a sample: a DescribeTags client each
            tags = (await api(sim, "describe_tags", ResourceId=item.result))["TagList"]
            assert {t["Key"]: t["Value"] for t in tags} == {"team": "ops", "cc": "7"}
    stats = sim.stats()
    assert stats.calls_by_operation["CreateWorkspaces"] == 2  # 31 rows, 25 a call
    assert stats.largest_batch["CreateWorkspaces"] == 25


@pytest.mark.parametrize(
    ("header", "row", "error"),
    [
        (("directory_id", "user_name"), ("d-1234567890", "u"), r"users.csv:1: missing column"),
        (None, ("d-12", "u", "wsb-abcdefghi", "", ""), r"users.csv:3: directory_id 'd-12'"),
        (None, ("d-1234567890", "u", "bundle", "", ""), r"users.csv:3: bundle_id 'bundle'"),
        (None, ("d-1234567890", "u", "wsb-abcdefghi", "SOMETIMES", ""), r"users.csv:3: running"),
        (None, ("d-1234567890", "u", "wsb-abcdefghi", "", "novalue"), r"users.csv:3: tag"),
        (None, ("d-1234567890", "first", "wsb-abcdefghi", "", ""), r"users.csv:3: user first"),
    ],
)
async def test_a_bad_csv_is_a_usage_error_naming_the_line_and_writes_nothing(
    sim: Simulator,
    store: Store,
    tmp_path: Path,
    header: Sequence[str] | None,
    row: Sequence[str],
    error: str,
) -> None:
    first = ("d-1234567890", "first", "wsb-abcdefghi", "", "")
    rows = [first[: len(row)], row] if header is None else [row]
    path = write_csv(tmp_path / "users.csv", rows, header)
    with pytest.raises(UsageError, match=error):
        spec_for(sim, "create", params={"from": str(path)})
    assert await store.list_jobs() == []
    assert sim.stats().total_calls == 0


# -- start / stop and running modes --------------------------------------------------------


async def test_always_on_workspaces_are_skipped_by_stop_with_that_reason(
    sim: Simulator, store: Store
) -> None:
    always = pick(sim, 3, RunningMode="ALWAYS_ON", State="AVAILABLE")
    auto = pick(sim, 3, RunningMode="AUTO_STOP", State="AVAILABLE")
    sim.reset_stats()
    targets = Targets.build(workspace_ids=[*always, *auto])
    job, _counts, items = await run(store, spec_for(sim, "stop", targets, include_connected=True))
    assert job.status is JobStatus.SUCCEEDED, job.message
    reasons = {i.workspace_id: i.reason for i in items if i.state is ItemState.SKIPPED}
    assert reasons == dict.fromkeys(
        always, "running mode ALWAYS_ON cannot be stopped (needs AUTO_STOP or MANUAL)"
    )
    assert sim.stats().calls_by_workspace["StopWorkspaces"] == dict.fromkeys(auto, 1)


async def test_restore_and_rebuild_reach_available_once_each(sim: Simulator, store: Store) -> None:
    for action, transit in (("restore", "RestoreWorkspace"), ("rebuild", "RebuildWorkspaces")):
        ids = pick(sim, 8, State="AVAILABLE")[4 if action == "rebuild" else 0 :][:4]
        sim.reset_stats()
        spec = spec_for(
            sim,
            action,
            Targets.build(workspace_ids=ids),
            include_connected=True,
            max_snapshot_age=72,
        )
        job, _counts, _ = await run(store, spec)
        assert job.status is JobStatus.SUCCEEDED, job.message
        stats = sim.stats()
        assert stats.calls_by_workspace[transit] == dict.fromkeys(ids, 1)
        assert stats.largest_batch[transit] == 1
        assert stats.calls_by_workspace["DescribeWorkspaceSnapshots"] == dict.fromkeys(ids, 1)
        assert {sim.workspace(i)["State"] for i in ids} == {"AVAILABLE"}  # type: ignore[index]


async def mark_in_flight(store: Store, ids: list[int]) -> None:
    writer = store.writer()
    async with anyio.create_task_group() as tg:
        tg.start_soon(writer.run)
        await writer.write([ItemUpdate(ids=ids, state=ItemState.IN_FLIGHT, attempts_inc=1)])
        writer.close()
