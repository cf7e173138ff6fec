"""Plan, then apply: the plan an operator reviews is the plan that runs.

``run … --plan-only`` stores the job ``planned`` with its items; ``jobs start`` runs exactly those
items and reads no DescribeWorkspaces page (every describe it makes names its WorkSpaces: that is
verification); an interactive destructive run shows its stored plan and does not plan again. Also
the exit codes of failures before anything runs: an API that fails while planning (1, with the
failed job as JSON) and a configuration that cannot work (2, one line, nothing written).
"""

from __future__ import annotations

import json
import os
import pty
import select
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fleetops_harness import base_env

from fleetops.sim import Simulator

WS = "ws-abcdefgh1"


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator(
        workspaces=120, seed=5, rate=None, transition_seconds=0.1, stale_snapshot_fraction=0.0
    ).run_in_thread() as running:
        yield running


def fleetops(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fleetops", "--db", str(tmp_path / "f.db"), "--quiet", *args],
        capture_output=True,
        text=True,
        env=base_env(tmp_path, **env),
        timeout=120,
        check=False,
    )


def at(sim: Simulator) -> list[str]:
    return ["--endpoint-url", sim.endpoint_url, "--region", sim.region]


def describes(db: Path, job_id: str, since: float = 0.0) -> tuple[int, int]:
    """The job's recorded DescribeWorkspaces calls since ``since``: (page calls, by-id calls)."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT workspace_ids FROM events WHERE job_id = ? AND operation = ? AND at >= ?",
            (job_id, "DescribeWorkspaces", since),
        ).fetchall()
    pages = sum(1 for (ids,) in rows if not ids.strip())
    return pages, len(rows) - pages


def pending(db: Path, job_id: str) -> set[str]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT workspace_id FROM items WHERE job_id = ? AND state = 'pending'", (job_id,)
        ).fetchall()
    return {ws for (ws,) in rows}


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_plan_only_then_start_runs_exactly_the_stored_plan(tmp_path: Path, sim: Simulator) -> None:
    planned = fleetops(
        tmp_path, "run", "reboot", "--state", "AVAILABLE", "--plan-only", "--json", *at(sim)
    )
    assert planned.returncode == 0, planned.stderr
    plan = json.loads(planned.stdout)
    job_id = plan["job_id"]
    # the plan names its job as every other document does, and keeps its older names
    assert (plan["id"], plan["status"], plan["planned"]) == (job_id, "planned", True)
    db = tmp_path / "f.db"
    targets = pending(db, job_id)
    assert plan["eligible"] == len(targets) > 0
    assert plan["submit_calls"] >= 1 and plan["calls_needed"] >= plan["submit_calls"]
    assert (
        json.loads(fleetops(tmp_path, "jobs", "show", job_id, "--json").stdout)["status"]
        == "planned"
    )
    plan_pages, _ = describes(db, job_id)
    assert plan_pages >= 1  # planning read the fleet page by page

    sim.reset_stats()
    started_at = time.time()
    run = fleetops(tmp_path, "jobs", "start", job_id, "--json")
    assert run.returncode == 0, run.stderr
    job = json.loads(run.stdout)
    assert job["status"] == "succeeded" and job["counts"]["succeeded"] == len(targets)
    stats = sim.stats()
    assert set(stats.calls_by_workspace["RebootWorkspaces"]) == targets
    pages, by_id = describes(db, job_id, started_at)
    assert pages == 0  # no second plan
    assert by_id >= 1 and stats.calls_by_operation["DescribeWorkspaces"] == by_id

    again = fleetops(tmp_path, "jobs", "start", job_id)
    assert again.returncode == 2
    assert "not a stored plan" in one_line(again)


def test_start_refuses_a_plan_older_than_the_limit(tmp_path: Path, sim: Simulator) -> None:
    planned = fleetops(
        tmp_path,
        "run",
        "stop",
        "--state",
        "AVAILABLE",
        "--plan-only",
        "--json",
        "--no-wait",
        *at(sim),
    )
    job_id = json.loads(planned.stdout)["job_id"]
    with sqlite3.connect(tmp_path / "f.db") as conn:
        conn.execute(
            "UPDATE jobs SET planned_at = ? WHERE id = ?", (time.time() - 5 * 3600, job_id)
        )
    sim.reset_stats()
    old = fleetops(tmp_path, "jobs", "start", job_id)
    assert old.returncode == 2
    line = one_line(old)
    assert "5.0 h old" in line and "--plan-only" in line
    assert sim.stats().total_calls == 0  # refused before any call
    bad = fleetops(tmp_path, "jobs", "start", job_id, "--max-plan-age", "0")
    assert bad.returncode == 2 and "--max-plan-age" in one_line(bad)
    allowed = fleetops(tmp_path, "jobs", "start", job_id, "--max-plan-age", "6", "--json")
    assert allowed.returncode == 0, allowed.stderr
    assert json.loads(allowed.stdout)["status"] == "succeeded"


def _interact(argv: list[str], env: dict[str, str], answer: str) -> tuple[int, str]:
    """Run ``argv`` on a terminal, answer the first question, return (exit code, output)."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: fleetops on the terminal
        os.execve(sys.executable, [sys.executable, *argv], env)
    output = b""
    answered = False
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1.0)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the terminal closed: the child exited
            break
        if not chunk:
            break
        output += chunk
        if not answered and b"?" in output.split(b"plan of job")[-1]:
            os.write(fd, answer.encode() + b"\n")
            answered = True
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), output.decode(errors="replace")


def test_a_confirmed_destructive_run_shows_its_stored_plan_and_plans_once(
    tmp_path: Path, sim: Simulator
) -> None:
    db = tmp_path / "f.db"
    select_some = ["--state", "STOPPED", "--include-connected", "--ignore-snapshot-age"]
    dry = fleetops(tmp_path, "run", "rebuild", *select_some, "--plan-only", "--json", *at(sim))
    reference = json.loads(dry.stdout)
    assert reference["eligible"] > 0
    reference_pages, _ = describes(db, reference["job_id"])
    argv = [
        "-m",
        "fleetops",
        "--db",
        str(db),
        "run",
        "rebuild",
        *select_some,
        "--no-wait",
        *at(sim),
    ]
    code, output = _interact(argv, base_env(tmp_path), "y")
    assert code == 0, output
    assert "plan of job" in output and f"{reference['eligible']} WorkSpaces will be" in output
    job_id = output.split("plan of job ")[1].split(":")[0]
    with sqlite3.connect(db) as conn:
        (status,) = conn.execute("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchone()
    assert status == "succeeded"
    pages, _ = describes(db, job_id)
    assert pages == reference_pages  # planned once, not again after the confirmation

    code, output = _interact(argv, base_env(tmp_path), "n")
    assert code == 1 and "not confirmed" in output and "jobs start" in output


def test_an_api_failing_while_planning_prints_the_failed_job(tmp_path: Path) -> None:
    with Simulator(workspaces=20, rate=None, error_rate=1.0).run_in_thread() as broken:
        for extra in ([], ["--plan-only"]):
            result = fleetops(
                tmp_path, "run", "reboot", "--state", "AVAILABLE", "--json", *extra, *at(broken)
            )
            assert result.returncode == 1, result.stderr
            job = json.loads(result.stdout)
            assert job["status"] == "failed"
            assert "DescribeWorkspaces" in job["message"] and "InternalFailure" in job["message"]


@pytest.mark.parametrize(
    ("args", "env", "needle"),
    [
        (["--endpoint-url", "http://127.0.0.1:9"], {"AWS_DEFAULT_REGION": ""}, "no AWS region"),
        (["--region", "us-east-1", "--profile", "nope"], {}, "profile 'nope'"),
        (["--region", "us-east-1"], {"AWS_PROFILE": "nope"}, "profile 'nope'"),
        (
            ["--region", "us-east-1", "--endpoint-url", "http://192.0.2.1:9"],
            {
                "AWS_ACCESS_KEY_ID": "",
                "AWS_SECRET_ACCESS_KEY": "",
                "AWS_EC2_METADATA_DISABLED": "true",
            },
            "no AWS credentials",
        ),
    ],
    ids=["no region", "unknown profile flag", "unknown AWS_PROFILE", "no credentials"],
)
def test_configuration_errors_are_one_line_exit_2_nothing_written(
    tmp_path: Path, args: list[str], env: dict[str, str], needle: str
) -> None:
    result = fleetops(tmp_path, "run", "reboot", "--workspace-id", WS, *args, **env)
    assert result.returncode == 2, result.stderr
    assert needle in one_line(result)
    assert result.stdout == ""
    assert not (tmp_path / "f.db").exists()


def test_a_dry_run_writes_nothing(tmp_path: Path, sim: Simulator) -> None:
    sim.reset_stats()
    result = fleetops(
        tmp_path, "run", "reboot", "--state", "AVAILABLE", "--dry-run", "--json", *at(sim)
    )
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["dry_run"] is True and plan["eligible"] > 0 and "job_id" not in plan
    assert sim.stats().calls_by_operation["DescribeWorkspaces"] >= 1  # it did plan
    assert not (tmp_path / "f.db").exists()
