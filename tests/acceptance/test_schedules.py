"""``fleetops schedule …`` as a subprocess against the simulator over HTTP and a SQLite file
migrated by alembic: two ``run-due`` at once start a due slot once, the job it starts runs to
its end, and bad input is one line, exit 2, nothing written."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from fleetops_harness import Cli, Db

from fleetops import api
from fleetops.catalogue.specs import Where
from fleetops.sim import Simulator
from fleetops.store import Store

REGION = "us-east-1"


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(
        workspaces=30, seed=5, rate=None, transition_seconds=0.1, stale_snapshot_fraction=0.0
    ).run_in_thread() as running:
        yield running


def job_file(tmp_path: Path, workspace_ids: list[str]) -> Path:
    path = tmp_path / "patch-reboot.yaml"
    ids = "".join(f"    - {ws}\n" for ws in workspace_ids)
    path.write_text(
        "action: reboot\n"
        f"targets:\n  workspace_ids:\n{ids}"
        "options:\n  rate: 100\n  burst: 50\n  verify_timeout: 30\n"
        f"region: {REGION}\n"
    )
    return path


def add_due_schedule(db: Path, name: str, path: Path, endpoint: str) -> None:
    """A daily schedule whose slot was ten minutes ago, added an hour ago: due now, once."""
    slot = time.gmtime(time.time() - 600)

    async def add() -> None:
        store = await Store.open(db)
        try:
            await api.add_schedule(
                store,
                name,
                str(path),
                cron=f"{slot.tm_min} {slot.tm_hour} * * *",
                where=Where(endpoint_url=(endpoint,)),
                now=time.time() - 3600,
            )
        finally:
            await store.close()

    anyio.run(add)


def test_two_run_due_at_once_start_one_job(
    cli: Cli, db: Db, sim: Simulator, tmp_path: Path
) -> None:
    targets = [ws for ws in sim.workspace_ids() if sim.workspace(ws)["State"] == "AVAILABLE"][:5]
    add_due_schedule(cli.db, "patch", job_file(tmp_path, targets), sim.endpoint_url)
    first = cli.spawn("--quiet", "schedule", "run-due", "--json")
    second = cli.spawn("--quiet", "schedule", "run-due", "--json")
    assert first.wait(120) == 0, first.stderr
    assert second.wait(120) == 0, second.stderr
    documents = [json.loads(first.stdout), json.loads(second.stdout)]
    started = [job for document in documents for job in document["jobs"]]
    assert len(started) == 1, documents
    assert started[0]["schedule"] == "patch" and started[0]["status"] == "succeeded"
    rows = db.query("SELECT id, started_by, status FROM jobs")
    assert rows == [(started[0]["job_id"], "schedule:patch", "succeeded")]
    assert db.counts(started[0]["job_id"])["succeeded"] == 5
    # each WorkSpace rebooted once: by one job, not one per run-due
    reboots = sim.stats().calls_by_workspace.get("RebootWorkspaces", {})
    assert reboots == dict.fromkeys(targets, 1)
    # a third run-due in the same minute: the slot is taken, nothing starts
    again = cli.run("--quiet", "schedule", "run-due", "--json")
    assert again.code == 0 and again.json() == {"jobs": [], "missed": []}
    listed = cli.run("schedule", "list", "--json").json()["schedules"]
    assert [(s["name"], s["last_job_id"], s["paused"]) for s in listed] == [
        ("patch", started[0]["job_id"], False)
    ]
    assert listed[0]["next_run_at"].endswith("Z")


def test_schedule_commands_from_add_to_remove(cli: Cli, tmp_path: Path) -> None:
    path = job_file(tmp_path, ["ws-0000000001"])
    added = cli.run(
        "schedule", "add", "patch", str(path), "--cron", "0 3 * * SUN",
        "--timezone", "Europe/Berlin", "--catch-up", "2h", "--json",
    )  # fmt: skip
    assert added.code == 0, added.stderr
    shown = added.json()
    assert (shown["cron"], shown["timezone"], shown["catch_up"]) == (
        "0 3 * * SUN",
        "Europe/Berlin",
        "2h",
    )
    # 03:00 in Berlin on a Sunday is 02:00 UTC in winter
    assert shown["next_run_at"].endswith("T02:00:00.000Z")
    table = cli.run("schedule", "list")
    assert "patch" in table.stdout and "0 3 * * SUN" in table.stdout
    assert cli.run("schedule", "pause", "patch").code == 0
    assert cli.run("schedule", "list", "--json").json()["schedules"][0]["paused"] is True
    assert "paused" in cli.run("schedule", "list").stdout
    assert cli.run("schedule", "resume", "patch").code == 0
    assert cli.run("schedule", "list", "--json").json()["schedules"][0]["paused"] is False
    taken = cli.run("schedule", "add", "patch", str(path), "--cron", "0 4 * * *")
    assert taken.code == 2 and "exists" in taken.stderr
    assert cli.run("schedule", "remove", "patch").code == 0
    assert cli.run("schedule", "list", "--json").json() == {"schedules": []}
    gone = cli.run("schedule", "remove", "patch")
    assert gone.code == 2 and "no schedule 'patch'" in gone.stderr


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--cron", "0 3 * *"], "five fields"),
        (["--cron", "0 25 * * *"], "does not parse"),
        (["--cron", "0 3 * * *", "--timezone", "Europe/Atlantis"], "unknown time zone"),
        (["--cron", "0 3 * * *", "--catch-up", "soon"], "not a duration"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(
    cli: Cli, db: Db, tmp_path: Path, extra: list[str], words: str
) -> None:
    path = job_file(tmp_path, ["ws-0000000001"])
    done = cli.run("schedule", "add", "patch", str(path), *extra)
    assert done.code == 2
    assert words in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not db.exists()


def test_a_missing_job_file_is_refused(cli: Cli, db: Db, tmp_path: Path) -> None:
    done = cli.run("schedule", "add", "patch", str(tmp_path / "nope.yaml"), "--cron", "0 3 * * *")
    assert done.code == 2 and "nope.yaml" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not db.exists()
