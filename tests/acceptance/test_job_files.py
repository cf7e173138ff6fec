"""Every example job file in jobs/ runs against the simulator through the CLI.

The examples name production-looking directories and bundles; flags override a job file's
fields, so each run points the file at the simulator's own directory and bundles.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleetops.sim import Simulator

JOBS = Path(__file__).resolve().parents[2] / "jobs"


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator(
        workspaces=150, seed=11, rate=None, transition_seconds=0.1, stale_snapshot_fraction=0.0
    ).run_in_thread() as running:
        yield running


def run(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    }
    return subprocess.run(
        [sys.executable, "-m", "fleetops", "--db", str(db), "--quiet", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def _newer_image(sim: Simulator, bundle: str) -> str:
    """The simulator's newer image of ``bundle`` (``<its image's name>-v2``)."""
    import boto3

    client = boto3.client(
        "workspaces",
        region_name="us-east-1",
        endpoint_url=sim.endpoint_url,
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    found = client.describe_workspace_bundles(BundleIds=[bundle])["Bundles"][0]
    images = client.describe_workspace_images()["Images"]
    name = next(i["Name"] for i in images if i["ImageId"] == found["ImageId"])
    # the module's simulator is shared: an earlier rollout example may have moved the bundle on
    base = name.removesuffix("-v2")
    return str(next(i["ImageId"] for i in images if i["Name"] == f"{base}-v2"))


def test_every_example_is_covered() -> None:
    assert {p.name for p in JOBS.glob("*.yaml")} == set(OVERRIDES)


OVERRIDES: dict[str, list[str]] = {
    # the examples' maintenance windows are widened to the whole day (a flag overrides the file)
    "nightly-stop-idle.yaml": ["--directory-id", "{directory}", "--window", "00:00-24:00"],
    "monthly-patch-reboot.yaml": [
        "--directory-id", "{directory}", "--window", "00:00-24:00", "--wait-for-logoff", "1s"
    ],
    "reboot-unhealthy.yaml": [],
    "migrate-directory-waves.yaml": ["--directory-id", "{directory}", "--to-bundle", "{bundle}"],
    "rebuild-from-ids.yaml": [],
    "tag-backfill.yaml": ["--directory-id", "{directory}"],
    "recover-unhealthy.yaml": ["--directory-id", "{directory}"],
    # one region: the simulator's bundle and its newer image, bare, for that one scope
    "rollout-two-regions.yaml": [
        "--directory-id", "{directory}", "--bundle", "{bundle}", "--image", "{image}"
    ],
}


@pytest.mark.parametrize("name", sorted(OVERRIDES))
def test_example_job_file_runs_against_the_simulator(
    sim: Simulator, tmp_path: Path, name: str
) -> None:
    first = sim.workspace(sim.workspace_ids()[0])
    assert first is not None
    directory = first["DirectoryId"]
    bundles = {ws["BundleId"] for ws in map(sim.workspace, sim.workspace_ids()) if ws}
    bundle = sorted(bundles - {first["BundleId"]})[0]
    image = _newer_image(sim, bundle)
    extra = [a.format(directory=directory, bundle=bundle, image=image) for a in OVERRIDES[name]]
    before = sim.stats().calls_by_operation
    done = run(
        tmp_path / "jobs.db",
        "run",
        str(JOBS / name),
        "--endpoint-url",
        sim.endpoint_url,
        "--region",
        "us-east-1",
        "--yes",
        "--rate",
        "100",
        "--burst",
        "50",
        "--verify-timeout",
        "30",
        "--json",
        *extra,
    )
    assert done.returncode in (0, 1), done.stderr[-2000:]
    job = json.loads(done.stdout)
    assert job["status"] in ("succeeded", "failed"), job
    assert job["total"] == sum(job["counts"].values())
    if directory in extra:
        assert job["targets"]["directory_id"] == directory  # the flag overrode the file
    after = sim.stats().calls_by_operation
    assert sum(after.values()) > sum(before.values())  # the job really talked to the sim
    if name == "migrate-directory-waves.yaml":
        assert job["params"]["to_bundle"] == bundle
        assert job["counts"]["succeeded"] > 0
    if name == "rollout-two-regions.yaml":
        assert (job["params"]["bundle"], job["params"]["image"]) == (bundle, image)
        assert job["params"]["rollback_on_abort"] is True  # the file's
    if name == "recover-unhealthy.yaml":
        assert job["params"]["ladder"] == ["reboot", "restore", "rebuild"]
    if name == "tag-backfill.yaml":
        assert [r["region"] for r in job["regions"]] == ["us-east-1"]
        assert job["counts"]["succeeded"] > 0
