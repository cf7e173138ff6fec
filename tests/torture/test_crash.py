"""Crash torture: SIGKILL ``fleetops`` at random (seeded) moments, each time followed by
``fleetops jobs resume``, until the job ends. The simulator's per-WorkSpace call counters are the
witness; the items ``in_flight`` at each kill are read from the database once the process is
reaped (exact: nothing writes in between).

The first kill waits for items in flight (the moment the durability rule is about), the others
come at random. Figures per run: items lost (must be 0), extra calls (reboot: each WorkSpace's
extra calls at most the number of kills that caught it in flight), repeated destructive calls
(must be 0), final status. Fast: reboot 200 / 3 kills, terminate 200 / 2 kills, rebuild 40 / 2
kills. Full (FLEETOPS_TORTURE=full): 20 kills across a 2,000-WorkSpace reboot and terminate, and a
400-WorkSpace rebuild (one WorkSpace per call, one snapshot check per WorkSpace).
"""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest
from fleetops_harness import Cli, Db, wait_until
from fleetops_torture import FULL, report

from fleetops.catalogue.actions import get_action
from fleetops.sim import Simulator

FINAL = {"succeeded", "failed", "skipped", "in_doubt", "cancelled"}


@dataclass(frozen=True)
class Case:
    action: str
    workspaces: int
    kills: int
    rate: int
    burst: int
    transition: float
    latency_ms: float
    seed: int
    kill_window: tuple[float, float]


FAST = [
    Case("reboot", 200, 3, 30, 10, 0.8, 100, 101, (0.4, 2.5)),
    Case("terminate", 200, 2, 30, 10, 0.8, 100, 102, (0.4, 2.0)),
    Case("rebuild", 40, 2, 40, 10, 0.8, 100, 103, (0.4, 1.5)),
]
# A resumed job plans again from the start when its plan was cut short (80 describe pages, one
# after the other): windows shorter than the plan keep every kill in planning, so they reach past
# it. Kills at random moments still land mostly in planning for the reboot; the phase-triggered
# kills of tests/acceptance/test_kill_resume.py cover mid-submit and mid-verify deterministically.
FULL_CASES = [
    Case("reboot", 2000, 20, 50, 20, 1.5, 100, 201, (1.0, 10.0)),
    Case("terminate", 2000, 20, 50, 20, 1.5, 100, 202, (1.0, 10.0)),
    Case("rebuild", 400, 20, 50, 20, 1.5, 100, 203, (1.0, 10.0)),
]
CASES = FULL_CASES if FULL else FAST


def _crash_run(cli: Cli, db: Db, sim: Simulator, case: Case) -> dict[str, Any]:
    rng = random.Random(case.seed)
    args = [
        *cli.run_args(case.action, sim.endpoint_url, "--yes", "--json"),
        "--rate",
        str(case.rate),
        "--burst",
        str(case.burst),
        "--ignore-snapshot-age",
    ]
    proc = cli.spawn(*args)
    job_id = proc.job_id(timeout=60)
    kills: list[dict[str, Any]] = []
    for number in range(case.kills):
        if number == 0:
            # The first kill lands while calls are in flight (the moment the durability rule is
            # about); the others at random moments.
            running = proc.popen
            wait_until(
                lambda: db.counts(job_id)["in_flight"] > 0 or running.poll() is not None,  # noqa: B023
                timeout=120,
                interval=0.005,
                what="items in flight",
            )
        deadline = time.monotonic() + (rng.uniform(*case.kill_window) if number else 0.0)
        while time.monotonic() < deadline and proc.popen.poll() is None:
            time.sleep(0.01)
        if proc.popen.poll() is not None:
            if proc.popen.returncode not in (0, 1, 4):
                pytest.fail(f"exit {proc.popen.returncode}:\n{proc.stderr[-3000:]}")
            break  # the job ended before this kill: the run is complete
        proc.kill()
        job = db.job(job_id) or {}
        if job.get("status") in ("succeeded", "failed", "aborted", "cancelled"):
            # Killed on its way out, after the job's end was recorded: nothing to resume.
            return {"job_id": job_id, "code": None, "stderr": proc.stderr, "kills": kills}
        kills.append(
            {
                "status": job.get("status"),
                "planned": job.get("planned_at") is not None,
                "counts": db.counts(job_id),
                "in_flight": set(db.items(job_id, "in_flight")),
            }
        )
        proc = cli.spawn("jobs", "resume", job_id, "--json")
    code = proc.wait(timeout=600 if FULL else 120)
    return {"job_id": job_id, "code": code, "stderr": proc.stderr, "kills": kills}


@pytest.mark.parametrize("case", CASES, ids=[f"{c.action}-{c.workspaces}x{c.kills}" for c in CASES])
def test_random_sigkills_then_resume_lose_nothing_and_repeat_nothing_destructive(
    cli: Cli, db: Db, case: Case
) -> None:
    action = get_action(case.action)
    with Simulator(
        workspaces=case.workspaces,
        seed=case.seed,
        rate=case.rate,
        burst=case.burst,
        transition_seconds=case.transition,
        latency_ms=case.latency_ms,
    ).run_in_thread() as sim:
        fleet = set(sim.workspace_ids())
        run = _crash_run(cli, db, sim, case)
        calls: dict[str, int] = sim.stats().calls_by_workspace.get(action.operation, {})

    job_id = run["job_id"]
    job = db.job(job_id)
    assert job is not None
    items = db.items(job_id)
    counts = Counter(items.values())
    kills = run["kills"]
    in_flight_at_kills: Counter[str] = Counter()
    for kill in kills:
        in_flight_at_kills.update(kill["in_flight"])
    extra = {ws: n - 1 for ws, n in calls.items() if n > 1}
    lost = fleet - set(items)
    unfinished = {ws: s for ws, s in items.items() if s not in FINAL}
    report(
        f"crash-{case.action}",
        workspaces=case.workspaces,
        kills=len(kills),
        kills_while_planning=sum(1 for k in kills if not k["planned"]),
        in_flight_at_each_kill=[len(k["in_flight"]) for k in kills],
        items_lost=len(lost),
        unfinished=len(unfinished),
        extra_calls=sum(extra.values()),
        repeated_destructive=sum(extra.values()) if action.destructive else 0,
        final_status=job["status"],
        exit_code=run["code"],
        counts=dict(counts),
    )

    assert "Traceback" not in run["stderr"]
    # The kills were delivered, and the first caught calls in flight.
    assert kills, "the job ended before any kill"
    assert kills[0]["planned"] and kills[0]["in_flight"], kills[0]
    assert not lost, f"{len(lost)} WorkSpaces of the fleet are not items"
    assert set(items) == fleet
    assert not unfinished, f"items not in a final state: {Counter(unfinished.values())}"
    eligible = {ws for ws, s in items.items() if s != "skipped"}
    assert not {ws for ws, s in items.items() if s == "skipped" and calls.get(ws)}
    unexplained = {ws: n for ws, n in extra.items() if n > in_flight_at_kills[ws]}
    assert not unexplained, f"calls repeated for WorkSpaces not in flight at a kill: {unexplained}"
    if action.destructive:
        assert not extra, f"a destructive call was repeated: {extra}"
    if case.action == "rebuild":
        # Without evidence a destructive call in flight at a kill is held for the operator.
        assert run["code"] in (0, 4, None)
        in_doubt = {ws for ws, s in items.items() if s == "in_doubt"}
        assert in_doubt <= set(in_flight_at_kills)
        assert {ws for ws in eligible - in_doubt if calls.get(ws, 0) != 1} == set()
        assert job["status"] == ("interrupted" if in_doubt else "succeeded")
    else:
        assert run["code"] in (0, None), run["stderr"][-3000:]
        assert job["status"] == "succeeded"
        assert all(items[ws] == "succeeded" for ws in eligible)
        assert all(calls.get(ws, 0) >= 1 for ws in eligible)
    if case.action == "terminate":
        assert all(calls[ws] == 1 for ws in eligible)
