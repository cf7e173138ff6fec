"""Showing a running job.

On a terminal: while planning, one line of describe pages read and WorkSpaces found; then one
bar for the job (done / total, WorkSpaces per second, an ETA) and one line of counters (in
flight, verified, failed, skipped, in doubt when any, calls/s, throttled), packed to the
terminal's width so that no count is ever cut (very large counts wrap between counters).
Elsewhere: the same as a plain line every few seconds (a JSON record of logger
``fleetops.cli.progress`` with ``--log-format json``).

The ETA is honest: the larger of what the API quota still allows (calls left at the buckets'
current rate, plus the learned settle time) and what the recent completion rate says; no ETA
until one of them is known, never one from a bar that stalled.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import anyio
from rich.console import Console, Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

__all__ = ["Meter", "Snapshot", "eta_seconds", "plain_line", "render", "snapshot", "watch"]

log = logging.getLogger("fleetops.cli.progress")

#: Ids per DescribeWorkspaces call (verification polls).
DESCRIBE_IDS = 25
#: Seconds of history the rates are measured over.
WINDOW_S = 15.0
PLANNING = ("starting", "planning")


@dataclass(frozen=True)
class Snapshot:
    """What the display shows at one moment, read from a runner (see ``snapshot``)."""

    job_id: str
    action: str
    phase: str
    total: int
    skipped: int
    pending: int
    in_flight: int  # sent or being sent, not verified yet
    succeeded: int
    failed: int
    in_doubt: int
    plan_pages: int
    plan_found: int
    calls: int
    throttles: int
    wave: int = 0
    waves: int = 0
    batch: int = 25
    quota_rate: float | None = None  # calls/s over every scope; None: no limit
    settle_s: float | None = None
    step: str = ""  # a recipe's current step: "restore (2/3)"
    logoff_waiting: int = 0  # WorkSpaces held until their user logs off

    @property
    def acted(self) -> int:
        """Items with a final outcome of the action: verified, failed or in doubt."""
        return self.succeeded + self.failed + self.in_doubt

    @property
    def done(self) -> int:
        return self.acted + self.skipped


def _int(obj: Any, name: str, default: int = 0) -> int:
    value = getattr(obj, name, default)
    return int(value) if isinstance(value, int | float) else default


def _quota_and_settle(runner: Any) -> tuple[float | None, float | None]:
    """The buckets' current rate summed over the scopes (None if any is unlimited), and the
    largest settle time learned by a scope's verifier."""
    rates: list[float] = []
    unlimited = False
    for client in dict(getattr(runner, "clients", {}) or {}).values():
        bucket = getattr(client, "bucket", None)
        rate = getattr(bucket, "effective_rate", None) or getattr(bucket, "rate", None)
        if isinstance(rate, int | float) and rate > 0:
            rates.append(float(rate))
        else:
            unlimited = True
    settles = []
    for worker in getattr(runner, "workers", ()) or ():
        estimate = getattr(
            getattr(getattr(worker, "verifier", None), "settle", None), "estimate", None
        )
        if isinstance(estimate, int | float):
            settles.append(float(estimate))
    quota = None if unlimited or not rates else sum(rates)
    return quota, (max(settles) if settles else None)


def snapshot(runner: Any) -> Snapshot:
    """Read the runner's live counters (every field defensively: absent means 0)."""
    s = runner.stats
    job = runner.job
    succeeded, failed, in_doubt = _int(s, "succeeded"), _int(s, "failed"), _int(s, "in_doubt")
    skipped, total = _int(s, "skipped"), _int(s, "total")
    if hasattr(s, "verifying"):  # counters by item state: in_flight, then submitted (verifying)
        pending = _int(s, "pending")
        in_flight = _int(s, "in_flight") + _int(s, "verifying")
    else:  # cumulative "submitted"
        in_flight = max(0, _int(s, "submitted") - succeeded - failed - in_doubt)
        pending = max(0, total - skipped - in_flight - succeeded - failed - in_doubt)
    calls = throttles = 0
    if hasattr(runner, "client_stats"):
        client = runner.client_stats()
        calls, throttles = _int(client, "calls"), _int(client, "throttles")
    counted = getattr(s, "calls", None)  # the run's own call counts, when it keeps them
    calls = _int(counted, "calls", calls) if not isinstance(counted, int) else counted
    throttles = _int(s, "throttles", throttles)
    action = getattr(job, "action", "")
    spec = getattr(getattr(runner, "ctx", None), "action", None)
    batch = getattr(spec, "max_batch", 25)
    quota, settle = _quota_and_settle(runner)
    return Snapshot(
        job_id=str(getattr(job, "id", "")),
        action=str(getattr(action, "value", action)),
        phase=str(getattr(s, "phase", "running")),
        step=str(getattr(s, "step", "") or ""),
        total=total,
        skipped=skipped,
        pending=pending,
        in_flight=in_flight,
        succeeded=succeeded,
        failed=failed,
        in_doubt=in_doubt,
        plan_pages=_int(s, "plan_pages"),
        plan_found=_int(s, "plan_found"),
        calls=calls,
        throttles=throttles,
        wave=_int(s, "wave"),
        waves=_int(s, "waves"),
        batch=batch if isinstance(batch, int) and batch > 0 else 25,
        quota_rate=quota,
        settle_s=settle,
        logoff_waiting=_int(s, "logoff_waiting"),
    )


class Meter:
    """Rates over the last ``window`` seconds: WorkSpaces acted on, and API calls."""

    def __init__(self, window: float = WINDOW_S) -> None:
        self.window = window
        self.samples: deque[tuple[float, int, int]] = deque()

    def add(self, now: float, snap: Snapshot) -> None:
        self.samples.append((now, snap.acted, snap.calls))
        while len(self.samples) > 2 and now - self.samples[0][0] > self.window:
            self.samples.popleft()

    def _rate(self, index: int) -> float | None:
        if len(self.samples) < 2:
            return None
        first, last = self.samples[0], self.samples[-1]
        span = last[0] - first[0]
        return (last[index] - first[index]) / span if span > 0 else None

    @property
    def items_per_s(self) -> float | None:
        return self._rate(1)

    @property
    def calls_per_s(self) -> float | None:
        return self._rate(2)


def eta_seconds(snap: Snapshot, items_per_s: float | None) -> float | None:
    """Seconds left, or None when nothing honest can be said yet."""
    remaining = snap.total - snap.done
    if remaining <= 0:
        return 0.0
    if snap.phase in PLANNING:
        return None
    by_quota = None
    if snap.quota_rate:
        calls = math.ceil(snap.pending / snap.batch) + math.ceil(remaining / DESCRIBE_IDS)
        by_quota = calls / snap.quota_rate + (snap.settle_s or 0.0)
    by_rate = remaining / items_per_s if items_per_s else None
    known = [x for x in (by_quota, by_rate) if x is not None]
    return max(known) if known else None


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    hours, rest = divmod(round(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _n(value: int) -> str:
    return f"{value:,}"


def _rate(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:,.0f}" if value >= 10 else f"{value:.1f}"


def counters(snap: Snapshot, calls_per_s: float | None) -> list[str]:
    """The counters, each an unbreakable piece."""
    parts = [
        f"in flight {_n(snap.in_flight)}",
        f"verified {_n(snap.succeeded)}",
        f"failed {_n(snap.failed)}",
        f"skipped {_n(snap.skipped)}",
    ]
    if snap.in_doubt:  # only destructive actions can leave items in doubt: rare, shown when so
        parts.append(f"in doubt {_n(snap.in_doubt)}")
    if snap.logoff_waiting:
        parts.append(f"waiting for logoff {_n(snap.logoff_waiting)}")
    parts += [f"{_rate(calls_per_s)} calls/s", f"throttled {_n(snap.throttles)}"]
    if snap.waves:
        parts.append(f"wave {snap.wave}/{snap.waves}")
    return parts


def pack(parts: Iterable[str], width: int, sep: str = "  ") -> list[str]:
    """Greedy lines of ``parts`` no wider than ``width`` (a part never splits)."""
    lines: list[str] = []
    for part in parts:
        if lines and len(lines[-1]) + len(sep) + len(part) <= width:
            lines[-1] += sep + part
        else:
            lines.append(part)
    return lines


def _planning(snap: Snapshot, elapsed: float) -> str:
    return (
        f"planning: {_n(snap.plan_pages)} describe pages read, "
        f"{_n(snap.plan_found)} WorkSpaces found  {_clock(elapsed)}"
    )


def render(snap: Snapshot, meter: Meter, width: int, elapsed: float) -> RenderableType:
    """The terminal display: planning line, or bar + counters, within ``width`` columns."""
    if snap.phase in PLANNING:
        return Text(_planning(snap, elapsed), no_wrap=True, overflow="ellipsis")
    eta = eta_seconds(snap, meter.items_per_s)
    percent = 100 * snap.done / snap.total if snap.total else 100.0
    figures = (
        f"{_n(snap.done)}/{_n(snap.total)} {percent:3.0f}%  "
        f"{_rate(meter.items_per_s)}/s  ETA {_clock(eta)}"
    )
    label = snap.action if snap.phase == "running" else snap.phase
    if snap.step:
        label = f"{label} · {snap.step}"
    bar = Table.grid(expand=True, padding=(0, 1))
    bar.add_column(no_wrap=True)
    bar.add_column(ratio=1)
    bar.add_column(no_wrap=True, justify="right")
    bar.add_row(
        Text(label, style="bold"),
        ProgressBar(total=max(snap.total, 1), completed=snap.done),
        Text(figures),
    )
    parts = counters(snap, meter.calls_per_s)
    lines = pack(parts, width)
    if len(lines) > 1 and len(pack(parts, width, " ")) == 1:  # one line, closer together
        lines = pack(parts, width, " ")
    return Group(bar, *(Text(line, no_wrap=True) for line in lines))


def plain_line(snap: Snapshot, meter: Meter, elapsed: float) -> str:
    """One line for logs and pipes."""
    head = f"job {snap.job_id} {snap.phase}"
    if snap.step:
        head += f" ({snap.action} {snap.step})"
    if snap.phase in PLANNING:
        return f"{head}: {_planning(snap, elapsed).removeprefix('planning: ')}"
    eta = eta_seconds(snap, meter.items_per_s)
    return (
        f"{head}: {_n(snap.done)}/{_n(snap.total)} done, {_rate(meter.items_per_s)}/s, "
        f"ETA {_clock(eta)}; " + ", ".join(counters(snap, meter.calls_per_s))
    )


def _fields(snap: Snapshot, meter: Meter) -> dict[str, Any]:
    fields = asdict(snap)
    fields["done"] = snap.done
    fields["items_per_s"] = meter.items_per_s
    fields["calls_per_s"] = meter.calls_per_s
    fields["eta_s"] = eta_seconds(snap, meter.items_per_s)
    return fields


async def _plain(runner: Any, console: Console, interval: float, as_json: bool) -> None:
    """A line every ``interval`` seconds when something changed (rates sampled each second)."""
    meter, last, last_at = Meter(), "", 0.0
    started = time.monotonic()
    while True:
        await anyio.sleep(min(interval, 1.0))
        now = time.monotonic()
        snap = snapshot(runner)
        meter.add(now, snap)
        line = plain_line(snap, meter, now - started)
        if line == last or now - last_at < interval:
            continue
        if as_json:
            log.info(line, extra={"progress": _fields(snap, meter)})
        else:
            console.print(line, highlight=False, markup=False, soft_wrap=True)
        last, last_at = line, now


async def watch(runner: Any, console: Console, *, quiet: bool, interval: float = 5.0) -> None:
    """Render progress until cancelled."""
    from fleetops.cli.logs import json_enabled

    if quiet:
        await anyio.sleep_forever()
    if not console.is_terminal or json_enabled():
        await _plain(runner, console, interval, json_enabled())
        return
    from rich.live import Live

    # A console made on first use (the CLI's) is a proxy: Live needs the Console itself.
    console = console if isinstance(console, Console) else getattr(console, "_console", console)

    meter = Meter()
    started = time.monotonic()

    def frame() -> RenderableType:
        now = time.monotonic()
        snap = snapshot(runner)
        meter.add(now, snap)
        return render(snap, meter, console.width, now - started)

    with Live(frame(), console=console, refresh_per_second=4, transient=False) as live:
        try:
            while True:
                await anyio.sleep(0.25)
                live.update(frame())
        finally:  # the last frame shows where the job ended, not where it was 0.25 s before
            live.update(frame(), refresh=True)
