"""Maintenance windows, against the simulator over HTTP and a SQLite file migrated by alembic,
with a clock that runs a minute a second: a job planned before its window waits for it; the
window closing mid-job stops new batches (no action call outside it, as the simulator recorded
them), leaves items pending and the job ``waiting`` with ``next_window_at``; the next opening
continues the same plan to its end."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from fleetops import api
from fleetops.catalogue.specs import RunRequest, Where
from fleetops.engine import windows as window_time
from fleetops.errors import UsageError
from fleetops.sim import Simulator
from fleetops.states import ItemState, JobStatus
from fleetops.store import Store

#: 2026-12-04 12:00:30 UTC (fake): half a minute before the first window opens
BASE = 1796385630.0
SPEED = 20.0  # fake seconds per real second
#: A request decided inside the window reaches the simulator (in this process, sharing its
#: interpreter) a moment later: this much real time, at most.
IN_TRANSIT = 0.25
WINDOWS = ["12:01-12:02", "12:03-12:09"]
OPEN = [(BASE + 30, BASE + 90), (BASE + 150, BASE + 510)]


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(
        workspaces=40, seed=21, rate=None, transition_seconds=0.05, stale_snapshot_fraction=0.0
    ).run_in_thread() as running:
        yield running


@pytest.fixture
def fast_clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The engine's window clock: BASE when first read (once the job is planned), then SPEED
    times faster than the real one. Returns [the real time of that first read]."""
    start: list[float] = []

    def now() -> float:
        if not start:
            start.append(time.time())
        return BASE + (time.time() - start[0]) * SPEED

    monkeypatch.setattr(window_time, "clock", now)
    return start


def test_no_action_call_outside_the_window(
    sim: Simulator, tmp_path: Path, fast_clock: list[float]
) -> None:
    ids = sim.workspace_ids()[:30]
    spec = api.build_spec(
        RunRequest(
            "tag",
            selectors={"workspace_ids": ids},
            params={"set": ["patched=2026-12"]},
            options={"window": WINDOWS, "timezone": "UTC", "rate": 8.0, "burst": 1,
                     "concurrency": 1},
            where=Where(region=("us-east-1",), endpoint_url=(sim.endpoint_url,)),
        )
    )  # fmt: skip
    seen: list[tuple[str, int, float | None]] = []

    async def main() -> str:
        store = await Store.open(tmp_path / "fleetops.db")
        try:
            job = await api.create_job(store, spec)
            done = anyio.Event()

            async def watch() -> None:
                while not done.is_set():
                    now = await store.get_job(job.id)
                    counts = await store.counts(job.id)
                    seen.append((now.status.value, counts[ItemState.PENDING], now.next_window_at))
                    await anyio.sleep(0.05)

            async with anyio.create_task_group() as tg:
                tg.start_soon(watch)
                finished = await api.run_job(store, job.id)
                done.set()
            assert finished.status is JobStatus.SUCCEEDED, finished.message
            assert (await store.counts(job.id))[ItemState.SUCCEEDED] == 30
            assert finished.next_window_at is None
            return job.id
        finally:
            await store.close()

    anyio.run(main)

    def fake(t: float) -> float:
        return BASE + (t - fast_clock[0]) * SPEED

    tagged = [fake(t) for t in sim.stats().call_times["CreateTags"]]
    assert len(tagged) == 30
    slack = IN_TRANSIT * SPEED
    assert all(any(start <= t < end + slack for start, end in OPEN) for t in tagged), tagged
    assert any(t < OPEN[0][1] for t in tagged) and any(t >= OPEN[1][0] for t in tagged), (
        sorted(tagged),
        sorted(set(seen)),
        [fake(t) for t in sim.stats().call_times["DescribeWorkspaces"]],
    )
    # planning described the fleet before the first window opened
    assert min(fake(t) for t in sim.stats().call_times["DescribeWorkspaces"]) < OPEN[0][0]
    # waiting before the first window, and between the two with items still pending
    waiting = [(pending, at) for status, pending, at in seen if status == "waiting"]
    assert (30, OPEN[0][0]) in waiting
    assert any(0 < pending < 30 and at == OPEN[1][0] for pending, at in waiting), waiting


def test_a_window_that_cannot_parse_is_refused() -> None:
    for bad, words in [
        ("SAT 22:00-04:00", "a day at both ends"),
        ("25:00-26:00", "not a time of day"),
        ("soon", "does not parse"),
    ]:
        with pytest.raises(UsageError, match=words):
            api.build_spec(RunRequest("reboot", options={"window": [bad]}))
    with pytest.raises(UsageError, match="unknown time zone"):
        api.build_spec(
            RunRequest("reboot", options={"window": ["22:00-04:00"], "timezone": "Mars/Base"})
        )
