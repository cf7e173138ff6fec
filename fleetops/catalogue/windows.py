"""Maintenance windows: when a job may start action calls, as pure functions of time.

A window is written ``"SAT 22:00-SUN 04:00"`` (weekly: a day and a time at each end) or
``"HH:MM-HH:MM"`` (daily; an end at or before the start crosses midnight: ``22:00-04:00``), in
the wall clock of an IANA time zone (``--timezone``, default UTC). A job may have several; it
is open when any is. Wall times become UTC instants as in :mod:`fleetops.catalogue.cron`
(PEP 495, fold=0): a window edge in a skipped hour falls just past the change, one in a
repeated hour on its first pass.

Every instant is epoch seconds (UTC); nothing reads the clock. A window that does not parse is
a one-line :class:`UsageError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from fleetops.catalogue.cron import parse_timezone
from fleetops.errors import UsageError

__all__ = ["DAYS", "Span", "Windows", "parse_span", "parse_windows"]

DAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
_EDGE = r"(?:(?P<{0}day>[A-Za-z]{{3}})\s+)?(?P<{0}h>\d{{1,2}}):(?P<{0}m>\d{{2}})"
_SPAN = re.compile(r"^\s*" + _EDGE.format("a") + r"\s*-\s*" + _EDGE.format("b") + r"\s*$")
#: How many days either side of an instant the intervals are laid out (a week and a margin).
_REACH = 8


@dataclass(frozen=True)
class Span:
    """One window: from (day, minute of day) to (day, minute of day); days None: daily."""

    start_day: int | None
    start: int  # minutes after midnight
    end_day: int | None
    end: int

    def on(self, day: datetime) -> tuple[datetime, datetime] | None:
        """The wall-clock interval this window opens on ``day`` (a midnight), if it does."""
        if self.start_day is not None and day.weekday() != self.start_day:
            return None
        opens = day + timedelta(minutes=self.start)
        if self.start_day is None or self.end_day is None:
            ahead = 0 if self.end > self.start else 1
        else:
            ahead = (self.end_day - self.start_day) % 7
            if ahead == 0 and self.end <= self.start:
                ahead = 7
        return opens, day + timedelta(days=ahead, minutes=self.end)


def _day(text: str | None, window: str) -> int | None:
    if text is None:
        return None
    try:
        return DAYS.index(text.upper())
    except ValueError:
        raise UsageError(
            f"--window {window!r}: {text!r} is not a day (MON TUE WED THU FRI SAT SUN)"
        ) from None


def _minutes(hours: str, minutes: str, window: str) -> int:
    h, m = int(hours), int(minutes)
    if h > 24 or m > 59 or (h == 24 and m):
        raise UsageError(f"--window {window!r}: {hours}:{minutes} is not a time of day")
    return h * 60 + m


def parse_span(text: str) -> Span:
    """``"SAT 22:00-SUN 04:00"`` or ``"22:00-04:00"`` → a :class:`Span` (UsageError if not)."""
    match = _SPAN.match(text or "")
    if match is None:
        raise UsageError(
            f'--window {text!r} does not parse: "SAT 22:00-SUN 04:00" (weekly) or '
            '"22:00-04:00" (daily)'
        )
    start_day, end_day = _day(match["aday"], text), _day(match["bday"], text)
    if (start_day is None) != (end_day is None):
        raise UsageError(f"--window {text!r}: give a day at both ends, or at neither")
    start = _minutes(match["ah"], match["am"], text)
    end = _minutes(match["bh"], match["bm"], text)
    if start == end and start_day == end_day and start_day is None:
        raise UsageError(f"--window {text!r} is empty (it opens and closes at the same time)")
    return Span(start_day, start, end_day, end)


@dataclass(frozen=True)
class Windows:
    """A job's maintenance windows in a time zone; no window at all: always open."""

    spans: tuple[Span, ...]
    timezone: str

    def intervals(self, around: float) -> list[tuple[float, float]]:
        """The open intervals (UTC) from a week before ``around`` to a week after, merged."""
        zone = ZoneInfo(self.timezone)
        local = datetime.fromtimestamp(around, zone).replace(tzinfo=None)
        midnight = datetime.combine(local.date(), time())
        found: list[tuple[float, float]] = []
        for offset in range(-_REACH, _REACH + 1):
            day = midnight + timedelta(days=offset)
            for span in self.spans:
                interval = span.on(day)
                if interval is not None:
                    opens, closes = (
                        wall.replace(tzinfo=zone, fold=0).timestamp() for wall in interval
                    )
                    if closes > opens:
                        found.append((opens, closes))
        merged: list[tuple[float, float]] = []
        for opens, closes in sorted(found):
            if merged and opens <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], closes))
            else:
                merged.append((opens, closes))
        return merged

    def open_until(self, now: float) -> float | None:
        """When the window open at ``now`` closes; None when none is open."""
        if not self.spans:
            return float("inf")
        for opens, closes in self.intervals(now):
            if opens <= now < closes:
                return closes
        return None

    def is_open(self, now: float) -> bool:
        return self.open_until(now) is not None

    def next_open(self, now: float) -> float:
        """``now`` if a window is open, else when the next one opens."""
        if self.is_open(now):
            return now
        later = [opens for opens, _ in self.intervals(now) if opens > now]
        if not later:  # cannot happen with a weekly or daily window; be explicit anyway
            raise UsageError("the maintenance windows never open")
        return min(later)


def parse_windows(texts: tuple[str, ...] | list[str], timezone: str | None) -> Windows:
    """A job's ``--window`` values in ``--timezone`` (default UTC), checked."""
    zone = parse_timezone(timezone)
    return Windows(spans=tuple(parse_span(text) for text in texts), timezone=str(zone.key))
