"""WorkSpaces locked across jobs: two ``fleetops`` runs over overlapping WorkSpaces, on SQLite
and on PostgreSQL. The second job's plan is stored while every WorkSpace is AVAILABLE, then run
while the first job is rebooting the shared ones: its items for them wait until the first job
has verified them, then reboot them — never while the first job's reboot is in flight or being
verified (a reboot sent to a REBOOTING WorkSpace would fail)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest
from fleetops_harness import base_env, wait_until

from fleetops.sim import Simulator

REGION = "us-east-1"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield str(tmp_path / "jobs.db")
        return
    postgres_db = request.getfixturevalue("postgres_db")  # skips without a server
    yield postgres_db


def query(db: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    if db.startswith("postgresql"):
        with psycopg.connect(db) as conn:
            return list(conn.execute(sql.replace("?", "%s"), params).fetchall())
    conn = sqlite3.connect(db, timeout=10)
    try:
        return list(conn.execute(sql, params).fetchall())
    finally:
        conn.close()


def fleetops(db: str, tmp_path: Path, *args: str, **popen: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "fleetops", "--db", db, "-v", *args],
        env=base_env(tmp_path),
        text=True,
        stdin=subprocess.DEVNULL,
        **popen,
    )


def workspace_ids(sim: Simulator) -> list[str]:
    client = boto3.client(
        "workspaces",
        endpoint_url=sim.endpoint_url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    found: list[str] = []
    for page in client.get_paginator("describe_workspaces").paginate():
        found += [w["WorkspaceId"] for w in page["Workspaces"] if w["State"] == "AVAILABLE"]
    return sorted(found)


def test_a_workspace_busy_in_another_job_waits_for_it(db_url: str, tmp_path: Path) -> None:
    # Transitions of ten minutes, ended by moving the simulator's clock once the second job (a
    # new process, however slow to start) has found the first job's WorkSpaces busy: they are
    # still being verified when it reaches them.
    with Simulator(
        workspaces=80, seed=21, rate=20, burst=10, transition_seconds=600.0, connected_fraction=0.0
    ).run_in_thread() as sim:
        ids = workspace_ids(sim)[:40]
        first_ids, second_ids = ids[:30], ids[10:]
        shared = set(first_ids) & set(second_ids)
        where = ["--endpoint-url", sim.endpoint_url, "--region", REGION, "--rate", "20"]

        def ids_args(chosen: list[str]) -> list[str]:
            return [arg for ws in chosen for arg in ("--workspace-id", ws)]

        # The second job's plan, stored while every WorkSpace is AVAILABLE.
        planned = subprocess.run(
            [
                *(sys.executable, "-m", "fleetops", "--db", db_url, "run", "reboot"),
                *ids_args(second_ids),
                *(*where, "--plan-only", "--json"),
            ],
            env=base_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert planned.returncode == 0, planned.stderr[-2000:]
        second = query(db_url, "SELECT id FROM jobs")[0][0]

        first_log = (tmp_path / "first.err").open("w")
        first = fleetops(
            db_url, tmp_path, "run", "reboot", *ids_args(first_ids), *where, stderr=first_log
        )

        def first_is_verifying() -> bool:
            rows = query(db_url, "SELECT count(*) FROM items WHERE state = 'submitted'")
            return bool(rows[0][0])

        wait_until(first_is_verifying, timeout=60, interval=0.05, what="the first job's reboots")
        first_id = next(j for (j,) in query(db_url, "SELECT id FROM jobs") if j != second)
        second_err = tmp_path / "second.err"
        with second_err.open("w") as second_log:
            second_run = fleetops(db_url, tmp_path, "jobs", "start", second, stderr=second_log)
        try:
            wait_until(
                lambda: f"busy in job {first_id}: waiting" in second_err.read_text(),
                timeout=120,
                interval=0.05,
                what="the second job to find the first job's WorkSpaces busy",
            )
            sim.configure(transition_seconds=0.5)  # the reboots sent from now on are quick
            sim.advance(2 * 600.0)  # every reboot sent so far ends (jitter is within ±25 %)
            assert first.wait(timeout=120) == 0
            first_log.close()
            second_code = second_run.wait(timeout=180)
        finally:
            for proc in (first, second_run):
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(timeout=10)
        reboots = sim.stats().calls_by_workspace.get("RebootWorkspaces", {})

    assert second_code == 0, second_err.read_text()[-3000:]
    assert f"busy in job {first_id}: waiting" in second_err.read_text()  # it did wait
    done = dict(
        query(
            db_url,
            "SELECT workspace_id, updated_at FROM items WHERE job_id = ? AND state = 'succeeded'",
            first_id,
        )
    )
    sent = {
        ws: (state, submitted_at)
        for ws, state, submitted_at in query(
            db_url, "SELECT workspace_id, state, submitted_at FROM items WHERE job_id = ?", second
        )
    }
    assert set(done) == set(first_ids)  # the first job was never in the way of itself
    for ws in shared:
        state, submitted_at = sent[ws]
        assert state == "succeeded", (ws, state)
        # Sent only once the first job had verified its reboot: one job at a time.
        assert submitted_at >= done[ws], ws
        assert reboots[ws] == 2
    assert all(sent[ws][0] == "succeeded" for ws in second_ids)
