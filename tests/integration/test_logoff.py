"""``--wait-for-logoff``: against the simulator over HTTP (users connected and logged off with
its ``POST /_sim/connections``) and a SQLite file migrated by alembic. Nobody is rebooted while
connected; a user who logs off is rebooted then; one still connected at the deadline is skipped
with the reason; progress counts who waits."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from fleetops import api
from fleetops.catalogue.specs import RunRequest, Where
from fleetops.engine import logoff
from fleetops.errors import UsageError
from fleetops.sim import Simulator
from fleetops.states import ItemState, JobStatus
from fleetops.store import Store


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(
        workspaces=30, seed=13, rate=None, transition_seconds=0.05, stale_snapshot_fraction=0.0
    ).run_in_thread() as running:
        yield running


def connect(sim: Simulator, ids: list[str], state: str) -> None:
    """Users log on or off, through the simulator's control endpoint."""
    body = json.dumps({"workspace_ids": ids, "state": state}).encode()
    request = urllib.request.Request(sim.endpoint_url + "/_sim/connections", data=body)
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert json.loads(answer.read())["state"] == state


def reboots(sim: Simulator) -> dict[str, int]:
    return dict(sim.stats().calls_by_workspace.get("RebootWorkspaces", {}))


def test_nobody_is_rebooted_while_connected(
    sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logoff, "POLL_FIRST", 0.1)
    monkeypatch.setattr(logoff, "POLL_CAP", 0.3)
    ids = [ws for ws in sim.workspace_ids() if sim.workspace(ws)["State"] == "AVAILABLE"][:6]
    connect(sim, ids, "DISCONNECTED")
    connect(sim, ids[:3], "CONNECTED")  # three users at work
    spec = api.build_spec(
        RunRequest(
            "reboot",
            selectors={"workspace_ids": ids},
            options={"wait_for_logoff": "4s", "rate": 50.0, "burst": 10},
            where=Where(region=("us-east-1",), endpoint_url=(sim.endpoint_url,)),
        )
    )
    waited: list[int] = []

    async def main() -> None:
        store = await Store.open(tmp_path / "fleetops.db")
        try:
            job = await api.create_job(store, spec)
            runners: list[api.JobRunner] = []
            result: list[api.JobRecord] = []

            async def run() -> None:
                result.append(await api.run_job(store, job.id, on_start=runners.append))

            async with anyio.create_task_group() as tg:
                tg.start_soon(run)
                # the three free WorkSpaces are rebooted; the three in use are held
                deadline = time.monotonic() + 20
                while sorted(reboots(sim)) != sorted(ids[3:]) and time.monotonic() < deadline:
                    await anyio.sleep(0.05)
                assert sorted(reboots(sim)) == sorted(ids[3:])
                while not runners or runners[0].stats.logoff_waiting != 3:
                    await anyio.sleep(0.05)
                waited.append(runners[0].stats.logoff_waiting)
                await anyio.sleep(0.5)  # re-read a few times: still connected, still held
                assert not set(reboots(sim)) & set(ids[:3])
                connect(sim, ids[:2], "DISCONNECTED")  # two log off
            (finished,) = result
            assert finished.status is JobStatus.SUCCEEDED, finished.message
            counts = await store.counts(job.id)
            assert (counts[ItemState.SUCCEEDED], counts[ItemState.SKIPPED]) == (5, 1)
            (skipped,) = await store.items_page(job.id, states=[ItemState.SKIPPED])
            assert skipped.workspace_id == ids[2]
            assert skipped.reason == "user still connected after 4s"
        finally:
            await store.close()

    anyio.run(main)
    assert waited == [3]
    assert reboots(sim) == dict.fromkeys(ids[:2] + ids[3:], 1)  # each once; ids[2] never
    stats = sim.stats()
    assert stats.largest_batch["DescribeWorkspacesConnectionStatus"] <= 25
    assert stats.calls_by_operation["DescribeWorkspacesConnectionStatus"] >= 4  # re-read


def test_a_bad_duration_is_refused() -> None:
    with pytest.raises(UsageError, match="--wait-for-logoff 'soon' is not a duration"):
        api.build_spec(RunRequest("reboot", options={"wait_for_logoff": "soon"}))
