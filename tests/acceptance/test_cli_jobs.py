"""``fleetops jobs …`` as an operator runs it: output (text and JSON), files written, exit codes.

The commands run through typer's CliRunner on a small app that mounts ``jobs_app`` the way
``fleetops.cli.main`` does; the database is a real migrated SQLite file filled through the Store.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from fleetops.cli.jobs import jobs_app, parse_since, parse_states
from fleetops.errors import UsageError
from fleetops.records import EventRow, NewJob
from fleetops.states import ItemState, JobStatus
from fleetops.store import Store

T0 = 1_780_000_000.0  # 2026-05-28 20:26:40Z

app = typer.Typer()


@app.callback()
def _root() -> None:
    """fleetops (test mount)."""


app.add_typer(jobs_app, name="jobs")


@dataclass
class Fleet:
    db: Path
    reboot: str  # failed: 50 succeeded, 4 failed, 6 skipped, 2 in doubt
    stop: str  # interrupted, 5 pending, 1 in flight
    tag: str  # succeeded, two regions


def _row(job_id: str, n: int, state: ItemState, region: str = "us-east-1") -> dict[str, Any]:
    failed = state is ItemState.FAILED
    code = ("InvalidResourceStateException", "ResourceNotFoundException")[n % 2] if failed else None
    return {
        "job_id": job_id,
        "workspace_id": f"ws-{n:09d}",
        "region": region,
        "state": state.value,
        "attempts": 1,
        "seen_state": "AVAILABLE",
        "last_state": "AVAILABLE" if state is ItemState.IN_DOUBT else None,
        "user_name": f"user{n}",
        "error_code": code,
        "error_message": f"WorkSpace ws-{n:09d} is in an invalid state" if failed else None,
        "reason": (
            "state STOPPED is not eligible"
            if state is ItemState.SKIPPED
            else "no evidence of rebuild"
            if state is ItemState.IN_DOUBT
            else None
        ),
        "updated_at": T0 + 60,
    }


async def _seed(db: Path) -> Fleet:
    store = await Store.open(db)
    try:
        ids = []
        plan = [
            (
                "reboot",
                JobStatus.FAILED,
                {
                    ItemState.SUCCEEDED: 50,
                    ItemState.FAILED: 4,
                    ItemState.SKIPPED: 6,
                    ItemState.IN_DOUBT: 2,
                },
            ),
            ("stop", JobStatus.INTERRUPTED, {ItemState.PENDING: 5, ItemState.IN_FLIGHT: 1}),
            ("tag", JobStatus.SUCCEEDED, {ItemState.SUCCEEDED: 4}),
        ]
        for offset, (action, status, states) in enumerate(plan):
            job = await store.create_job(
                NewJob(
                    action=action,
                    params={"set": {"team": "a"}} if action == "tag" else {},
                    targets={"directory_id": "d-1234567890"},
                    options={"rate": 2.0},
                    region="us-east-1",
                )
            )
            rows = []
            n = 0
            for state, count in states.items():
                for _ in range(count):
                    n += 1
                    region = "eu-west-1" if action == "tag" and n % 2 else "us-east-1"
                    rows.append(_row(job.id, n, state, region))
            await store.add_items(rows)
            created = T0 + offset * 3600
            await store.update_job(
                job.id,
                status=status,
                created_at=created,
                planned_at=created + 2,
                started_at=created + 5,
                finished_at=None if status is JobStatus.INTERRUPTED else created + 105,
            )
            ids.append(job.id)
        writer = store.writer()
        writer.close()
        await writer.write(
            [],
            [
                EventRow(
                    ids[0],
                    "us-east-1",
                    "RebootWorkspaces",
                    ["ws-000000001"],
                    "ok",
                    None,
                    "r1",
                    3,
                    80,
                )
            ],
        )
        return Fleet(db, *ids)
    finally:
        await store.close()


@pytest.fixture
def fleet(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> Fleet:
    monkeypatch.setenv("FLEETOPS_DB", str(db_path))
    monkeypatch.setenv("COLUMNS", "100")
    return asyncio.run(_seed(db_path))


@pytest.fixture
def runner() -> Iterator[CliRunner]:
    yield CliRunner()


def _json(result: Any) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# -- jobs list -----------------------------------------------------------------------------------


def test_list_table_newest_first(runner: CliRunner, fleet: Fleet) -> None:
    result = runner.invoke(app, ["jobs", "list"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    order = [job for line in lines for job in (fleet.tag, fleet.stop, fleet.reboot) if job in line]
    assert order == [fleet.tag, fleet.stop, fleet.reboot]
    reboot_line = next(line for line in lines if fleet.reboot in line)
    assert reboot_line.split()[1:8] == ["reboot", "failed", "62", "50", "4", "6", "2"]
    assert "2026-05-28 20:26" in reboot_line and "1m 40s" in reboot_line


def test_list_json_filters(runner: CliRunner, fleet: Fleet) -> None:
    every = _json(runner.invoke(app, ["jobs", "list", "--json"]))
    assert [job["id"] for job in every] == [fleet.tag, fleet.stop, fleet.reboot]
    assert every[2]["counts"]["in_doubt"] == 2 and every[2]["total"] == 62
    failed = _json(runner.invoke(app, ["jobs", "list", "--status", "failed", "--json"]))
    assert [job["id"] for job in failed] == [fleet.reboot]
    stops = _json(runner.invoke(app, ["jobs", "list", "--action", "stop", "--json"]))
    assert [job["id"] for job in stops] == [fleet.stop]
    one = _json(runner.invoke(app, ["jobs", "list", "--limit", "1", "--json"]))
    assert [job["id"] for job in one] == [fleet.tag]
    since = _json(runner.invoke(app, ["jobs", "list", "--since", "2026-05-28T21:00:00Z", "--json"]))
    assert [job["id"] for job in since] == [fleet.tag, fleet.stop]
    recent = _json(runner.invoke(app, ["jobs", "list", "--since", "2h", "--json"]))
    assert recent == []  # T0 is long ago (or far ahead) of now: nothing in the last two hours


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--status", "exploded"], "unknown job status 'exploded'"),
        (["--since", "yesterday"], "--since 'yesterday'"),
        (["--limit", "0"], "--limit must be at least 1"),
    ],
)
def test_list_bad_values_are_one_line_exit_2(
    runner: CliRunner, fleet: Fleet, args: list[str], message: str
) -> None:
    result = runner.invoke(app, ["jobs", "list", *args])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_read_commands_never_create_a_database(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "nothing-here" / "fleetops.db"
    monkeypatch.setenv("FLEETOPS_DB", str(missing))
    for args in (
        ["list"],
        ["show", "j1"],
        ["items", "j1"],
        ["export", "j1", "--format", "csv"],
        ["cancel", "j1"],
    ):
        result = runner.invoke(app, ["jobs", *args])
        assert result.exit_code == 2, args
        assert "no fleetops database" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert not missing.exists() and not missing.parent.exists()


# -- jobs show -----------------------------------------------------------------------------------


def test_show_json_is_the_documented_shape(runner: CliRunner, fleet: Fleet) -> None:
    data = _json(runner.invoke(app, ["jobs", "show", fleet.reboot, "--json"]))
    assert list(data)[:12] == [
        "id",
        "action",
        "status",
        "total",
        "counts",
        "region",
        "endpoint_url",
        "params",
        "targets",
        "created_at",
        "started_at",
        "finished_at",
    ]
    assert data["counts"] == {
        "pending": 0,
        "in_flight": 0,
        "submitted": 0,
        "succeeded": 50,
        "failed": 4,
        "skipped": 6,
        "in_doubt": 2,
        "cancelled": 0,
    }
    assert data["created_at"] == "2026-05-28T20:26:40.000Z"
    assert data["finished_at"] == "2026-05-28T20:28:25.000Z"
    assert {g["code"]: g["count"] for g in data["errors"]} == {
        "InvalidResourceStateException": 2,
        "ResourceNotFoundException": 2,
    }
    assert len(data["in_doubt"]) == 2
    assert data["durations"]["run_s"] == 100.0 and data["durations"]["succeeded_per_s"] == 0.5
    assert data["api_calls"]["retries"] == 2


def test_show_text_tells_the_story(runner: CliRunner, fleet: Fleet) -> None:
    result = runner.invoke(app, ["jobs", "show", fleet.reboot[:-2]])  # a unique prefix
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"job {fleet.reboot}" in out
    assert "62: 50 succeeded · 4 failed · 6 skipped · 2 in doubt" in out
    assert "ran 1m 40s" in out and "0.50 succeeded/s" in out
    assert "InvalidResourceStateException" in out and "ws-000000051" in out
    assert "state STOPPED is not eligible" in out
    assert "in doubt" in out and "ws-000000061" in out
    assert "RebootWorkspaces" in out
    assert max(len(line) for line in out.splitlines()) <= 100


def test_show_unknown_job_exit_2(runner: CliRunner, fleet: Fleet) -> None:
    result = runner.invoke(app, ["jobs", "show", "jnope", "--json"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "no job 'jnope'" in result.stderr


# -- jobs items ----------------------------------------------------------------------------------


def test_items_filtered_by_state(runner: CliRunner, fleet: Fleet) -> None:
    data = _json(runner.invoke(app, ["jobs", "items", fleet.reboot, "--state", "failed", "--json"]))
    assert len(data) == 4 and {item["state"] for item in data} == {"failed"}
    assert data[0]["error_code"] in {"InvalidResourceStateException", "ResourceNotFoundException"}
    both = _json(
        runner.invoke(app, ["jobs", "items", fleet.reboot, "--state", "FAILED,in-doubt", "--json"])
    )
    assert len(both) == 6
    every = _json(runner.invoke(app, ["jobs", "items", fleet.reboot, "--limit", "0", "--json"]))
    assert len(every) == 62


def test_items_table_says_when_it_shows_only_some(runner: CliRunner, fleet: Fleet) -> None:
    result = runner.invoke(app, ["jobs", "items", fleet.reboot, "--limit", "5"])
    assert result.exit_code == 0, result.output
    assert "first 5 of 62 items" in result.stdout
    assert "REGION" not in result.stdout  # one region: no column for it
    two = runner.invoke(app, ["jobs", "items", fleet.tag])
    assert "REGION" in two.stdout and "eu-west-1" in two.stdout


def test_items_unknown_state_exit_2(runner: CliRunner, fleet: Fleet) -> None:
    result = runner.invoke(app, ["jobs", "items", fleet.reboot, "--state", "exploded"])
    assert result.exit_code == 2 and "unknown item state 'exploded'" in result.stderr


# -- jobs export ---------------------------------------------------------------------------------


def test_export_csv_to_stdout(runner: CliRunner, fleet: Fleet) -> None:
    result = runner.invoke(app, ["jobs", "export", fleet.reboot, "--format", "csv"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == 62
    assert sum(row["state"] == "failed" for row in rows) == 4


def test_export_json_to_a_file(runner: CliRunner, fleet: Fleet, tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    result = runner.invoke(
        app, ["jobs", "export", fleet.tag, "--format", "json", "-o", str(target)]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert f"exported 4 items of job {fleet.tag}" in result.stderr
    data = json.loads(target.read_text())
    assert sorted(item["region"] for item in data) == ["eu-west-1"] * 2 + ["us-east-1"] * 2
    assert not (tmp_path / "out.json.partial").exists()


def test_export_bad_format_exit_2(runner: CliRunner, fleet: Fleet) -> None:
    result = runner.invoke(app, ["jobs", "export", fleet.tag, "--format", "xml"])
    assert result.exit_code == 2 and "--format must be csv or json" in result.stderr


# -- jobs cancel ---------------------------------------------------------------------------------


def test_cancel_an_interrupted_job(runner: CliRunner, fleet: Fleet) -> None:
    result = runner.invoke(app, ["jobs", "cancel", fleet.stop])
    assert result.exit_code == 0, result.output
    assert f"cancelled job {fleet.stop}: 5 pending items cancelled" in result.stdout
    assert "1 in flight" in result.stdout
    data = _json(runner.invoke(app, ["jobs", "show", fleet.stop, "--json"]))
    assert data["status"] == "cancelled"
    assert (data["counts"]["cancelled"], data["counts"]["pending"]) == (5, 0)
    again = runner.invoke(app, ["jobs", "cancel", fleet.stop])
    assert again.exit_code == 0 and "already cancelled" in again.stderr


def test_cancel_refuses_a_running_job(runner: CliRunner, fleet: Fleet) -> None:
    async def hold() -> None:
        store = await Store.open(fleet.db)
        try:
            await store.update_job(fleet.stop, status=JobStatus.RUNNING)
            owner = f"{socket.gethostname()}:{os.getppid()}:live"
            assert await store.acquire_lease(fleet.stop, owner, 60) is None
        finally:
            await store.close()

    asyncio.run(hold())
    result = runner.invoke(app, ["jobs", "cancel", fleet.stop])
    assert result.exit_code == 1
    assert f"job {fleet.stop} is running" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    data = _json(runner.invoke(app, ["jobs", "show", fleet.stop, "--json"]))
    assert data["status"] == "running" and data["counts"]["pending"] == 5


def test_cancel_a_finished_job_exit_1(runner: CliRunner, fleet: Fleet) -> None:
    result = runner.invoke(app, ["jobs", "cancel", fleet.tag])
    assert result.exit_code == 1 and "already finished (succeeded)" in result.stderr


# -- flag parsing --------------------------------------------------------------------------------


def test_parse_since_forms() -> None:
    now = time.time()
    assert parse_since("2h", now=now) == pytest.approx(now - 7200)
    assert parse_since("7d", now=now) == pytest.approx(now - 7 * 86400)
    assert parse_since("30M", now=now) == pytest.approx(now - 1800)
    assert parse_since("2026-05-28") == 1_779_926_400.0
    assert parse_since("2026-05-28T22:26:40+02:00") == T0
    with pytest.raises(UsageError):
        parse_since("-2h")


def test_parse_states_forms() -> None:
    assert parse_states(None) is None
    assert parse_states(["failed,In-Doubt", "failed"]) == [ItemState.FAILED, ItemState.IN_DOUBT]
    with pytest.raises(UsageError, match="unknown item state"):
        parse_states(["done"])
