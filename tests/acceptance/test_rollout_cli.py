"""``fleetops run rollout`` as a user runs it: an image that is not AVAILABLE is one line, exit
2, nothing written (a dry run and a plan check it as a run does); every rebuild failing with
``--max-errors 1 --rollback-on-abort`` is exit 3 with the bundle on its old image, and ``jobs
show`` (text and ``--json``) says so; over two regions, ``--bundle``/``--image SCOPE=ID`` give
each region its own, and a scope left without one or not targeted is refused."""

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
    text = cli.run("jobs", "show", job["id"])
    assert text.code == 0
    assert f"rollout  bundle {bundle} {old} → {images['NEW']} (rolled back)" in text.stdout
    params = next(line for line in text.stdout.splitlines() if line.lstrip().startswith("params"))
    assert f"bundle={bundle}" in params and "old_image_id" not in params  # told once, above


@pytest.mark.parametrize("mode", ["--dry-run", "--plan-only"])
@pytest.mark.parametrize("state", ["PENDING", "missing"])
def test_a_dry_run_or_a_plan_checks_the_image_as_a_run_does(
    cli: Cli, db: Db, sim: Simulator, mode: str, state: str
) -> None:
    bundle, _, images = _bundle(sim)
    image = images.get(state, "wsi-000000000")
    result = cli.run(*cli.run_args("rollout", sim.endpoint_url, "--bundle", bundle, "--image",
                                   image, mode))  # fmt: skip
    assert result.code == 2, result.stderr
    assert image in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert db.job_ids() == []
    # an AVAILABLE image plans, and the plan says which bundle is pointed at which image
    good = cli.run(*cli.run_args("rollout", sim.endpoint_url, "--bundle", bundle, "--image",
                                 images["NEW"], mode))  # fmt: skip
    assert good.code == 0, good.stderr
    assert f"{REGION}: bundle {bundle} → image {images['NEW']}" in good.stderr
    assert "UpdateWorkspaceBundle" not in sim.stats().calls_by_operation


@pytest.fixture
def west() -> Iterator[Simulator]:
    with Simulator(
        workspaces=30,
        seed=9,
        region="eu-west-1",
        rate=None,
        transition_seconds=0.3,
        connected_fraction=0.0,
        stale_snapshot_fraction=0.0,
    ).run_in_thread() as running:
        for ws_id in running.workspace_ids():
            running.set_state(ws_id, "AVAILABLE")
        yield running


def _two_regions(sim: Simulator, west: Simulator, *extra: str) -> list[str]:
    return ["run", "rollout", "--region", REGION, "--endpoint-url", sim.endpoint_url,
            "--region", "eu-west-1", "--endpoint-url", west.endpoint_url, *extra]  # fmt: skip


def test_two_regions_each_with_its_bundle_and_image(
    cli: Cli, db: Db, sim: Simulator, west: Simulator
) -> None:
    east_bundle, east_old, east_images = _bundle(sim)
    west_bundle, west_old, west_images = _bundle(west)
    scoped = [f"--bundle={REGION}={east_bundle}", f"--bundle=eu-west-1={west_bundle}",
              f"--image={REGION}={east_images['NEW']}"]  # fmt: skip
    # west has no image: one line, exit 2, nothing written
    refused = cli.run(*_two_regions(sim, west, *scoped, "--yes"))
    assert refused.code == 2
    assert "rollout has no image for eu-west-1: add --image eu-west-1=wsi-…" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    # a scope the job does not target
    stray = cli.run(*_two_regions(sim, west, *scoped, "--image", f"ap-south-1={east_old}",
                                  "--yes"))  # fmt: skip
    assert stray.code == 2 and "does not target ap-south-1" in stray.stderr
    assert db.job_ids() == []
    assert "UpdateWorkspaceBundle" not in sim.stats().calls_by_operation

    args = [*scoped, f"--image=eu-west-1={west_images['NEW']}", "--ignore-snapshot-age",
            "--yes", "--json"]  # fmt: skip
    result = cli.run(*_two_regions(sim, west, *args), timeout=120)
    assert result.code == 0, result.stderr[-2000:]
    for one, bundle in ((sim, east_bundle), (west, west_bundle)):
        assert one.stats().calls_by_operation["UpdateWorkspaceBundle"] == 1
        members = [w for w in one.workspace_ids() if one.workspace(w)["BundleId"] == bundle]  # type: ignore[index]
        assert one.stats().calls_by_workspace["RebuildWorkspaces"] == dict.fromkeys(members, 1)
    job = result.json()
    shown = cli.run("jobs", "show", job["id"], "--json").json()["rollout"]
    assert [(s["region"], s["bundle_id"], s["old_image_id"]) for s in shown["scopes"]] == [
        (REGION, east_bundle, east_old),
        ("eu-west-1", west_bundle, west_old),
    ]
    text = cli.run("jobs", "show", job["id"]).stdout
    assert f"rollout  {REGION}: bundle {east_bundle} {east_old} → {east_images['NEW']}" in text
    assert f"rollout  eu-west-1: bundle {west_bundle} {west_old} → {west_images['NEW']}" in text
