"""Showing a running job: rich progress bars on a terminal, plain lines otherwise."""

from __future__ import annotations

import logging
import time

import anyio
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from fleetops.runner import JobRunner

__all__ = ["watch"]

log = logging.getLogger("fleetops")


def _line(runner: JobRunner) -> str:
    s = runner.stats
    calls = runner.client_stats()
    done = s.succeeded + s.failed
    wave = f" wave {s.wave}/{s.waves}" if s.waves else ""
    return (
        f"job {runner.job.id} {s.phase}{wave}: {s.eligible} eligible, {s.skipped} skipped, "
        f"{s.submitted} submitted, {s.succeeded} verified, {s.failed} failed, "
        f"{done}/{s.eligible} done; {calls.calls} calls, "
        f"{calls.throttles} throttled, {calls.retries} retries"
    )


async def watch(runner: JobRunner, console: Console, *, quiet: bool, interval: float = 5.0) -> None:
    """Render progress until cancelled."""
    if quiet:
        await anyio.sleep_forever()
    if not console.is_terminal:
        last = ""
        while True:
            await anyio.sleep(interval)
            line = _line(runner)
            if line != last:
                console.print(line, highlight=False)
                last = line
    columns = (
        TextColumn("[bold]{task.description:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False, refresh_per_second=4) as bars:
        tasks: dict[str, TaskID] = {
            name: bars.add_task(name, total=None)
            for name in ("submitted", "verified", "failed", "skipped")
        }
        info = bars.add_task("", total=None, visible=True)
        started = time.monotonic()
        while True:
            s = runner.stats
            total = max(s.eligible, 1)
            bars.update(tasks["submitted"], completed=s.submitted, total=total)
            bars.update(tasks["verified"], completed=s.succeeded, total=total)
            bars.update(tasks["failed"], completed=s.failed, total=total)
            bars.update(tasks["skipped"], completed=s.skipped, total=max(s.total, 1))
            wave = f"  wave {s.wave}/{s.waves}" if s.waves else ""
            rate = s.succeeded / max(0.001, time.monotonic() - started)
            calls = runner.client_stats()
            regions = f"  {len(runner.clients)} regions" if len(runner.clients) > 1 else ""
            bars.update(
                info,
                description=(
                    f"{s.phase}{wave}{regions}  {rate:.1f}/s  calls {calls.calls}  "
                    f"throttled {calls.throttles}  retries {calls.retries}"
                ),
            )
            await anyio.sleep(0.25)
