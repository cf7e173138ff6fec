"""``fleetops run recover`` as a user runs it: the plan names the destructive rungs, bad input is
one line and exit 2 with nothing written, and the history shows each item's steps (``jobs
show``, ``jobs items --json``, ``jobs export``, the HTML report)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator

import pytest
from fleetops_harness import Cli, Db

from fleetops.sim import Simulator
from fleetops.sim._health import heals

SEED = 3


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(
        workspaces=30,
        seed=SEED,
        rate=None,
        transition_seconds=0.8,
        connected_fraction=0.0,
        stale_snapshot_fraction=0.0,
    ).run_in_thread() as running:
        running.configure(reboot_heal_fraction=0.5, restore_heal_fraction=0.0)
        ids = running.workspace_ids()
        for ws_id in ids:
            running.set_state(ws_id, "AVAILABLE")
        for ws_id in ids[:8]:
            running.set_state(ws_id, "UNHEALTHY")
        yield running


def test_dry_run_names_the_destructive_rungs_and_the_unhealthy_targets(
    cli: Cli, db: Db, sim: Simulator
) -> None:
    result = cli.run(*cli.run_args("recover", sim.endpoint_url, "--dry-run"))
    assert result.code == 0, result.stderr
    assert "8 WorkSpaces would be acted on" in result.stderr
    assert "may reach restore and rebuild (destructive" in result.stderr
    assert "up to 8 WorkSpaces" in result.stderr
    assert db.job_ids() == []
    shorter = cli.run(*cli.run_args("recover", sim.endpoint_url, "--dry-run", "--ladder", "reboot"))
    assert shorter.code == 0 and "destructive" not in shorter.stderr


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--ladder", "reboot,reboot"], "names a rung twice"),
        (["--ladder", "rebuild,reboot"], "lightest first"),
        (["--ladder", "terminate"], "not a rung of recover"),
        (["--settle", "soon"], "must be a duration"),
        (["--waves", "5,all"], "--waves do not apply"),
        (["--no-wait"], "--no-wait do not apply"),
    ],
)
def test_bad_ladder_or_settle_is_one_line_exit_2_nothing_written(
    cli: Cli, db: Db, sim: Simulator, flags: list[str], message: str
) -> None:
    sim.reset_stats()
    result = cli.run(*cli.run_args("recover", sim.endpoint_url, *flags, "--yes"))
    assert result.code == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert sim.stats().total_calls == 0 and db.job_ids() == []


def test_the_history_shows_each_items_steps(cli: Cli, db: Db, sim: Simulator) -> None:
    unhealthy = sim.workspace_ids()[:8]
    healed = {w for w in unhealthy if heals(SEED, w, "RebootWorkspaces", 0.5)}
    assert healed and len(healed) < len(unhealthy)
    run = cli.run(
        *cli.run_args("recover", sim.endpoint_url, "--settle", "20s", "--yes", "--json"),
        timeout=120,
    )
    assert run.code == 0, run.stderr[-3000:]
    job = run.json()
    assert job["action"] == "recover" and job["counts"]["succeeded"] == 8

    shown = cli.run("jobs", "show", job["id"], "--json")
    assert shown.json()["steps"] == {
        "reboot": {"succeeded": len(healed), "failed": 8 - len(healed)},
        "restore": {"failed": 8 - len(healed)},
        "rebuild": {"succeeded": 8 - len(healed)},
    }
    text = cli.run("jobs", "show", job["id"])
    assert "steps" in text.stdout and "rebuild" in text.stdout

    items = json.loads(cli.run("jobs", "items", job["id"], "--json").stdout)
    by_ws = {item["workspace_id"]: item for item in items}
    for ws_id in unhealthy:
        steps = by_ws[ws_id]["steps"]
        actions = [(s["action"], s["outcome"]) for s in steps]
        if ws_id in healed:
            assert actions == [("reboot", "succeeded")]
        else:
            climbed = [("reboot", "failed"), ("restore", "failed"), ("rebuild", "succeeded")]
            assert actions == climbed
            assert steps[0]["error_code"] == "VerificationFailed"
        assert all(s["attempts"] == 1 and s["started_at"] and s["finished_at"] for s in steps)

    exported = cli.run("jobs", "export", job["id"], "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert {row["steps"] for row in rows} == {
        "reboot:succeeded",
        "reboot:failed;restore:failed;rebuild:succeeded",
    }
    report = cli.workdir / "report.html"
    assert cli.run("jobs", "report", job["id"], "-o", str(report)).code == 0
    assert "<h2>Steps</h2>" in report.read_text()
