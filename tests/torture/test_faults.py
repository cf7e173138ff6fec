"""API faults through the real CLI: a throttling storm, 5 % 500s + 5 % per-item failures + 1 %
stuck reboots, latency spikes, the simulator killed and restarted mid-job (connection refused),
credentials expiring mid-job. Each job must end with every item in a truthful final state."""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Callable

from fleetops_harness import Cli, Db, SimProcess, wait_until
from fleetops_torture import FULL, report

from fleetops.sim import Simulator

SMALL = 250 if FULL else 100  # WorkSpaces in the storm, restart, credentials and latency runs
FINAL = {"succeeded", "failed", "skipped", "in_doubt", "cancelled"}


def _mid_submit(db: Db, job_id: str) -> bool:
    job = db.job(job_id) or {}
    counts = db.counts(job_id)
    return bool(job.get("planned_at")) and counts["submitted"] + counts["succeeded"] > 0


def _final_items(db: Db, job_id: str) -> dict[str, str]:
    items = db.items(job_id)
    unfinished = Counter(s for s in items.values() if s not in FINAL)
    assert not unfinished, f"items not in a final state: {unfinished}"
    return items


def test_throttling_storm(cli: Cli, db: Db) -> None:
    with Simulator(
        workspaces=SMALL, seed=21, rate=20, burst=10, transition_seconds=0.5, latency_ms=20
    ).run_in_thread() as sim:
        proc = cli.spawn(
            *cli.run_args("reboot", sim.endpoint_url, "--yes", "--json"),
            "--rate",
            "20",
            "--burst",
            "10",
        )
        job_id = proc.job_id()
        wait_until(lambda: _mid_submit(db, job_id), timeout=60, what="the submit phase")
        sim.configure(rate=0.2, burst=1)  # the storm
        time.sleep(3 if not FULL else 20)
        sim.configure(rate=20, burst=10)
        code = proc.wait(timeout=300)
        stats = sim.stats()
    items = _final_items(db, job_id)
    reboots = stats.calls_by_workspace.get("RebootWorkspaces", {})
    report(
        "throttling-storm",
        exit_code=code,
        throttled=stats.throttled,
        calls=sum(stats.calls_by_operation.values()),
        counts=dict(Counter(items.values())),
        repeated=sum(n - 1 for n in reboots.values()),
    )
    assert code == 0, proc.stderr[-3000:]
    assert stats.throttled > 0, "the storm throttled nothing"
    eligible = {ws for ws, s in items.items() if s != "skipped"}
    assert all(items[ws] == "succeeded" for ws in eligible)
    assert set(reboots) == eligible


def test_500s_item_failures_and_stuck_reboots(cli: Cli, db: Db) -> None:
    with Simulator(
        workspaces=600,
        seed=22,
        rate=None,
        transition_seconds=0.5,
        error_rate=0.05,
        item_failure_rate=0.05,
        stuck_reboot_rate=0.01,
    ).run_in_thread() as sim:
        result = cli.run(
            *cli.run_args("reboot", sim.endpoint_url, "--yes", "--json"),
            "--rate",
            "100",
            "--verify-timeout",
            "6",
            timeout=180,
        )
        stats = sim.stats()
        states = {ws: (sim.workspace(ws) or {}).get("State") for ws in sim.workspace_ids()}
    assert "Traceback" not in result.stderr
    final = result.json()
    items = _final_items(db, final["id"])
    failed = {ws for ws, s in items.items() if s == "failed"}
    codes = Counter(
        row[0]
        for row in db.query(
            "SELECT error_code FROM items WHERE job_id = ? AND state = 'failed'", final["id"]
        )
    )
    report(
        "500s-item-failures-stuck",
        exit_code=result.code,
        errors_500=stats.errors_500,
        counts=final["counts"],
        failed_codes=dict(codes),
    )
    assert stats.errors_500 > 0
    # Truthful: what is called succeeded is AVAILABLE; what failed is stuck or was refused.
    assert all(states.get(ws) == "AVAILABLE" for ws, s in items.items() if s == "succeeded")
    assert failed, "1 % stuck reboots of ~250 should fail some"
    timed_out = {
        ws
        for (ws,) in db.query(
            "SELECT workspace_id FROM items WHERE job_id = ? AND error_code = 'VerifyTimeout'",
            final["id"],
        )
    }
    assert timed_out and all(states.get(ws) == "REBOOTING" for ws in timed_out)
    assert result.code == 1 and final["status"] == "failed"


def test_latency_spike_past_the_read_timeout(cli: Cli, db: Db) -> None:
    """Answers slower than --read-timeout: the attempts time out and are retried (a reboot is
    safe to send again); the job still ends with every item in a truthful final state."""
    with Simulator(
        workspaces=SMALL, seed=23, rate=None, transition_seconds=0.5
    ).run_in_thread() as sim:
        proc = cli.spawn(
            *cli.run_args("reboot", sim.endpoint_url, "--yes", "--json"), "--read-timeout", "1"
        )
        job_id = proc.job_id()
        wait_until(lambda: _mid_submit(db, job_id), timeout=60, what="the submit phase")
        sim.configure(latency_ms=2500)
        time.sleep(3)
        sim.configure(latency_ms=0)
        code = proc.wait(timeout=180)
        reboots = sim.stats().calls_by_workspace.get("RebootWorkspaces", {})
    items = _final_items(db, job_id)
    report("latency-spike", exit_code=code, counts=dict(Counter(items.values())))
    assert code == 0, proc.stderr[-3000:]
    assert {ws for ws, s in items.items() if s == "succeeded"} <= set(reboots)
    # The spike was felt: calls timed out and were retried (their events count the attempts).
    retried = db.query("SELECT count(*) FROM events WHERE job_id = ? AND attempts > 1", job_id)
    assert retried[0][0] >= 1


def test_latency_spike_within_the_read_timeout(cli: Cli, db: Db) -> None:
    with Simulator(
        workspaces=SMALL, seed=24, rate=None, transition_seconds=0.5
    ).run_in_thread() as sim:
        proc = cli.spawn(*cli.run_args("reboot", sim.endpoint_url, "--yes", "--json"))
        job_id = proc.job_id()
        wait_until(lambda: _mid_submit(db, job_id), timeout=60, what="the submit phase")
        sim.configure(latency_ms=2500)
        time.sleep(2)
        sim.configure(latency_ms=0)
        code = proc.wait(timeout=120)
        reboots = sim.stats().calls_by_workspace.get("RebootWorkspaces", {})
    items = _final_items(db, job_id)
    assert code == 0, proc.stderr[-3000:]
    assert set(reboots) == {ws for ws, s in items.items() if s == "succeeded"}


def test_simulator_killed_and_restarted_mid_job(
    cli: Cli, db: Db, sim_process: Callable[..., SimProcess]
) -> None:
    """Restarting on the same port with the same seed regenerates the same fleet, but the state is
    lost (transitions in progress end at once, counters restart): the witness is the job's own
    truth — every item final, every eligible one succeeded, nothing lost."""
    sim = sim_process(
        *("--workspaces", str(SMALL), "--seed", "25", "--rate", "0", "--latency-ms=20"),
        *("--transition-seconds", "0.5"),
    )
    # A WorkSpace regenerated UNHEALTHY (its reboot forgotten) never settles: the verify timeout
    # turns it into a truthful failure instead of a 30-minute wait. The timeout is well past the
    # restart (a process start, slow on a loaded machine) plus a transition, so no other
    # WorkSpace reaches it.
    proc = cli.spawn(
        *cli.run_args("reboot", sim.endpoint_url, "--yes", "--json"), "--verify-timeout", "12"
    )
    job_id = proc.job_id()
    wait_until(lambda: _mid_submit(db, job_id), timeout=60, what="the submit phase")
    sim.stop(signal.SIGKILL)
    at_kill = db.counts(job_id)
    time.sleep(1.5)  # connection refused meanwhile
    sim.start()
    code = proc.wait(timeout=180)
    items = _final_items(db, job_id)
    refused = db.query(
        "SELECT count(*) FROM events WHERE job_id = ? AND outcome = 'error'", job_id
    )[0][0]
    report(
        "sim-restart",
        exit_code=code,
        counts_at_kill=at_kill,
        counts=dict(Counter(items.values())),
        error_events=refused,
    )
    assert "Traceback" not in proc.stderr
    assert len(items) == SMALL
    assert code in (0, 1), proc.stderr[-3000:]
    failures = db.query(
        "SELECT error_code, count(*) FROM items WHERE job_id = ? AND state = 'failed' "
        "GROUP BY error_code",
        job_id,
    )
    assert all(code_ == "VerifyTimeout" for code_, _ in failures), failures
    # Only a WorkSpace the restart regenerated UNHEALTHY (its reboot forgotten) may time out:
    # how many of those were between their reboot and its verdict at the kill is the machine's
    # timing, which of them it can be is not.
    stuck = db.query(
        "SELECT DISTINCT last_state FROM items WHERE job_id = ? AND state = 'failed'", job_id
    )
    assert {state for (state,) in stuck} <= {"UNHEALTHY"}, stuck
    assert sum(n for _, n in failures) <= 5


def test_credentials_expiring_mid_job_interrupt_and_resume(cli: Cli, db: Db) -> None:
    with Simulator(
        workspaces=SMALL, seed=26, rate=20, burst=10, transition_seconds=0.5, latency_ms=20
    ).run_in_thread() as sim:
        proc = cli.spawn(
            *cli.run_args("reboot", sim.endpoint_url, "--yes", "--json"), "--rate", "20"
        )
        job_id = proc.job_id()
        wait_until(lambda: _mid_submit(db, job_id), timeout=60, what="the submit phase")
        sim.expire_credentials(True)
        code = proc.wait(timeout=120)
        job = db.job(job_id) or {}
        assert code == 130, proc.stderr[-3000:]
        assert job["status"] == "interrupted"
        assert "credentials" in (job["message"] or "") and "resume" in job["message"]
        assert "Traceback" not in proc.stderr
        assert db.counts(job_id)["in_flight"] == 0

        sim.expire_credentials(False)
        resumed = cli.run("jobs", "resume", job_id, "--json", timeout=120)
        reboots = sim.stats().calls_by_workspace.get("RebootWorkspaces", {})
    assert resumed.code == 0, resumed.stderr[-3000:]
    assert resumed.json()["status"] == "succeeded"
    items = _final_items(db, job_id)
    assert set(reboots) == {ws for ws, s in items.items() if s == "succeeded"}
    report(
        "credentials-expired",
        exit_code=code,
        repeated=sum(n - 1 for n in reboots.values()),
        message=job["message"],
    )
