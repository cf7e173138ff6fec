"""Workers run schedules on PostgreSQL: two workers' schedule loops, each with its own store and
procrastinate app, look at a ``* * * * *`` schedule for two (fast-clocked) minutes at once; each
slot becomes one queued job with one queue entry, and a ``fleetops worker`` then runs them
against the simulator over HTTP. Needs a PostgreSQL server (``FLEETOPS_TEST_POSTGRES``)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import psycopg
import pytest
from fleetops_harness import base_env

from fleetops import api
from fleetops.catalogue.specs import Where
from fleetops.queue.schedules import run_schedules
from fleetops.queue.tasks import build_app, conninfo, ensure_schema
from fleetops.sim import Simulator
from fleetops.store import Store

#: 2026-12-04 12:00:30 UTC: half a minute before the first slot
BASE = 1796385630.0
#: the fake clock runs this many times faster than the real one (a minute in a second)
SPEED = 60.0


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(
        workspaces=10, seed=3, rate=None, transition_seconds=0.05, stale_snapshot_fraction=0.0
    ).run_in_thread() as running:
        yield running


def fast_clock() -> Callable[[], float]:
    """A clock that starts at BASE and runs SPEED times faster than the real one."""
    start = time.monotonic()

    def now() -> float:
        return BASE + (time.monotonic() - start) * SPEED

    return now


async def two_workers_for_two_minutes(url: str, job_file: str, endpoint: str) -> None:
    stores = [await Store.open(url) for _ in range(2)]
    try:
        await api.add_schedule(
            stores[0],
            "every-minute",
            job_file,
            cron="* * * * *",
            where=Where(endpoint_url=(endpoint,)),
            now=BASE,
        )
        dsn = conninfo(stores[0])
        await ensure_schema(dsn)
        apps = [build_app(dsn, pool_size=1) for _ in stores]
        now = fast_clock()
        async with apps[0].open_async(), apps[1].open_async():
            with anyio.move_on_after(120 / SPEED + 0.3):  # two minutes and a bit, fake time
                async with anyio.create_task_group() as tg:
                    for store, app in zip(stores, apps, strict=True):
                        tg.start_soon(
                            lambda s=store, a=app: run_schedules(s, a, interval=0.02, clock=now)
                        )
    finally:
        for store in stores:
            await store.close()


def test_two_workers_start_each_slot_once(postgres_db: str, sim: Simulator, tmp_path: Path) -> None:
    targets = [ws for ws in sim.workspace_ids() if sim.workspace(ws)["State"] == "AVAILABLE"][:3]
    path = tmp_path / "reboot.yaml"
    path.write_text(
        "action: reboot\ntargets:\n  workspace_ids: [" + ", ".join(targets) + "]\n"
        "options:\n  rate: 100\n  burst: 50\n  verify_timeout: 30\nregion: us-east-1\n"
    )
    anyio.run(two_workers_for_two_minutes, postgres_db, str(path), sim.endpoint_url)
    with psycopg.connect(postgres_db) as conn:
        slots = conn.execute(
            "SELECT slot_at, outcome, job_id FROM schedule_slots ORDER BY slot_at"
        ).fetchall()
        jobs = conn.execute(
            "SELECT id, status, started_by FROM jobs ORDER BY created_at"
        ).fetchall()
        entries = conn.execute(
            "SELECT queueing_lock, count(*) FROM procrastinate_jobs GROUP BY queueing_lock"
        ).fetchall()
    # 12:01 and 12:02, each once, each its own job, each on the queue once
    assert [(slot, outcome) for slot, outcome, _ in slots] == [
        (BASE + 30, "started"),
        (BASE + 90, "started"),
    ]
    assert [job_id for _, _, job_id in slots] == [job_id for job_id, _, _ in jobs]
    assert {(status, by) for _, status, by in jobs} == {("queued", "schedule:every-minute")}
    assert sorted(entries) == sorted((job_id, 1) for job_id, _, _ in jobs)
    # a worker runs what the schedule queued
    done = subprocess.run(
        [sys.executable, "-m", "fleetops", "--db", postgres_db, "worker", "--once", "--json"],
        env=base_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    with psycopg.connect(postgres_db) as conn:
        statuses = conn.execute("SELECT status FROM jobs").fetchall()
    assert statuses == [("succeeded",), ("succeeded",)]
    assert sim.stats().calls_by_workspace["RebootWorkspaces"] == dict.fromkeys(targets, 2)
