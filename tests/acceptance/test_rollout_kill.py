"""``fleetops run rollout`` over two regions SIGKILLed while it rebuilds, then ``fleetops jobs
resume``: no bundle was updated twice, no WorkSpace rebuilt twice (the simulators' counters per
WorkSpace and operation), and every WorkSpace of each region's bundle was rebuilt once, or is
held in doubt (a rebuild that may or may not have been sent)."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from fleetops_harness import Cli, Db, wait_until

from fleetops.sim import Simulator

REGIONS = ("us-east-1", "eu-west-1")


@pytest.fixture
def sims() -> Iterator[dict[str, Simulator]]:
    knobs: dict[str, Any] = {
        "workspaces": 40,
        "rate": 8,
        "burst": 2,
        "transition_seconds": 1.5,
        "connected_fraction": 0.0,
        "stale_snapshot_fraction": 0.0,
    }
    with (
        Simulator(seed=4, region=REGIONS[0], **knobs).run_in_thread() as east,
        Simulator(seed=9, region=REGIONS[1], **knobs).run_in_thread() as west,
    ):
        for sim in (east, west):
            for ws_id in sim.workspace_ids():
                sim.set_state(ws_id, "AVAILABLE")
        yield {REGIONS[0]: east, REGIONS[1]: west}


def _rollout_of(sim: Simulator, region: str) -> tuple[str, str, list[str]]:
    """The busiest bundle, its newer image, and its WorkSpaces."""
    client = boto3.client(
        "workspaces",
        region_name=region,
        endpoint_url=sim.endpoint_url,
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    bundles = client.describe_workspace_bundles(Owner="123456789012")["Bundles"]
    images = client.describe_workspace_images()["Images"]
    members: dict[str, list[str]] = {}
    for ws_id in sim.workspace_ids():
        members.setdefault((sim.workspace(ws_id) or {})["BundleId"], []).append(ws_id)
    bundle = max(bundles, key=lambda b: len(members.get(b["BundleId"], [])))
    name = next(i["Name"] for i in images if i["ImageId"] == bundle["ImageId"])
    new = next(i["ImageId"] for i in images if i["Name"] == f"{name}-v2")
    return bundle["BundleId"], new, members[bundle["BundleId"]]


def test_two_regions_killed_while_rebuilding_update_and_rebuild_nothing_twice(
    cli: Cli, db: Db, sims: dict[str, Simulator]
) -> None:
    plans = {region: _rollout_of(sim, region) for region, sim in sims.items()}
    args = ["run", "rollout"]
    for region, sim in sims.items():
        bundle, image, _ = plans[region]
        args += ["--region", region, "--endpoint-url", sim.endpoint_url,
                 "--bundle", f"{region}={bundle}", "--image", f"{region}={image}"]  # fmt: skip
    args += ["--waves", "2,all", "--rate", "8", "--burst", "2", "--ignore-snapshot-age",
             "--yes", "--json"]  # fmt: skip
    proc = cli.spawn(*args)
    job_id = proc.job_id()

    def rebuilding() -> bool:
        if proc.popen.poll() is not None:
            pytest.fail(f"the job ended before the kill:\n{proc.stderr[-2000:]}")
        sent = [
            len(sim.stats().calls_by_workspace.get("RebuildWorkspaces", {}))
            for sim in sims.values()
        ]
        return min(sent) >= 1 and max(sent) >= 3

    wait_until(rebuilding, timeout=90, interval=0.01, what="both regions rebuilding")
    proc.kill(signal.SIGKILL)

    result = cli.run("jobs", "resume", job_id, "--json", timeout=180)
    assert "Traceback" not in result.stderr
    assert result.code in (0, 4), result.stderr[-3000:]
    doubt = set(db.items(job_id, "in_doubt"))
    states = db.items(job_id)
    for region, sim in sims.items():
        bundle, image, members = plans[region]
        stats = sim.stats()
        assert stats.calls_by_operation["UpdateWorkspaceBundle"] == 1
        rebuilt = dict(stats.calls_by_workspace["RebuildWorkspaces"])
        assert set(rebuilt.values()) == {1}  # none twice
        assert set(rebuilt) <= set(members)  # the other bundles' untouched
        assert set(rebuilt) | (doubt & set(members)) == set(members)
        for ws_id in set(members) - doubt:
            assert states[ws_id] == "succeeded", ws_id
        bundles = boto3.client(
            "workspaces",
            region_name=region,
            endpoint_url=sim.endpoint_url,
            aws_access_key_id="x",
            aws_secret_access_key="x",
        ).describe_workspace_bundles(BundleIds=[bundle])["Bundles"]
        assert bundles[0]["ImageId"] == image
