"""``fleetops run`` killed mid-job (SIGKILL while planning, mid-submit,
mid-verify; SIGTERM/SIGINT), then ``fleetops jobs resume``: the job ends ``succeeded``, every
eligible WorkSpace was acted on, a reboot was repeated for at most the items in flight at the kill,
and a terminate is never sent twice. A second resume while one runs is refused.

The witness is the simulator's ``calls_by_workspace`` (every WorkSpace id each admitted request
named). The items ``in_flight`` at a SIGKILL are read from the database right after the process is
reaped: nothing can change them in between, so the bound is exact.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from typing import Any

import pytest
from fleetops_harness import Cli, Db, Proc, wait_until

from fleetops.sim import Simulator

WORKSPACES = 300
RATE = ["--rate", "10", "--burst", "5"]


@pytest.fixture
def sim() -> Iterator[Simulator]:
    # A quota like the CLI's (10/s burst 5): planning ~2 s, submit + verify ~3 s.
    with Simulator(
        workspaces=WORKSPACES, seed=3, rate=10, burst=5, transition_seconds=1.0
    ).run_in_thread() as running:
        yield running


def _start(cli: Cli, sim: Simulator, action: str = "reboot") -> tuple[Proc, str]:
    proc = cli.spawn(*cli.run_args(action, sim.endpoint_url, "--yes", *RATE))
    return proc, proc.job_id()


def _kill_when(proc: Proc, db: Db, job_id: str, phase: str) -> dict[str, Any]:
    """SIGKILL ``proc`` once the job is in ``phase``; the job and its items as left."""

    def ready() -> bool:
        if proc.popen.poll() is not None:
            pytest.fail(f"the job ended before the {phase} kill:\n{proc.stderr[-2000:]}")
        job = db.job(job_id)
        if job is None:
            return False
        if phase == "planning":
            # Planning calls are under way (each is in the event log), the plan is not done.
            return job["planned_at"] is None and bool(
                db.query("SELECT 1 FROM events WHERE job_id = ? LIMIT 1", job_id)
            )
        if job["planned_at"] is None:
            return False
        counts = db.counts(job_id)
        if phase == "submit":
            return counts["in_flight"] > 0 and counts["pending"] > 0
        assert phase == "verify"
        return counts["pending"] == counts["in_flight"] == 0 and counts["submitted"] > 0

    wait_until(ready, timeout=60, interval=0.01, what=f"the {phase} phase")
    proc.kill(signal.SIGKILL)
    job = db.job(job_id)
    assert job is not None
    return {
        "job": job,
        "counts": db.counts(job_id),
        "in_flight": set(db.items(job_id, "in_flight")),
    }


def _resume(cli: Cli, job_id: str) -> dict[str, Any]:
    result = cli.run("jobs", "resume", job_id, "--json", timeout=180)
    assert result.code == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    return dict(result.json())


@pytest.mark.parametrize("phase", ["planning", "submit", "verify"])
def test_sigkill_then_resume_reboots_everything_repeating_only_in_flight(
    cli: Cli, db: Db, sim: Simulator, phase: str
) -> None:
    proc, job_id = _start(cli, sim)
    left = _kill_when(proc, db, job_id, phase)
    # The kill landed in the phase the test is named for.
    assert left["job"]["status"] in ("planned", "running")
    if phase == "planning":
        assert left["job"]["planned_at"] is None
    elif phase == "submit":
        assert left["in_flight"], "no item was in flight at the kill"
    else:
        assert left["counts"]["submitted"] > 0 and not left["in_flight"]

    final = _resume(cli, job_id)

    assert final["status"] == "succeeded"
    counts = final["counts"]
    assert counts["pending"] == counts["in_flight"] == counts["submitted"] == 0
    assert counts["failed"] == counts["in_doubt"] == 0
    items = db.items(job_id)
    assert set(items) == set(sim.workspace_ids()), "every WorkSpace of the fleet is an item"
    reboots = sim.stats().calls_by_workspace.get("RebootWorkspaces", {})
    eligible = {ws for ws, state in items.items() if state != "skipped"}
    assert eligible and all(items[ws] == "succeeded" for ws in eligible)
    assert {ws for ws in eligible if reboots.get(ws, 0) >= 1} == eligible
    assert not {ws for ws in items if items[ws] == "skipped" and reboots.get(ws)}
    repeated = {ws: n - 1 for ws, n in reboots.items() if n > 1}
    print(
        f"\n[kill {phase}] in flight at kill: {len(left['in_flight'])}, "
        f"extra reboots: {sum(repeated.values())}, counts at kill: {left['counts']}"
    )
    assert set(repeated) <= left["in_flight"]
    assert sum(repeated.values()) <= len(left["in_flight"])


def test_sigkill_mid_terminate_never_terminates_twice(cli: Cli, db: Db, sim: Simulator) -> None:
    proc, job_id = _start(cli, sim, "terminate")
    left = _kill_when(proc, db, job_id, "submit")
    assert left["in_flight"], "no terminate was in flight at the kill"

    final = _resume(cli, job_id)

    assert final["status"] == "succeeded"
    items = db.items(job_id)
    terminates = sim.stats().calls_by_workspace.get("TerminateWorkspaces", {})
    eligible = {ws for ws, state in items.items() if state != "skipped"}
    assert eligible and all(items[ws] == "succeeded" for ws in eligible)
    twice = {ws: n for ws, n in terminates.items() if n > 1}
    print(f"\n[kill terminate] in flight at kill: {len(left['in_flight'])}, sent twice: {twice}")
    assert not twice, "a terminate was sent twice"
    assert set(terminates) == eligible
    # Every eligible WorkSpace is gone from the simulated fleet.
    assert not eligible & set(sim.workspace_ids())


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_sigint_interrupt_gracefully_and_resume(
    cli: Cli, db: Db, sim: Simulator, sig: signal.Signals
) -> None:
    proc, job_id = _start(cli, sim)
    wait_until(
        lambda: (db.job(job_id) or {}).get("planned_at") and db.counts(job_id)["submitted"] > 0,
        timeout=60,
        what="the submit phase",
    )
    proc.popen.send_signal(sig)
    assert proc.wait(timeout=40) == 130, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    job = db.job(job_id)
    assert job is not None
    assert job["status"] == "interrupted"
    assert job["message"] and "resume" in job["message"]
    assert job["lease_owner"] is None  # released on the way out
    assert db.counts(job_id)["in_flight"] == 0  # calls in flight were let finish

    final = _resume(cli, job_id)
    assert final["status"] == "succeeded"
    reboots = sim.stats().calls_by_workspace.get("RebootWorkspaces", {})
    assert all(n == 1 for n in reboots.values()), "a graceful stop repeats nothing"


def _second_resume(cli: Cli, db: Db, sim: Simulator) -> tuple[Proc, str, Any]:
    """A job killed mid-submit; one resume running (holding the lease); a second one tried."""
    proc, job_id = _start(cli, sim)
    _kill_when(proc, db, job_id, "submit")
    # A slow quota keeps the first resume busy for longer than a second one takes to start,
    # however loaded the machine.
    sim.configure(rate=1, burst=1)
    first = cli.spawn("jobs", "resume", job_id, "--json")
    wait_until(
        lambda: f":{first.pid}:" in str((db.job(job_id) or {}).get("lease_owner")),
        timeout=30,
        what="the first resume to take the lease",
    )
    second = cli.run("jobs", "resume", job_id, "--json", timeout=60)
    assert first.popen.poll() is None, "the first resume was disturbed"
    sim.configure(rate=10, burst=5)
    return first, job_id, second


def test_a_second_resume_while_one_runs_is_refused(cli: Cli, db: Db, sim: Simulator) -> None:
    first, job_id, second = _second_resume(cli, db, sim)

    assert second.code != 0
    assert second.code != 130
    assert second.stdout == ""
    assert "another process" in second.stderr

    assert first.wait(timeout=120) == 0, first.stderr[-2000:]
    job = db.job(job_id)
    assert job is not None and job["status"] == "succeeded"
    reboots = sim.stats().calls_by_workspace.get("RebootWorkspaces", {})
    assert sum(reboots.values()) - len(reboots) <= 25, "the refused resume sent nothing"


def test_a_second_resume_is_refused_with_one_clear_line(cli: Cli, db: Db, sim: Simulator) -> None:
    first, job_id, second = _second_resume(cli, db, sim)
    first.wait(timeout=120)

    lines = [line for line in second.stderr.splitlines() if line.strip()]
    assert "Traceback" not in second.stderr
    assert len(lines) == 1, second.stderr
    assert "another process" in lines[0] and job_id in lines[0]
