"""The two-person rule from the command line: a plan stored with ``--require-approval`` runs only
once someone other than its planner has approved it, and then exactly as planned.

Identities are OS users as ``started_by`` records them (getpass reads ``LOGNAME`` first), so the
planner and the approver are two environments of one machine. The simulator counts every call:
a refused start makes none.
"""

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
        workspaces=60, seed=11, rate=None, transition_seconds=0.1, stale_snapshot_fraction=0.0
    ).run_in_thread() as running:
        yield running


def fleetops(
    tmp_path: Path, user: str, *args: str, input: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fleetops", "--db", str(tmp_path / "f.db"), "--quiet", *args],
        capture_output=True,
        text=True,
        env=base_env(tmp_path, LOGNAME=user, USER=user),
        timeout=120,
        input=input,
        check=False,
    )


def at(sim: Simulator) -> list[str]:
    return ["--endpoint-url", sim.endpoint_url, "--region", sim.region]


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def pending(db: Path, job_id: str) -> set[str]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT workspace_id FROM items WHERE job_id = ? AND state = 'pending'", (job_id,)
        ).fetchall()
    return {ws for (ws,) in rows}


def jobs_recorded(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        tables = conn.execute("SELECT name FROM sqlite_master WHERE name = 'jobs'").fetchall()
        return int(conn.execute("SELECT count(*) FROM jobs").fetchone()[0]) if tables else 0


def plan(tmp_path: Path, sim: Simulator, *extra: str) -> str:
    planned = fleetops(
        tmp_path, "alice", "run", "reboot", "--state", "AVAILABLE", "--plan-only", "--json",
        *extra, *at(sim),
    )  # fmt: skip
    assert planned.returncode == 0, planned.stderr
    assert "awaits approval" in planned.stderr
    return str(json.loads(planned.stdout)["job_id"])


def test_an_unapproved_plan_is_refused_then_runs_once_another_user_approves(
    tmp_path: Path, sim: Simulator
) -> None:
    job_id = plan(tmp_path, sim, "--require-approval")
    targets = pending(tmp_path / "f.db", job_id)
    assert targets
    shown = json.loads(fleetops(tmp_path, "bob", "jobs", "show", job_id, "--json").stdout)
    assert shown["started_by"] == "alice"
    assert shown["approval"] == {
        "required": True, "approved_by": None, "approved_at": None, "comment": None
    }  # fmt: skip

    sim.reset_stats()
    for command in (["jobs", "start", job_id], ["jobs", "resume", job_id]):
        refused = fleetops(tmp_path, "alice", *command, "--yes")
        assert refused.returncode == 2, refused.stderr
        assert "awaits approval" in one_line(refused)
    assert sim.stats().total_calls == 0  # no action call, no describe either

    own = fleetops(tmp_path, "alice", "jobs", "approve", job_id)
    assert own.returncode == 2
    assert "someone else" in one_line(own)
    assert json.loads(
        fleetops(tmp_path, "bob", "jobs", "show", job_id, "--json").stdout
    )["approval"]["approved_by"] is None

    approved = fleetops(tmp_path, "bob", "jobs", "approve", job_id, "--comment", "CHG-1234")
    assert approved.returncode == 0, approved.stderr
    assert "approved by bob" in approved.stdout
    text = fleetops(tmp_path, "carol", "jobs", "show", job_id)
    assert "approved by bob" in text.stdout and "CHG-1234" in text.stdout
    again = fleetops(tmp_path, "carol", "jobs", "approve", job_id)
    assert again.returncode == 2 and "already approved by bob" in one_line(again)

    run = fleetops(tmp_path, "alice", "jobs", "start", job_id, "--json")
    assert run.returncode == 0, run.stderr
    done = json.loads(run.stdout)
    assert done["status"] == "succeeded" and done["counts"]["succeeded"] == len(targets)
    assert set(sim.stats().calls_by_workspace["RebootWorkspaces"]) == targets
    assert done["approval"]["approved_by"] == "bob" and done["approval"]["approved_at"]
    assert done["approval"]["comment"] == "CHG-1234"


def test_a_plan_without_the_rule_needs_no_approval(tmp_path: Path, sim: Simulator) -> None:
    planned = fleetops(
        tmp_path, "alice", "run", "reboot", "--state", "AVAILABLE", "--plan-only", "--json",
        *at(sim),
    )  # fmt: skip
    job_id = json.loads(planned.stdout)["job_id"]
    assert json.loads(planned.stdout)["eligible"] > 0
    refused = fleetops(tmp_path, "bob", "jobs", "approve", job_id)
    assert refused.returncode == 2 and "needs no approval" in one_line(refused)
    shown = json.loads(fleetops(tmp_path, "bob", "jobs", "show", job_id, "--json").stdout)
    assert shown["approval"]["required"] is False


def test_a_job_file_can_require_approval_and_the_rule_cannot_be_run_around(
    tmp_path: Path, sim: Simulator
) -> None:
    job_file = tmp_path / "reboot.yaml"
    job_file.write_text(
        "action: reboot\ntargets: {states: [AVAILABLE]}\nrequire_approval: true\n"
    )
    sim.reset_stats()
    direct = fleetops(tmp_path, "alice", "run", str(job_file), "--yes", *at(sim))
    assert direct.returncode == 2 and "requires approval" in one_line(direct)
    assert jobs_recorded(tmp_path / "f.db") == 0  # refused before anything was written
    assert sim.stats().total_calls == 0

    planned = fleetops(
        tmp_path, "alice", "run", str(job_file), "--plan-only", "--json", *at(sim)
    )
    assert planned.returncode == 0, planned.stderr
    job_id = json.loads(planned.stdout)["job_id"]
    refused = fleetops(tmp_path, "alice", "jobs", "start", job_id)
    assert refused.returncode == 2 and "awaits approval" in one_line(refused)
    assert sim.stats().calls_by_operation.get("RebootWorkspaces", 0) == 0
