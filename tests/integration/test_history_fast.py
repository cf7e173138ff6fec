"""``jobs show`` without SQLAlchemy answers exactly what the Store answers: real jobs run through
the engine against two simulated regions (failures by code, skips by reason, successes never
verified, retried calls, per-region groups, items in doubt), their history read both ways."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
import typer
from fleetops_harness import base_env
from typer.testing import CliRunner

from fleetops.api import JobSpec, create_job, plan_job, run_job
from fleetops.aws.client import Connection
from fleetops.catalogue.options import JobOptions
from fleetops.catalogue.targets import Targets
from fleetops.cli.jobs import jobs_app
from fleetops.records import ItemUpdate
from fleetops.report.text import history_json
from fleetops.sim import Simulator
from fleetops.states import ItemState
from fleetops.store import Store, history_read, readonly
from fleetops.store import history as store_history
from fleetops.store.readonly import open_reader
from fleetops.store.repo import apply_updates

NOW = 1_900_000_000.0  # a fixed "now" for a job still running (durations run until now)


@pytest.fixture
async def regions() -> AsyncIterator[tuple[Simulator, Simulator]]:
    async with (
        Simulator(
            workspaces=60,
            seed=11,
            region="us-east-1",
            rate=None,
            error_rate=0.05,
            item_failure_rate=0.15,
            transition_seconds=0.01,  # over before the first poll: unverified
        ) as east,
        Simulator(
            workspaces=40,
            seed=12,
            region="eu-west-1",
            rate=None,
            stuck_reboot_rate=0.2,  # never come back in time: failed by verification
            transition_seconds=0.2,
        ) as west,
    ):
        yield east, west


def spec(east: Simulator, west: Simulator | None, action: str = "reboot") -> JobSpec:
    return JobSpec(
        action=action,
        targets=Targets(),
        connection=Connection("us-east-1", None, east.endpoint_url),
        more_regions=(Connection("eu-west-1", None, west.endpoint_url),) if west else (),
        options=JobOptions(rate=None, verify_timeout=1.5),
    )


async def both_ways(store: Store, url: str, job_id: str) -> tuple[Any, Any]:
    """The job's ``jobs show --json`` document from the Store and from the reader."""
    record = await store.get_job(job_id)
    theirs = history_json(await store_history.job_history(store, record, now=NOW))
    reader = open_reader(url)
    assert reader is not None, "the reader stepped aside for a database at this schema"
    with reader:
        mine = history_json(history_read.job_history(reader, reader.get_job(job_id), now=NOW))
    return mine, theirs


async def test_the_reader_shows_what_the_store_shows(
    regions: tuple[Simulator, Simulator], db_url: str
) -> None:
    east, west = regions
    store = await Store.open(db_url)
    try:
        wide = await run_job(store, (await create_job(store, spec(east, west))).id)
        narrow = await run_job(store, (await create_job(store, spec(east, None, "stop"))).id)
        doubtful = await create_job(store, spec(east, None, "start"))
        await plan_job(store, doubtful.id)
        pending = await store.items_page(doubtful.id, states=[ItemState.PENDING], limit=4)
        async with store.transaction() as conn:  # as a runner that lost its answers leaves them
            update = ItemUpdate([i.id for i in pending], ItemState.IN_DOUBT, reason="no answer")
            await apply_updates(conn, [update], [])
        jobs = {"wide": wide.id, "narrow": narrow.id, "doubtful": doubtful.id}
        shown = {}
        for name, job_id in jobs.items():
            mine, theirs = await both_ways(store, db_url, job_id)
            assert mine == theirs, name
            shown[name] = mine
    finally:
        await store.close()
    # The documents compared hold every part of the history, so the comparison means something.
    data = shown["wide"]
    assert data["counts"]["failed"] and data["errors"], "the run had failures"
    assert {group["code"] for group in data["errors"]} >= {"VerifyTimeout"}
    assert all(1 <= len(g["examples"]) <= 3 for g in data["errors"])
    assert data["counts"]["skipped"] and data["skipped_reasons"], "the run skipped WorkSpaces"
    assert data["unverified"] and len(data["unverified_examples"]) <= 3, "successes unverified"
    assert {s["region"] for s in data["scopes"]} == {"us-east-1", "eu-west-1"}
    assert data["api_calls"]["retries"], "the simulator's errors were retried"
    assert data["durations"]["run_s"] is not None
    assert shown["narrow"]["api_calls"]["total"] and "scopes" not in shown["narrow"]
    assert len(shown["doubtful"]["in_doubt"]) == len(pending) == 4
    assert shown["doubtful"]["durations"]["run_s"] is None


async def test_jobs_show_prints_the_store_answer(
    regions: tuple[Simulator, Simulator], tmp_path: Path
) -> None:
    """Through the command: ``jobs show --json`` of a finished job is the Store's document."""
    east, west = regions
    db = tmp_path / "show.db"
    store = await Store.open(db)
    try:
        job = await run_job(store, (await create_job(store, spec(east, west))).id)
        expected = history_json(await store_history.job_history(store, job))
    finally:
        await store.close()
    done = subprocess.run(
        [sys.executable, "-m", "fleetops", "--db", str(db), "jobs", "show", job.id, "--json"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "100"},
        timeout=60,
        check=True,
    )
    assert json.loads(done.stdout) == expected
    assert expected["errors"] and expected["unverified"] and expected["scopes"]


def test_final_json_and_jobs_list_count_the_unverified(tmp_path: Path) -> None:
    """``run --json`` and ``jobs start --json`` end on the job with its ``unverified`` count, the
    one ``jobs show --json`` and ``jobs list --json`` give."""
    db = str(tmp_path / "f.db")

    def fleetops(*args: str) -> Any:
        done = subprocess.run(
            [sys.executable, "-m", "fleetops", "--db", db, "--quiet", *args],
            capture_output=True,
            text=True,
            env=base_env(tmp_path),
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    # Reboots over in 10 ms, before the first poll: succeeded, but never seen to happen.
    with Simulator(
        workspaces=24, seed=3, rate=None, transition_seconds=0.01
    ).run_in_thread() as sim:
        at = ["--endpoint-url", sim.endpoint_url, "--region", sim.region]
        available = [w for w in sim.workspace_ids() if sim.workspace(w)["State"] == "AVAILABLE"]
        common = ["reboot", "--include-connected", "--verify-timeout", "1.5", "--json", *at]
        first, second = (
            [arg for w in available[k : k + 6] for arg in ("--workspace-id", w)] for k in (0, 6)
        )
        ran = fleetops("run", *common, *first)
        planned = fleetops("run", *common, *second, "--plan-only")
        started = fleetops("jobs", "start", planned["job_id"], "--json")
    listed = {job["id"]: job for job in fleetops("jobs", "list", "--json")}
    for final in (ran, started):
        shown = fleetops("jobs", "show", final["id"], "--json")
        assert final["unverified"] == shown["unverified"] == listed[final["id"]]["unverified"]
        assert 0 < final["unverified"] <= final["counts"]["succeeded"]


async def test_every_history_command_prints_what_the_store_path_prints(
    regions: tuple[Simulator, Simulator], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """show, items and export (tables, JSON, CSV, a file) read through the reader print exactly
    what they print when the database is at an older schema (brought up to date by the store
    first, then read)."""
    east, west = regions
    db = tmp_path / "cmp.db"
    store = await Store.open(db)
    try:
        job = await run_job(store, (await create_job(store, spec(east, west))).id)
    finally:
        await store.close()
    app = typer.Typer()
    app.add_typer(jobs_app, name="jobs")
    monkeypatch.setenv("FLEETOPS_DB", str(db))
    commands = [
        ["show", job.id],
        ["show", job.id[:-2], "--json"],
        ["items", job.id],
        ["items", job.id, "--state", "failed,skipped", "--limit", "5"],
        ["items", job.id, "--limit", "0", "--json"],
        ["items", job.id, "--limit", "0"],
        ["items", job.id, "--account", "123456789012"],
        ["items", job.id, "--account", "123456789012", "--json"],
        ["export", job.id, "--format", "csv"],
        ["export", job.id, "--format", "json"],
        ["show", "jnope"],
        ["items", "jnope"],
        ["export", "jnope", "--format", "csv"],
    ]

    def outputs() -> list[tuple[int, str, str]]:
        runner = CliRunner()
        found = []
        for argv in commands:
            done = runner.invoke(app, ["jobs", *argv], env={"COLUMNS": "120"})
            found.append((done.exit_code, done.stdout, done.stderr))
        out = tmp_path / "items.csv"
        done = runner.invoke(app, ["jobs", "export", job.id, "--format", "csv", "-o", str(out)])
        found.append((done.exit_code, out.read_text(), done.stderr))
        return found

    # In a thread: the Store path runs its own event loop, as the command does.
    read = await anyio.to_thread.run_sync(outputs)
    reader_for = readonly.open_reader
    asked: list[str] = []

    def older_schema_once(where: str) -> Any:
        """As for a database at an older schema: the reader refuses it until the store has
        brought it up to date (which every command has it do first), then reads it."""
        asked.append(where)
        return None if len(asked) % 2 else reader_for(where)

    with monkeypatch.context() as patched:
        patched.setattr(readonly, "open_reader", older_schema_once)
        stored = await anyio.to_thread.run_sync(outputs)
    assert len(asked) >= 2 * len(commands), "the store's way in was not taken by every command"
    assert read == stored
    assert [code for code, _, _ in read] == [0] * 10 + [2] * 3 + [0]
    assert len(json.loads(read[4][1])) == len(list(csv.reader(io.StringIO(read[8][1])))) - 1
    codes = [group["code"] for group in json.loads(read[1][1])["errors"]]
    assert codes and all(code in read[0][1] for code in codes)  # the table names every code
    assert "first 5 of" in read[3][1]  # more failed and skipped items than shown
