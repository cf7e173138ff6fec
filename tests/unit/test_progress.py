"""Progress: one bar and one line of counters within 80 columns, a planning line, an honest ETA,
plain lines off a terminal."""

from __future__ import annotations

import io
from dataclasses import dataclass, field, replace
from typing import Any

import anyio
from rich.console import Console

from fleetops.cli.progress import Meter, Snapshot, eta_seconds, plain_line, render, snapshot, watch


@dataclass
class _Stats:  # today's counters: "submitted" is cumulative
    total: int = 0
    skipped: int = 0
    submitted: int = 0
    succeeded: int = 0
    failed: int = 0
    in_doubt: int = 0
    wave: int = 0
    waves: int = 0
    phase: str = "running"


@dataclass
class _StateStats(_Stats):  # counters by item state, with the planning counters
    pending: int = 0
    in_flight: int = 0
    verifying: int = 0
    plan_pages: int = 0
    plan_found: int = 0


@dataclass
class _Bucket:
    rate: float | None
    effective_rate: float | None = None


@dataclass
class _Client:
    bucket: _Bucket
    calls: int = 0
    throttles: int = 0


@dataclass
class _Job:
    id: str = "j20260101000000abcdef"
    action: str = "reboot"


@dataclass
class _Runner:
    stats: Any
    clients: dict[str, _Client] = field(default_factory=dict)
    job: _Job = field(default_factory=_Job)

    def client_stats(self) -> Any:
        calls = sum(c.calls for c in self.clients.values())
        throttles = sum(c.throttles for c in self.clients.values())
        return _Client(_Bucket(None), calls, throttles)


def _big() -> Snapshot:
    return Snapshot(
        job_id="j20260101000000abcdef",
        action="reboot",
        phase="running",
        total=1_000_000,
        skipped=98_765,
        pending=400_000,
        in_flight=12_345,
        succeeded=456_789,
        failed=23_456,
        in_doubt=7_890,
        plan_pages=40_000,
        plan_found=1_000_000,
        calls=123_456,
        throttles=4_321,
        quota_rate=40.0,
        settle_s=3.0,
    )


def _meter(snap: Snapshot, items: int, calls: int, seconds: float = 10.0) -> Meter:
    meter = Meter()
    meter.add(0.0, replace(snap, succeeded=snap.succeeded - items, calls=snap.calls - calls))
    meter.add(seconds, snap)
    return meter


def test_bar_and_counters_fit_80_columns_without_cutting_a_count() -> None:
    snap = _big()
    console = Console(width=80, record=True, file=io.StringIO(), color_system=None)
    console.print(render(snap, _meter(snap, 2_500, 400), 80, 12.0))
    text = console.export_text()
    lines = text.splitlines()
    assert all(len(line) <= 80 for line in lines), lines
    assert "…" not in text
    assert "━" in lines[0] and "1,000,000" in lines[0] and "ETA" in lines[0]
    for piece in (
        "in flight 12,345",
        "verified 456,789",
        "failed 23,456",
        "skipped 98,765",
        "in doubt 7,890",
        "40 calls/s",
        "throttled 4,321",
    ):
        assert piece in text, (piece, text)
    assert len(lines) <= 3  # the bar, then the counters (wrapped between counters only)


def test_counters_of_a_typical_job_are_one_line_at_80_columns() -> None:
    snap = replace(
        _big(),
        total=20_000,
        skipped=1_500,
        pending=9_000,
        in_flight=250,
        succeeded=9_100,
        failed=150,
        in_doubt=0,
        calls=900,
        throttles=12,
    )
    console = Console(width=80, record=True, file=io.StringIO(), color_system=None)
    console.print(render(snap, _meter(snap, 500, 80), 80, 30.0))
    lines = console.export_text().splitlines()
    assert len(lines) == 2 and all(len(line) <= 80 for line in lines), lines
    assert lines[1] == (
        "in flight 250 verified 9,100 failed 150 skipped 1,500 8.0 calls/s throttled 12"
    )


def test_planning_shows_pages_read_and_workspaces_found() -> None:
    snap = replace(_big(), phase="planning", plan_pages=123, plan_found=3_075)
    console = Console(width=80, record=True, file=io.StringIO(), color_system=None)
    console.print(render(snap, Meter(), 80, 65.0))
    (line,) = console.export_text().splitlines()
    assert line == "planning: 123 describe pages read, 3,075 WorkSpaces found  1:05"
    assert eta_seconds(snap, 100.0) is None


def test_eta_is_the_slower_of_quota_and_observed_rate() -> None:
    snap = replace(_big(), total=1000, skipped=0, succeeded=500, failed=0, in_doubt=0)
    snap = replace(snap, pending=250, in_flight=250, quota_rate=10.0, settle_s=4.0)
    # quota: 250/25 action calls + 500/25 verify calls = 30 calls at 10/s, + 4 s settle
    assert eta_seconds(snap, None) == 7.0
    assert eta_seconds(snap, 10.0) == 50.0  # 500 left at 10/s is slower: it wins
    assert eta_seconds(replace(snap, quota_rate=None), None) is None  # nothing known: no ETA
    assert eta_seconds(replace(snap, succeeded=1000, pending=0, in_flight=0), None) == 0.0


def test_a_stalled_rate_gives_no_eta_rather_than_a_made_up_one() -> None:
    snap = replace(_big(), quota_rate=None, settle_s=None)
    meter = _meter(snap, 0, 0)  # nothing finished in the window
    assert meter.items_per_s == 0.0
    assert eta_seconds(snap, meter.items_per_s) is None
    assert "ETA –" in plain_line(snap, meter, 30.0)


def test_snapshot_reads_cumulative_and_by_state_counters() -> None:
    clients = {"us-east-1": _Client(_Bucket(2.0), 100, 3), "eu-west-1": _Client(_Bucket(2.0, 1.0))}
    old = _Runner(_Stats(total=100, skipped=10, submitted=60, succeeded=40, failed=5), clients)
    snap = snapshot(old)
    assert (snap.in_flight, snap.pending, snap.done) == (15, 30, 55)
    assert (snap.calls, snap.throttles, snap.quota_rate) == (100, 3, 3.0)
    new = _Runner(
        _StateStats(
            total=100,
            skipped=10,
            pending=20,
            in_flight=5,
            verifying=10,
            succeeded=60,
            failed=5,
            phase="planning",
            plan_pages=4,
            plan_found=100,
        ),
        {"us-east-1": _Client(_Bucket(None))},
    )
    snap = snapshot(new)
    assert (snap.in_flight, snap.pending, snap.done, snap.plan_pages) == (15, 20, 75, 4)
    assert snap.quota_rate is None  # an unlimited scope: the quota bounds nothing
    assert plain_line(snap, Meter(), 3.0) == (
        "job j20260101000000abcdef planning: 4 describe pages read, 100 WorkSpaces found  0:03"
    )


def test_off_a_terminal_it_prints_plain_lines() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=80)
    runner = _Runner(_Stats(total=10, submitted=4, succeeded=2), {"r": _Client(_Bucket(5.0), 7)})

    async def main() -> None:
        with anyio.move_on_after(0.5):
            await watch(runner, console, quiet=False, interval=0.1)

    anyio.run(main)
    lines = out.getvalue().splitlines()
    assert lines, "no progress line printed"
    assert lines[0].startswith("job j20260101000000abcdef running: 2/10 done")
    assert "in flight 2, verified 2, failed 0" in lines[0]
    assert "\x1b[" not in out.getvalue()  # no terminal control codes
    assert len(set(lines)) == len(lines)  # a line only when something changed


def test_snapshot_reads_the_engines_run_stats() -> None:
    from fleetops.engine.types import RunStats

    stats = RunStats()
    stats.reset_counts(
        {"pending": 30, "in_flight": 25, "submitted": 50, "succeeded": 880, "failed": 7,
         "skipped": 8, "in_doubt": 0}
    )  # fmt: skip
    stats.phase, stats.plan_pages, stats.plan_found = "running", 40, 1000
    stats.calls.record("RebootWorkspaces", 2, None)
    stats.throttle_sources.append(lambda: 3)
    snap = snapshot(_Runner(stats))
    assert (snap.total, snap.pending, snap.in_flight, snap.done) == (1000, 30, 75, 895)
    assert (snap.calls, snap.throttles, snap.plan_pages, snap.plan_found) == (1, 3, 40, 1000)
