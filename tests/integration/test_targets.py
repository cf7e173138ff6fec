"""Every selector, alone and combined, against the simulator: the WorkSpaces selected (checked
against the fleet read independently) and the planning calls each costs (the simulator's
counters, and what --dry-run reports)."""

from __future__ import annotations

import fnmatch
import math
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from engine_support import sim_client

from fleetops.api import JobSpec, create_job, dry_run, plan_job
from fleetops.aws.client import Connection
from fleetops.catalogue.options import JobOptions
from fleetops.catalogue.targets import Targets, read_ids_file
from fleetops.errors import UsageError
from fleetops.sim import Simulator
from fleetops.store import Store

REGION = "us-east-1"
N = 120


@dataclass
class Fleet:
    workspaces: list[dict[str, Any]]
    tags: dict[str, dict[str, str]]
    last_connection: dict[str, float | None]
    connected: set[str]


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(workspaces=N, rate=None, transition_seconds=0.2) as running:
        yield running


async def read_fleet(sim: Simulator) -> Fleet:
    async with sim_client(sim) as client:
        workspaces: list[dict[str, Any]] = []
        async for page in client.get_paginator("describe_workspaces").paginate():
            workspaces.extend(page["Workspaces"])
        tags = {}
        for ws in workspaces:
            listed = (await client.describe_tags(ResourceId=ws["WorkspaceId"]))["TagList"]
            tags[ws["WorkspaceId"]] = {t["Key"]: t["Value"] for t in listed}
        last: dict[str, float | None] = {}
        connected = set()
        ids = [ws["WorkspaceId"] for ws in workspaces]
        for start in range(0, len(ids), 25):
            response = await client.describe_workspaces_connection_status(
                WorkspaceIds=ids[start : start + 25]
            )
            for status in response["WorkspacesConnectionStatus"]:
                stamp = status.get("LastKnownUserConnectionTimestamp")
                last[status["WorkspaceId"]] = stamp.timestamp() if stamp else None
                if status.get("ConnectionState") == "CONNECTED":
                    connected.add(status["WorkspaceId"])
    sim.reset_stats()
    return Fleet(workspaces, tags, last, connected)


def pages(count: int) -> int:
    return max(1, math.ceil(count / 25))


@dataclass
class Case:
    name: str
    build: Callable[[Fleet], dict[str, Any]]
    pred: Callable[[dict[str, Any], Fleet, dict[str, Any]], bool]
    route: str  # how DescribeWorkspaces is asked: ids | filter | scan


def _first(fleet: Fleet, key: str) -> Any:
    ws = fleet.workspaces[0]
    return ws.get(key, ws["WorkspaceProperties"].get(key))


def _idle(ws: dict[str, Any], fleet: Fleet, days: float) -> bool:
    ws_id = ws["WorkspaceId"]
    last = fleet.last_connection.get(ws_id)
    return ws_id not in fleet.connected and (last is None or last <= time.time() - days * 86400)


CASES = [
    Case(
        "ids",
        lambda f: {"workspace_ids": [w["WorkspaceId"] for w in f.workspaces[::4]]},
        lambda ws, f, kw: ws["WorkspaceId"] in kw["workspace_ids"],
        "ids",
    ),
    Case(
        "directory",
        lambda f: {"directory_id": _first(f, "DirectoryId")},
        lambda ws, f, kw: ws["DirectoryId"] == kw["directory_id"],
        "filter",
    ),
    Case(
        "bundle",
        lambda f: {"bundle_id": _first(f, "BundleId")},
        lambda ws, f, kw: ws["BundleId"] == kw["bundle_id"],
        "filter",
    ),
    Case(
        "state",
        lambda f: {"states": ["STOPPED", "ERROR"]},
        lambda ws, f, kw: ws["State"] in ("STOPPED", "ERROR"),
        "scan",
    ),
    Case(
        "running mode",
        lambda f: {"running_mode": "ALWAYS_ON"},
        lambda ws, f, kw: ws["WorkspaceProperties"]["RunningMode"] == "ALWAYS_ON",
        "scan",
    ),
    Case(
        "compute type",
        lambda f: {"compute_type": "POWER"},
        lambda ws, f, kw: ws["WorkspaceProperties"]["ComputeTypeName"] == "POWER",
        "scan",
    ),
    Case(
        "user glob",
        lambda f: {"user": "user00[1-3]*"},
        lambda ws, f, kw: fnmatch.fnmatchcase(ws["UserName"], "user00[1-3]*"),
        "scan",
    ),
    Case(
        "tag",
        lambda f: {"tags": ["team=finance"]},
        lambda ws, f, kw: f.tags[ws["WorkspaceId"]].get("team") == "finance",
        "scan",
    ),
    Case(
        "exclude tag",
        lambda f: {"exclude_tags": ["fleetops:skip=true"]},
        lambda ws, f, kw: f.tags[ws["WorkspaceId"]].get("fleetops:skip") != "true",
        "scan",
    ),
    Case(
        "idle days",
        lambda f: {"idle_days": 30},
        lambda ws, f, kw: _idle(ws, f, 30),
        "scan",
    ),
    Case(
        "directory + plain user",
        lambda f: {"directory_id": _first(f, "DirectoryId"), "user": _first(f, "UserName")},
        lambda ws, f, kw: ws["UserName"] == kw["user"] and ws["DirectoryId"] == kw["directory_id"],
        "filter",
    ),
    Case(
        "directory + state + tag + exclude tag",
        lambda f: {
            "directory_id": _first(f, "DirectoryId"),
            "states": ["AVAILABLE"],
            "tags": ["env=prod"],
            "exclude_tags": ["team=hr"],
        },
        lambda ws, f, kw: (
            ws["DirectoryId"] == kw["directory_id"]
            and ws["State"] == "AVAILABLE"
            and f.tags[ws["WorkspaceId"]].get("env") == "prod"
            and f.tags[ws["WorkspaceId"]].get("team") != "hr"
        ),
        "filter",
    ),
    Case(
        "bundle + running mode + idle + tag",
        lambda f: {
            "bundle_id": _first(f, "BundleId"),
            "running_mode": "AUTO_STOP",
            "idle_days": 20,
            "tags": ["env=prod"],
        },
        lambda ws, f, kw: (
            ws["BundleId"] == kw["bundle_id"]
            and ws["WorkspaceProperties"]["RunningMode"] == "AUTO_STOP"
            and _idle(ws, f, 20)
            and f.tags[ws["WorkspaceId"]].get("env") == "prod"
        ),
        "filter",
    ),
    Case(
        "ids + compute type + user glob",
        lambda f: {
            "workspace_ids": [w["WorkspaceId"] for w in f.workspaces[:60]],
            "compute_type": "STANDARD",
            "user": "USER00*",
        },
        lambda ws, f, kw: (
            ws["WorkspaceId"] in kw["workspace_ids"]
            and ws["WorkspaceProperties"]["ComputeTypeName"] == "STANDARD"
            and ws["UserName"].startswith("user00")
        ),
        "ids",
    ),
]


def expected_calls(case: Case, kwargs: dict[str, Any], fleet: Fleet) -> dict[str, int]:
    """The cheapest calls: one describe route, local checks, statuses 25 a call for the
    WorkSpaces still in (idleness before tags), DescribeTags only for survivors."""
    targets = Targets.build(**kwargs)
    if case.route == "ids":
        routed = [w for w in fleet.workspaces if w["WorkspaceId"] in kwargs["workspace_ids"]]
        describes = math.ceil(len(kwargs["workspace_ids"]) / 25)
    elif case.route == "filter":
        key = "DirectoryId" if "directory_id" in kwargs else "BundleId"
        value = kwargs.get("directory_id") or kwargs["bundle_id"]
        routed = [w for w in fleet.workspaces if w[key] == value]
        if "directory_id" in kwargs and kwargs.get("user") and "*" not in kwargs["user"]:
            routed = [w for w in routed if w["UserName"] == kwargs["user"]]
        describes = pages(len(routed))
    else:  # the directories listed, then one stream of pages a directory
        routed = fleet.workspaces
        directories = Counter(w["DirectoryId"] for w in fleet.workspaces)
        describes = sum(pages(n) for n in directories.values())
    local = [w for w in routed if targets.matches_locally(w)]
    calls = {"DescribeWorkspaces": describes}
    if case.route not in ("ids", "filter"):
        calls["DescribeWorkspaceDirectories"] = 1
    if targets.idle_days is not None:
        calls["DescribeWorkspacesConnectionStatus"] = math.ceil(len(local) / 25)
        local = [w for w in local if _idle(w, fleet, targets.idle_days)]
    if targets.needs_tags:
        calls["DescribeTags"] = len(local)
    return {op: n for op, n in calls.items() if n}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_selector_selects_exactly_and_costs_the_cheapest_calls(
    sim: Simulator, store: Store, case: Case
) -> None:
    fleet = await read_fleet(sim)
    kwargs = case.build(fleet)
    expected = {w["WorkspaceId"] for w in fleet.workspaces if case.pred(w, fleet, kwargs)}
    assert expected  # every case selects something (else it proves little)
    assert len(expected) < N or not kwargs.keys() - {"exclude_tags"}
    spec = JobSpec(
        action="tag",  # interrupts no session: the plan's calls are the selectors' alone
        targets=Targets.build(**kwargs),
        connection=Connection(REGION, None, sim.endpoint_url),
        options=JobOptions(rate=None),
        params={"set": {"k": "v"}},
    )
    summary = await dry_run(spec)
    dry_calls = sim.stats().calls_by_operation
    assert summary.total == len(expected)
    assert summary.planning_calls == sum(dry_calls.values())
    assert dry_calls == expected_calls(case, kwargs, fleet)
    sim.reset_stats()
    job = await plan_job(store, (await create_job(store, spec)).id)
    selected = set()
    async for page in store.iter_items(job.id):
        selected.update(item.workspace_id for item in page)
    assert selected == expected
    assert sim.stats().calls_by_operation == dry_calls
    # What running it would cost: one CreateTags per WorkSpace, no verification.
    assert summary.submit_calls == len(expected) and summary.verify_calls == 0


async def test_connection_status_is_asked_only_for_workspaces_the_action_would_touch(
    sim: Simulator,
) -> None:
    fleet = await read_fleet(sim)
    spec = JobSpec(
        action="start",  # most WorkSpaces are not STOPPED: no status needed for them
        targets=Targets(),
        connection=Connection(REGION, None, sim.endpoint_url),
        options=JobOptions(rate=None),
    )
    summary = await dry_run(spec)
    asked = sim.stats().calls_by_workspace.get("DescribeWorkspacesConnectionStatus", {})
    stopped = {
        w["WorkspaceId"]
        for w in fleet.workspaces
        if w["State"] == "STOPPED" and w["WorkspaceProperties"]["RunningMode"] != "ALWAYS_ON"
    }
    # start interrupts no session: no status at all; stop does, for eligible ones only.
    assert asked == {}
    assert summary.eligible == len(stopped)
    sim.reset_stats()
    spec = JobSpec(
        action="stop",
        targets=Targets.build(states=["AVAILABLE", "STOPPED"]),
        connection=Connection(REGION, None, sim.endpoint_url),
        options=JobOptions(rate=None),
    )
    await dry_run(spec)
    asked = sim.stats().calls_by_workspace["DescribeWorkspacesConnectionStatus"]
    eligible = {
        w["WorkspaceId"]
        for w in fleet.workspaces
        if w["State"] == "AVAILABLE" and w["WorkspaceProperties"]["RunningMode"] != "ALWAYS_ON"
    }
    assert set(asked) == eligible


def test_ids_file_comments_duplicates_and_a_bad_line(tmp_path: Path) -> None:
    good = tmp_path / "ids.txt"
    good.write_text("# fleet\nws-abcdefgh12\n\nws-abcdefgh13  # second\nws-abcdefgh12\n")
    assert read_ids_file(good) == ["ws-abcdefgh12", "ws-abcdefgh13"]
    targets = Targets.build(ids_file=str(good), workspace_ids=["ws-abcdefgh14"])
    assert targets.workspace_ids == ("ws-abcdefgh14", "ws-abcdefgh12", "ws-abcdefgh13")
    bad = tmp_path / "bad.txt"
    bad.write_text("ws-abcdefgh12\nnot-an-id\n")
    with pytest.raises(UsageError, match=r"bad.txt:2: 'not-an-id' is not a WorkSpace id"):
        Targets.build(ids_file=str(bad))
