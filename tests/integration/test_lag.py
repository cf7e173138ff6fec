"""Every action under eventual consistency: the simulator's DescribeWorkspaces lags 2 s behind
the truth (old state and properties kept after a call, new WorkSpaces not found), transitions take
about 1 s. Through the real engine (aiobotocore over HTTP, a real SQLite file), no WorkSpace is
recorded succeeded before it actually settled — the simulator's timeline of real states says
when that was — and none fails because it was not visible yet."""

from __future__ import annotations

import csv
from collections.abc import AsyncIterator, Collection
from pathlib import Path
from typing import Any

import anyio
import pytest
from engine_support import items_of, sim_client, spec_for
from rich.console import Console

from fleetops.api import create_job, run_job
from fleetops.catalogue.targets import Targets
from fleetops.records import ItemRecord
from fleetops.report.text import history_json, render_job
from fleetops.sim import Simulator
from fleetops.states import UNVERIFIED, ItemState, JobStatus, exit_code_for
from fleetops.store import Store
from fleetops.store.history import job_history

LAG = 2.0
TRANSITION = 1.0  # jittered to 0.75..1.25 s
SLACK = 0.05  # clock reads of the simulator and of the store


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(
        workspaces=120, seed=5, rate=None, transition_seconds=TRANSITION, describe_lag=LAG
    ) as running:
        yield running


def pick(
    sim: Simulator, n: int, state: str, exclude: Collection[str] = (), **props: Any
) -> list[str]:
    """The first ``n`` WorkSpaces in ``state`` with ``props``, other than ``exclude``."""
    found = []
    for ws_id in sim.workspace_ids():
        if ws_id in exclude:
            continue
        ws = sim.workspace(ws_id)
        assert ws is not None
        wp = ws["WorkspaceProperties"]
        if ws["State"] == state and all(wp.get(k) == v for k, v in props.items()):
            found.append(ws_id)
            if len(found) == n:
                return found
    raise AssertionError(f"fewer than {n} WorkSpaces in {state} with {props}")


async def run(store: Store, sim: Simulator, action: str, ids: list[str] | None, **kw: Any) -> Any:
    params = kw.pop("params", None)
    targets = Targets.build(workspace_ids=ids) if ids else None
    spec = spec_for(sim, action, targets, params, include_connected=True, **kw)
    job = await run_job(store, (await create_job(store, spec)).id)
    return job, await store.counts(job.id), await items_of(store, job.id)


async def run_together(
    store: Store, sim: Simulator, jobs: dict[str, tuple[list[str] | None, dict[str, Any]]]
) -> dict[str, Any]:
    """Run several jobs at once (``name``: its action's first word) and collect each result."""
    results: dict[str, Any] = {}

    async def one(name: str, ids: list[str] | None, kw: dict[str, Any]) -> None:
        results[name] = await run(store, sim, name.split()[0], ids, **kw)

    async with anyio.create_task_group() as tg:
        for name, (ids, kw) in jobs.items():
            tg.start_soon(one, name, ids, dict(kw))
    return results


def assert_succeeded_after_settling(
    sim: Simulator, items: list[ItemRecord], end: str, *, watched: str = "workspace"
) -> None:
    """Every item succeeded, verified (no Unverified), and recorded only after its WorkSpace
    really reached ``end`` — and after a lagging Describe could first show that."""
    assert items
    for item in items:
        assert item.state is ItemState.SUCCEEDED, (item.workspace_id, item.error_message)
        assert item.error_code is None, item.error_message
        ws_id = item.result if watched == "result" else item.workspace_id
        assert ws_id is not None
        timeline = sim.timeline(ws_id)
        assert timeline, f"{ws_id} never changed"
        settled_at, state = timeline[-1]
        assert state == end, timeline
        assert item.updated_at >= settled_at - SLACK, (ws_id, item.updated_at - settled_at)
        assert item.updated_at >= settled_at + LAG - SLACK, "seen before Describe could show it"


# Jobs over disjoint WorkSpaces run side by side (the lag is waited out once, not per action).
STATE_ACTIONS = [
    # action, WorkSpaces, state and properties at plan time, transitional and end state
    ("reboot", 4, "AVAILABLE", {}, "REBOOTING", "AVAILABLE"),
    ("rebuild", 2, "AVAILABLE", {}, "REBUILDING", "AVAILABLE"),
    ("restore", 2, "AVAILABLE", {}, "RESTORING", "AVAILABLE"),
    ("start", 4, "STOPPED", {"RunningMode": "AUTO_STOP"}, "STARTING", "AVAILABLE"),
    ("stop", 4, "AVAILABLE", {"RunningMode": "AUTO_STOP"}, "STOPPING", "STOPPED"),
    ("terminate", 4, "AVAILABLE", {}, "TERMINATING", "TERMINATED"),
]


async def test_state_actions_succeed_only_once_settled(sim: Simulator, store: Store) -> None:
    chosen: set[str] = set()
    jobs: dict[str, list[str]] = {}
    for action, count, state, props, _, _ in STATE_ACTIONS:
        jobs[action] = pick(sim, count, state, chosen, **props)
        chosen.update(jobs[action])
    results = await run_together(
        store, sim, {a: (ids, {"max_snapshot_age": 72}) for a, ids in jobs.items()}
    )
    for action, count, _, _, during, end in STATE_ACTIONS:
        job, counts, items = results[action]
        assert job.status is JobStatus.SUCCEEDED, (action, job.message)
        assert counts[ItemState.SUCCEEDED] == count, action
        assert_succeeded_after_settling(sim, items, end)
        for ws_id in jobs[action]:
            assert [s for _, s in sim.timeline(ws_id)] == [during, end], action
    # Verified, every one: jobs show counts no unverified item.
    data = history_json(await job_history(store, results["reboot"][0]))
    assert data["unverified"] == 0 and data["unverified_examples"] == []
    assert data["counts"]["succeeded"] == 4


async def test_property_and_maintenance_actions_succeed_only_once_read_back(
    sim: Simulator, store: Store
) -> None:
    modify = pick(sim, 3, "AVAILABLE", RunningMode="AUTO_STOP")
    on = pick(sim, 3, "AVAILABLE", modify)
    off = pick(sim, 3, "AVAILABLE", modify + on)
    tag = pick(sim, 3, "AVAILABLE", modify + on + off)
    for ws_id in off:
        sim.set_state(ws_id, "ADMIN_MAINTENANCE")
    await anyio.sleep(LAG)  # a lagging listing would still say AVAILABLE: "already" for "off"
    results = await run_together(
        store,
        sim,
        {
            "modify": (modify, {"params": {"running_mode": "ALWAYS_ON"}}),
            "maintenance on": (on, {"params": {"maintenance": True}}),
            "maintenance off": (off, {"params": {"maintenance": False}}),
            "tag": (tag, {"params": {"set": {"owner": "lag"}, "remove": ["env"]}}),
        },
    )
    for name, end in (
        ("modify", "AVAILABLE"),
        ("maintenance on", "ADMIN_MAINTENANCE"),
        ("maintenance off", "AVAILABLE"),
    ):
        job, counts, items = results[name]
        assert job.status is JobStatus.SUCCEEDED, (name, job.message)
        assert counts[ItemState.SUCCEEDED] == 3, name
        assert_succeeded_after_settling(sim, items, end)
    for ws_id in modify:
        assert sim.workspace(ws_id)["WorkspaceProperties"]["RunningMode"] == "ALWAYS_ON"  # type: ignore[index]
    # tag: synchronous, done when accepted; the tags are there
    job, counts, items = results["tag"]
    assert job.status is JobStatus.SUCCEEDED and counts[ItemState.SUCCEEDED] == 3
    async with sim_client(sim) as client:
        for item in items:
            assert item.error_code is None
            tags = (await client.describe_tags(ResourceId=item.workspace_id))["TagList"]
            values = {t["Key"]: t["Value"] for t in tags}
            assert values.get("owner") == "lag" and "env" not in values


async def test_new_workspaces_not_found_at_first_are_waited_for_then_verified(
    sim: Simulator, store: Store, tmp_path: Path
) -> None:
    async with sim_client(sim) as client:
        bundles = [b["BundleId"] for b in (await client.describe_workspace_bundles())["Bundles"]]
        directory = (await client.describe_workspace_directories())["Directories"][0]
    migrate = [
        ws_id
        for ws_id in pick(sim, 20, "AVAILABLE")
        if sim.workspace(ws_id)["BundleId"] != bundles[0]  # type: ignore[index]
    ][:3]
    path = tmp_path / "users.csv"
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(("directory_id", "user_name", "bundle_id"))
        writer.writerows((directory["DirectoryId"], f"lag{n}", bundles[0]) for n in range(5))
    results = await run_together(
        store,
        sim,
        {
            "migrate": (
                migrate,
                {"params": {"to_bundle": bundles[0]}, "ignore_snapshot_age": True},
            ),
            "create": (None, {"params": {"from": str(path)}}),
        },
    )
    for name, count in (("migrate", 3), ("create", 5)):
        job, counts, items = results[name]
        assert job.status is JobStatus.SUCCEEDED, (name, job.message)
        assert counts[ItemState.FAILED] == 0 and counts[ItemState.SUCCEEDED] == count, name
        assert_succeeded_after_settling(sim, items, "AVAILABLE", watched="result")
    for ws_id in migrate:
        assert [s for _, s in sim.timeline(ws_id)] == ["TERMINATING", "TERMINATED"]


async def test_a_transition_faster_than_the_polls_is_unverified_not_verified(
    store: Store,
) -> None:
    """Reboots over in 10 ms, before the first poll: nothing proves they happened. They end
    succeeded but Unverified, counted apart in ``jobs show``; the exit code stays 0."""
    async with Simulator(workspaces=40, seed=6, rate=None, transition_seconds=0.01) as fast:
        ids = pick(fast, 3, "AVAILABLE")
        job, counts, items = await run(store, fast, "reboot", ids, verify_timeout=1.5)
    assert job.status is JobStatus.SUCCEEDED, job.message
    assert counts[ItemState.SUCCEEDED] == 3 and exit_code_for(job.status, counts) == 0
    assert {i.error_code for i in items} == {UNVERIFIED}
    assert all("no sign of the reboot was ever seen" in (i.error_message or "") for i in items)
    history = await job_history(store, job)
    data = history_json(history)
    assert data["unverified"] == 3 and data["counts"]["succeeded"] == 3
    assert {e["workspace_id"] for e in data["unverified_examples"]} == set(ids)
    console = Console(width=160, record=True)
    render_job(console, history)
    text = console.export_text()
    assert "3 succeeded (3 unverified)" in text and UNVERIFIED in text
