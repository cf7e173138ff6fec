"""``fleetops run recover`` SIGKILLed during its restore rung, then ``fleetops jobs resume``: no
rung was sent twice to one WorkSpace (the simulator's counters per WorkSpace and operation),
the restores that may or may not have been sent are held ``in_doubt`` (exit 4) and never climb
to a rebuild, and every other WorkSpace ends where the ladder says.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest
from fleetops_harness import Cli, Db, wait_until

from fleetops.sim import Simulator
from fleetops.sim._health import heals

SEED = 5
RATE = ["--rate", "10", "--burst", "2"]


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(
        workspaces=40,
        seed=SEED,
        rate=10,
        burst=2,
        transition_seconds=2.0,
        connected_fraction=0.0,
        stale_snapshot_fraction=0.0,
    ).run_in_thread() as running:
        running.configure(reboot_heal_fraction=0.2, restore_heal_fraction=0.5)
        yield running


def _open_rungs(db: Db, job_id: str) -> dict[str, int]:
    """WorkSpace id → the rung of its open step."""
    if not db.has_table("item_steps"):
        return {}
    rows = db.query(
        "SELECT i.workspace_id, s.rung FROM item_steps s JOIN items i ON i.id = s.item_id"
        " WHERE s.job_id = ? AND s.outcome IS NULL",
        job_id,
    )
    return {str(ws): int(rung) for ws, rung in rows}


def test_recover_killed_in_its_restore_rung_sends_no_rung_twice(
    cli: Cli, db: Db, sim: Simulator
) -> None:
    ids = sim.workspace_ids()
    for ws_id in ids:
        sim.set_state(ws_id, "AVAILABLE")
    unhealthy = ids[:20]
    for ws_id in unhealthy:
        sim.set_state(ws_id, "UNHEALTHY")
    after_reboot = {w for w in unhealthy if not heals(SEED, w, "RebootWorkspaces", 0.2)}
    assert len(after_reboot) >= 8
    sim.reset_stats()

    proc = cli.spawn(
        *cli.run_args("recover", sim.endpoint_url, "--settle", "20s", "--yes", "--json", *RATE)
    )
    job_id = proc.job_id()

    def mid_restore() -> bool:
        if proc.popen.poll() is not None:
            pytest.fail(f"the job ended before the kill:\n{proc.stderr[-2000:]}")
        on_restore = {w for w, rung in _open_rungs(db, job_id).items() if rung == 1}
        in_flight = set(db.items(job_id, "in_flight")) & on_restore
        sent = set(sim.stats().calls_by_workspace.get("RestoreWorkspace", {}))
        # a restore committed in flight whose call has not reached the service yet, others
        # already sent: the kill leaves one the API cannot tell about
        return bool(in_flight - sent) and len(sent) >= 2

    wait_until(mid_restore, timeout=90, interval=0.01, what="the restore rung, a call not yet sent")
    proc.kill(signal.SIGKILL)
    in_flight = set(db.items(job_id, "in_flight"))
    at_kill = dict(sim.stats().calls_by_workspace.get("RestoreWorkspace", {}))
    never_sent = in_flight - set(at_kill)
    assert never_sent

    result = cli.run("jobs", "resume", job_id, "--json", timeout=180)
    assert "Traceback" not in result.stderr
    stats = sim.stats().calls_by_workspace
    reboots = dict(stats.get("RebootWorkspaces", {}))
    restores = dict(stats.get("RestoreWorkspace", {}))
    rebuilds = dict(stats.get("RebuildWorkspaces", {}))
    doubt = set(db.items(job_id, "in_doubt"))

    # No rung twice to one WorkSpace; every UNHEALTHY one rebooted, no healthy one touched.
    assert reboots == dict.fromkeys(unhealthy, 1)
    assert set(restores.values()) <= {1} and set(rebuilds.values()) <= {1}
    assert set(restores) <= after_reboot
    # Held for the operator: restores in flight at the kill, among them all never sent;
    # a WorkSpace in doubt was not restored by the resume, nor climbed to a rebuild.
    assert result.code == 4, result.stderr[-3000:]
    assert never_sent <= doubt <= in_flight
    for ws_id in doubt:
        assert restores.get(ws_id) == at_kill.get(ws_id) and ws_id not in rebuilds
    # The others: restored once, and rebuilt once exactly when the restore did not heal.
    settled = after_reboot - doubt
    assert set(restores) - doubt == settled
    assert set(rebuilds) == {w for w in settled if not heals(SEED, w, "RestoreWorkspace", 0.5)}
    states = db.items(job_id)
    assert {states[w] for w in set(unhealthy) - doubt} == {"succeeded"}
    shown = result.json()
    assert shown["counts"]["in_doubt"] == len(doubt)
