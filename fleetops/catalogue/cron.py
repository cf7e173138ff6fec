"""When a schedule is due: cron expressions read in a time zone, and durations, as pure functions.

A cron expression (five fields, or ``@hourly``/``@daily``/``@weekly``/``@monthly``/``@yearly``)
is read by croniter against the *wall clock* of an IANA time zone (zoneinfo, with tzdata so
that every zone exists on every system); each wall-clock slot is then turned into one UTC
instant. Daylight saving time, by PEP 495's rules:

* a slot in an hour that is skipped (spring forward, 02:30 in Europe/Berlin on the last Sunday
  of March) falls at the same distance past the change (03:30 CEST): it runs once, never lost;
  two slots that land on the same instant (02:00 skipped and 03:00) are one slot;
* a slot in an hour that repeats (fall back) runs once, on its first pass.

Every instant here is epoch seconds (UTC); nothing reads the clock: ``now`` is always given.
A problem with what a user wrote is a one-line :class:`UsageError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from fleetops.errors import UsageError

__all__ = [
    "DEFAULT_CATCH_UP",
    "Cron",
    "Due",
    "due",
    "format_duration",
    "parse_cron",
    "parse_duration",
    "parse_timezone",
]

#: A slot missed while nothing ran is started late within this many seconds (1 h), else missed.
DEFAULT_CATCH_UP = 3600.0
_ALIASES = frozenset({"@hourly", "@daily", "@midnight", "@weekly", "@monthly", "@yearly"})
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_timezone(name: str | None) -> ZoneInfo:
    """An IANA time zone (``Europe/Berlin``; None or empty: UTC); unknown is a UsageError."""
    if not name:
        return ZoneInfo("UTC")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise UsageError(
            f"unknown time zone {name!r} (an IANA name: UTC, Europe/Berlin, America/New_York)"
        ) from exc


def parse_duration(text: str, *, what: str = "duration") -> float:
    """``30m``, ``2h``, ``90s``, ``1d`` or plain seconds → seconds (> 0)."""
    match = _DURATION.match(text or "")
    if match is None:
        raise UsageError(f"{what} {text!r} is not a duration (e.g. 90s, 30m, 2h, 1d)")
    seconds = float(match.group(1)) * _UNIT_SECONDS[(match.group(2) or "s").lower()]
    if seconds <= 0:
        raise UsageError(f"{what} {text!r} must be longer than zero")
    return seconds


def format_duration(seconds: float) -> str:
    """Seconds as the shortest of ``1d``, ``2h``, ``30m``, ``90s``."""
    for unit in ("d", "h", "m"):
        if seconds >= _UNIT_SECONDS[unit] and seconds % _UNIT_SECONDS[unit] == 0:
            return f"{int(seconds // _UNIT_SECONDS[unit])}{unit}"
    return f"{seconds:g}s"


@dataclass(frozen=True)
class Cron:
    """A checked cron expression in a time zone."""

    expression: str
    timezone: str

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def _utc(self, wall: datetime) -> float:
        # fold=0: a skipped wall time takes the offset before the change, a repeated one its
        # first pass (PEP 495)
        return wall.replace(tzinfo=self.zone, fold=0).timestamp()

    def slots_between(self, after: float, until: float, *, newest: int = 1000) -> list[float]:
        """The slots in ``(after, until]`` as UTC instants, oldest first, each once; at most the
        ``newest`` of them (a schedule silent for a year must not cost a year of slots)."""
        zone = self.zone
        # walk the wall clock back from ``until`` (3 h of margin either side: around a DST
        # change a wall time maps up to an hour away from its neighbours); keep the instants
        # that fall in the interval
        first_wall = datetime.fromtimestamp(after, zone).replace(tzinfo=None) - timedelta(hours=3)
        wall = datetime.fromtimestamp(until, zone).replace(tzinfo=None) + timedelta(hours=3)
        found: set[float] = set()
        iterator = croniter(self.expression, wall)
        while len(found) < newest:
            wall = iterator.get_prev(datetime)
            if wall < first_wall:
                break
            instant = self._utc(wall)
            if after < instant <= until:
                found.add(instant)
        return sorted(found)

    def next_after(self, after: float) -> float:
        """The first slot strictly after ``after`` (UTC)."""
        zone = self.zone
        wall = datetime.fromtimestamp(after, zone).replace(tzinfo=None) - timedelta(hours=3)
        iterator = croniter(self.expression, wall)
        while True:
            instant = self._utc(iterator.get_next(datetime))
            if instant > after:
                return instant


def parse_cron(expression: str, timezone: str | None = None) -> Cron:
    """A cron expression (five fields: minute hour day-of-month month day-of-week, names such as
    ``SUN`` allowed; or an ``@daily``-style alias) in ``timezone`` (default UTC), checked."""
    text = " ".join((expression or "").split())
    zone = parse_timezone(timezone)
    if text.lower() in _ALIASES:
        text = text.lower()
    elif len(text.split()) != 5:
        raise UsageError(
            f"cron {expression!r} needs five fields: minute hour day-of-month month day-of-week "
            '(e.g. "0 3 * * SUN")'
        )
    if not croniter.is_valid(text):
        raise UsageError(f'cron {expression!r} does not parse (e.g. "0 3 * * SUN", "*/15 * * * *")')
    cron = Cron(expression=text, timezone=str(zone.key))
    try:
        cron.next_after(datetime(2026, 1, 1, tzinfo=UTC).timestamp())
    except (ValueError, KeyError) as exc:  # e.g. "0 0 31 2 *": a day that never comes
        raise UsageError(f"cron {expression!r} never matches a date") from exc
    return cron


#: At most this many missed slots are recorded one by one (the newest); older ones only move
#: the cursor.
MAX_MISSED_ROWS = 100


@dataclass(frozen=True)
class Due:
    """What a schedule has to do now: start ``start`` (a slot, UTC), record ``missed``."""

    start: float | None
    missed: tuple[float, ...]
    late_by: float = 0.0  # seconds between the slot started and now


def due(cron: Cron, cursor: float, now: float, catch_up: float) -> Due:
    """The slots of ``cron`` after ``cursor`` up to ``now``: the newest is started if it is no
    more than ``catch_up`` seconds old (late at most once: the older ones are missed, not run
    one after another), else missed too. Pure."""
    slots = cron.slots_between(cursor, now, newest=MAX_MISSED_ROWS + 1)
    if not slots:
        return Due(start=None, missed=())
    newest = slots[-1]
    if now - newest <= catch_up:
        missed = tuple(slots[:-1][-MAX_MISSED_ROWS:])
        return Due(start=newest, missed=missed, late_by=now - newest)
    return Due(start=None, missed=tuple(slots[-MAX_MISSED_ROWS:]))
