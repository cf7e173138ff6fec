"""``fleetops run rollout`` as a user runs it: an image that is not AVAILABLE is one line, exit
2, nothing written; every rebuild failing with ``--max-errors 1 --rollback-on-abort`` is exit 3
with the bundle on its old image, and ``jobs show --json`` says so."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from fleetops_harness import REGION, Cli, Db

from fleetops.sim import Simulator


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(
        workspaces=60,
        seed=4,
        rate=None,
        transition_seconds=0.4,
        connected_fraction=0.0,
        stale_snapshot_fraction=0.0,
    ).run_in_thread() as running:
        for ws_id in running.workspace_ids():
            running.set_state(ws_id, "AVAILABLE")
        yield running


def _client(sim: Simulator) -> Any:
    return boto3.client(
        "workspaces",
        region_name=REGION,
        endpoint_url=sim.endpoint_url,
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )


def _bundle(sim: Simulator) -> tuple[str, str, dict[str, str]]:
    """A bundle, its image, and the account's images by state (the -v2 one as ``NEW``)."""
    client = _client(sim)
    bundle = client.describe_workspace_bundles(Owner="123456789012")["Bundles"][0]
    images = client.describe_workspace_images()["Images"]
    name = next(i["Name"] for i in images if i["ImageId"] == bundle["ImageId"])
    by_state = {i["State"]: i["ImageId"] for i in images}
    by_state["NEW"] = next(i["ImageId"] for i in images if i["Name"] == f"{name}-v2")
    return bundle["BundleId"], bundle["ImageId"], by_state


@pytest.mark.parametrize("state", ["PENDING", "ERROR"])
def test_an_image_not_available_is_one_line_exit_2_nothing_written(
    cli: Cli, db: Db, sim: Simulator, state: str
) -> None:
    bundle, _, images = _bundle(sim)
    args = ["--bundle", bundle, "--image", images[state], "--yes"]
    result = cli.run(*cli.run_args("rollout", sim.endpoint_url, *args))
    assert result.code == 2
    assert f"is {state}, not AVAILABLE" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert db.job_ids() == []
    assert "UpdateWorkspaceBundle" not in sim.stats().calls_by_operation


def test_every_rebuild_failing_aborts_exit_3_and_rolls_the_bundle_back(
    cli: Cli, db: Db, sim: Simulator
) -> None:
    bundle, old, images = _bundle(sim)
    sim.configure(rebuild_error_fraction=1.0)
    args = ["--bundle", bundle, "--image", images["NEW"], "--waves", "5,all", "--max-errors",
            "1", "--rollback-on-abort", "--ignore-snapshot-age", "--yes", "--json"]  # fmt: skip
    result = cli.run(*cli.run_args("rollout", sim.endpoint_url, *args), timeout=120)
    assert result.code == 3, result.stderr[-2000:]
    job = result.json()
    assert job["status"] == "aborted"
    bundles = _client(sim).describe_workspace_bundles(BundleIds=[bundle])["Bundles"]
    assert bundles[0]["ImageId"] == old
    assert len(sim.stats().calls_by_workspace["RebuildWorkspaces"]) <= 5
    shown = cli.run("jobs", "show", job["id"], "--json").json()
    assert shown["rollout"] == {
        "bundle_id": bundle,
        "old_image_id": old,
        "new_image_id": images["NEW"],
        "rolled_back": True,
    }
