"""``fleetops run rebuild|migrate`` SIGKILLed mid-submit, then ``fleetops jobs
resume``: no WorkSpace was rebuilt or migrated twice (the simulator's counters), and the items
whose call may or may not have been sent are held ``in_doubt`` (exit 4), not re-sent.

Destructive calls are committed ``in_flight`` before they are sent; the items in flight at the
kill are read from the database once the process is reaped (nothing can change them after).
Among them, those whose WorkSpace the simulator never saw named in a call are certainly without
evidence: they must be in doubt after the resume and still never called.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from typing import Any

import pytest
from fleetops_harness import Cli, Db, Proc, wait_until

from fleetops.sim import Simulator

RATE = ["--rate", "5", "--burst", "5"]


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(
        workspaces=60, seed=11, rate=5, burst=5, transition_seconds=0.5
    ).run_in_thread() as running:
        yield running


def _kill_mid_submit(proc: Proc, db: Db, job_id: str, sim: Simulator, op: str) -> set[str]:
    def ready() -> bool:
        if proc.popen.poll() is not None:
            pytest.fail(f"the job ended before the kill:\n{proc.stderr[-2000:]}")
        counts = db.counts(job_id)
        stats = sim.stats()
        sent = stats.calls_by_operation.get(op, 0)
        # An item committed in_flight whose call has not reached the service yet: the kill
        # then leaves one the API cannot tell about (what this test is about). Calls that all
        # reached the service before the kill would leave nothing in doubt.
        waiting = set(db.items(job_id, "in_flight")) - set(stats.calls_by_workspace.get(op, {}))
        return bool(waiting) and counts["pending"] > 0 and sent >= 4

    wait_until(ready, timeout=60, interval=0.01, what="the job mid-submit, a call not yet sent")
    proc.kill(signal.SIGKILL)
    in_flight = set(db.items(job_id, "in_flight"))
    # The kill landed mid-submit: calls in flight, others still to send.
    assert in_flight, "no item was in flight at the kill"
    assert db.counts(job_id)["pending"] > 0
    return in_flight


def _run_kill_resume(
    cli: Cli, db: Db, sim: Simulator, action: str, op: str, *args: str
) -> dict[str, Any]:
    proc = cli.spawn(
        *cli.run_args(action, sim.endpoint_url, *args, "--yes", "--json", *RATE),
    )
    job_id = proc.job_id()
    in_flight = _kill_mid_submit(proc, db, job_id, sim, op)
    at_kill = dict(sim.stats().calls_by_workspace.get(op, {}))
    never_sent = in_flight - set(at_kill)
    assert never_sent, "every call in flight had reached the service before the kill"
    result = cli.run("jobs", "resume", job_id, "--json", timeout=120)
    assert "Traceback" not in result.stderr
    after = dict(sim.stats().calls_by_workspace.get(op, {}))
    doubt = set(db.items(job_id, "in_doubt"))
    return {
        "job_id": job_id,
        "result": result,
        "in_flight": in_flight,
        "never_sent": never_sent,
        "at_kill": at_kill,
        "after": after,
        "doubt": doubt,
        "items": db.items(job_id),
    }


def _assert_held_not_resent(run: dict[str, Any]) -> None:
    result = run["result"]
    assert result.code == 4, result.stderr[-3000:]  # items in doubt await the operator
    shown = result.json()
    assert shown["counts"]["in_doubt"] == len(run["doubt"]) > 0
    # Only items in flight at the kill can be in doubt; those never sent certainly are.
    assert run["never_sent"] <= run["doubt"] <= run["in_flight"]
    # Nothing was sent twice, and nothing in doubt was sent by the resume.
    assert set(run["after"].values()) == {1}
    for ws_id in run["doubt"]:
        assert run["after"].get(ws_id) == run["at_kill"].get(ws_id)
    # Everything else was acted on and verified.
    states = set(run["items"].values()) - {"in_doubt", "skipped"}
    assert states == {"succeeded"}, run["items"]


def test_rebuild_killed_mid_submit_rebuilds_nothing_twice_and_holds_in_doubt(
    cli: Cli, db: Db, sim: Simulator
) -> None:
    directory = sim.workspace(sim.workspace_ids()[0])["DirectoryId"]  # type: ignore[index]
    run = _run_kill_resume(
        cli,
        db,
        sim,
        "rebuild",
        "RebuildWorkspaces",
        "--directory-id",
        directory,
        "--include-connected",
        "--ignore-snapshot-age",
    )
    _assert_held_not_resent(run)
    # A second resume without --redo-in-doubt still sends nothing.
    again = cli.run("jobs", "resume", run["job_id"], "--json", timeout=60)
    assert again.code == 4
    assert dict(sim.stats().calls_by_workspace["RebuildWorkspaces"]) == run["after"]


def test_migrate_killed_mid_submit_migrates_nothing_twice_and_holds_in_doubt(
    cli: Cli, db: Db, sim: Simulator
) -> None:
    by_bundle: dict[str, list[str]] = {}
    for ws_id in sim.workspace_ids():
        by_bundle.setdefault(sim.workspace(ws_id)["BundleId"], []).append(ws_id)  # type: ignore[index]
    source, target = sorted(by_bundle, key=lambda b: -len(by_bundle[b]))[:2]
    users = {sim.workspace(w)["UserName"] for w in by_bundle[source]}  # type: ignore[index]
    run = _run_kill_resume(
        cli,
        db,
        sim,
        "migrate",
        "MigrateWorkspace",
        "--bundle-id",
        source,
        "--to-bundle",
        target,
        "--include-connected",
        "--ignore-snapshot-age",
    )
    _assert_held_not_resent(run)
    # Each user has at most one WorkSpace on the target bundle: no double migration.
    on_target: dict[str, int] = {}
    for ws_id in sim.workspace_ids():
        ws = sim.workspace(ws_id)
        if ws is not None and ws["BundleId"] == target and ws["UserName"] in users:
            on_target[ws["UserName"]] = on_target.get(ws["UserName"], 0) + 1
    assert on_target and set(on_target.values()) == {1}
    # In-flight migrations that did reach the API were found (new WorkSpace recorded).
    reached = run["in_flight"] - run["doubt"]
    for ws_id in reached:
        row = db.query(
            "SELECT result, state FROM items WHERE job_id = ? AND workspace_id = ?",
            run["job_id"],
            ws_id,
        )
        assert row[0][1] == "succeeded" and row[0][0] and row[0][0] != ws_id


def test_destructive_run_without_yes_and_no_terminal_exits_2_and_calls_nothing(
    cli: Cli, db: Db, sim: Simulator
) -> None:
    directory = sim.workspace(sim.workspace_ids()[0])["DirectoryId"]  # type: ignore[index]
    sim.reset_stats()
    result = cli.run(*cli.run_args("rebuild", sim.endpoint_url, "--directory-id", directory))
    assert result.code == 2
    assert "--yes" in result.stderr
    assert sim.stats().total_calls == 0
    assert db.job_ids() == []
