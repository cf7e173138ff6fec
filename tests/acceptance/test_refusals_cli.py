"""The operator's view of refusals and standbys: a plan made with ``--plan-only``, five of its
WorkSpaces stopped behind fleetops's back, then ``jobs start``: the five are skipped with the
state they are in now and the job exits 0; ``--include-standby`` lets a selector pick a standby."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fleetops_harness import base_env

from fleetops.sim import Simulator


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator(
        workspaces=80, seed=7, rate=None, transition_seconds=0.1, standbys=2
    ).run_in_thread() as running:
        yield running


def fleetops(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fleetops", "--db", str(tmp_path / "f.db"), "--quiet", *args],
        capture_output=True,
        text=True,
        env=base_env(tmp_path),
        timeout=120,
        check=False,
    )


def at(sim: Simulator) -> list[str]:
    return ["--endpoint-url", sim.endpoint_url, "--region", sim.region]


def items(db: Path, job_id: str) -> dict[str, tuple[str, str | None, str | None]]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT workspace_id, state, reason, error_code FROM items WHERE job_id = ?",
            (job_id,),
        ).fetchall()
    return {ws: (state, reason, code) for ws, state, reason, code in rows}


def test_plan_then_five_stopped_behind_its_back_are_skipped(tmp_path: Path, sim: Simulator) -> None:
    planned = fleetops(
        tmp_path,
        "run",
        "reboot",
        "--state",
        "AVAILABLE",
        "--include-connected",
        "--plan-only",
        "--json",
        *at(sim),
    )
    assert planned.returncode == 0, planned.stderr
    job_id = json.loads(planned.stdout)["job_id"]
    db = tmp_path / "f.db"
    pending = sorted(ws for ws, (state, _, _) in items(db, job_id).items() if state == "pending")
    assert len(pending) > 10
    stopped = pending[:5]
    for ws_id in stopped:
        sim.set_state(ws_id, "STOPPED")
    sim.reset_stats()
    run = fleetops(tmp_path, "jobs", "start", job_id, "--yes", "--json")
    assert run.returncode == 0, run.stderr
    job = json.loads(run.stdout.splitlines()[-1])
    assert job["status"] == "succeeded"
    assert job["counts"]["failed"] == 0
    assert job["counts"]["succeeded"] == len(pending) - 5
    after = items(db, job_id)
    assert {after[ws] for ws in stopped} == {
        ("skipped", "state changed since the plan (now STOPPED)", None)
    }


def test_include_standby_lets_a_selector_pick_standbys(tmp_path: Path, sim: Simulator) -> None:
    standbys = []
    for ws_id in sim.workspace_ids():
        ws = sim.workspace(ws_id)
        assert ws is not None
        if any(r["Type"] == "PRIMARY" for r in ws.get("RelatedWorkspaces", [])):
            standbys.append(ws_id)
    assert len(standbys) == 2
    plain = fleetops(
        tmp_path, "run", "start", "--state", "STOPPED", "--dry-run", "--json", *at(sim)
    )
    assert plain.returncode == 0, plain.stderr
    skipped = json.loads(plain.stdout)["skipped"]
    assert sum(n for reason, n in skipped.items() if reason.startswith("standby of ")) == 2
    both = fleetops(
        tmp_path,
        "run",
        "start",
        "--state",
        "STOPPED",
        "--include-standby",
        "--dry-run",
        "--json",
        *at(sim),
    )
    assert both.returncode == 0, both.stderr
    assert not any(r.startswith("standby") for r in json.loads(both.stdout)["skipped"])
    assert json.loads(both.stdout)["eligible"] == json.loads(plain.stdout)["eligible"] + 2
