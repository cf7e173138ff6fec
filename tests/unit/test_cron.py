"""When a schedule is due: cron slots in a time zone across DST changes, catch-up and missed
slots, and the one-line refusals of what cannot be read."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fleetops.catalogue.cron import (
    DEFAULT_CATCH_UP,
    due,
    format_duration,
    parse_cron,
    parse_duration,
    parse_timezone,
)
from fleetops.errors import UsageError


def utc(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def shown(instants: list[float]) -> list[str]:
    return [datetime.fromtimestamp(t, UTC).strftime("%m-%d %H:%M") for t in instants]


#: (cron, zone, from UTC, to UTC, the slots in UTC): each DST change once, in both directions.
DST_TABLE = [
    # Berlin springs forward 2026-03-29 02:00 CET -> 03:00 CEST: 02:30 does not exist; it runs
    # once, at 03:30 CEST (01:30 UTC), and the days around it at 02:30 local as usual
    (
        "30 2 * * *",
        "Europe/Berlin",
        "2026-03-28T00:00",
        "2026-03-31T00:00",
        ["03-28 01:30", "03-29 01:30", "03-30 00:30"],
    ),
    # hourly across the same gap: 02:00 (skipped) and 03:00 are one instant: one run, not two
    (
        "0 * * * *",
        "Europe/Berlin",
        "2026-03-28T23:30",
        "2026-03-29T02:30",
        ["03-29 00:00", "03-29 01:00", "03-29 02:00"],
    ),
    # Berlin falls back 2026-10-25 03:00 CEST -> 02:00 CET: 02:30 happens twice; it runs once
    (
        "30 2 * * *",
        "Europe/Berlin",
        "2026-10-24T00:00",
        "2026-10-27T00:00",
        ["10-24 00:30", "10-25 00:30", "10-26 01:30"],
    ),
    # New York falls back 2026-11-01 02:00 EDT -> 01:00 EST: the repeated 01:xx runs once
    (
        "*/30 * * * *",
        "America/New_York",
        "2026-11-01T04:15",
        "2026-11-01T07:15",
        ["11-01 04:30", "11-01 05:00", "11-01 05:30", "11-01 07:00"],
    ),
    # New York springs forward 2026-03-08 02:00 EST -> 03:00 EDT: 02:15 runs once, at 03:15 EDT
    (
        "15 2 * * *",
        "America/New_York",
        "2026-03-07T00:00",
        "2026-03-10T00:00",
        ["03-07 07:15", "03-08 07:15", "03-09 06:15"],
    ),
    # weekday names, in UTC
    (
        "0 3 * * SUN",
        "UTC",
        "2026-12-01T00:00",
        "2026-12-20T00:00",
        ["12-06 03:00", "12-13 03:00"],
    ),
]


@pytest.mark.parametrize(("cron", "zone", "start", "end", "expected"), DST_TABLE)
def test_slots_across_dst_changes(
    cron: str, zone: str, start: str, end: str, expected: list[str]
) -> None:
    assert shown(parse_cron(cron, zone).slots_between(utc(start), utc(end))) == expected


def test_next_after_skips_the_repeated_hour() -> None:
    cron = parse_cron("30 1 * * *", "America/New_York")
    # 01:30 EDT on 2026-11-01 is 05:30 UTC; after it, 01:30 EST (06:30 UTC) is not a second run
    assert shown([cron.next_after(utc("2026-11-01T05:30"))]) == ["11-02 06:30"]


def test_the_newest_slot_starts_late_once_and_older_ones_are_missed() -> None:
    cron = parse_cron("*/10 * * * *")
    todo = due(cron, cursor=utc("2026-12-04T10:00"), now=utc("2026-12-04T10:35"), catch_up=3600)
    assert shown([todo.start or 0]) == ["12-04 10:30"]
    assert shown(list(todo.missed)) == ["12-04 10:10", "12-04 10:20"]
    assert todo.late_by == 300


def test_a_slot_older_than_the_catch_up_is_missed() -> None:
    cron = parse_cron("0 3 * * *")
    todo = due(cron, cursor=utc("2026-12-03T12:00"), now=utc("2026-12-04T05:00"), catch_up=3600)
    assert todo.start is None
    assert shown(list(todo.missed)) == ["12-04 03:00"]


def test_nothing_is_due_between_slots() -> None:
    cron = parse_cron("0 3 * * *")
    todo = due(cron, cursor=utc("2026-12-04T03:00"), now=utc("2026-12-04T20:00"), catch_up=3600)
    assert todo.start is None and todo.missed == ()


@pytest.mark.parametrize(
    ("cron", "words"),
    [
        ("0 3 * *", "five fields"),
        ("61 * * * *", "does not parse"),
        ("0 3 * * FUNDAY", "does not parse"),
        ("* * * * * *", "five fields"),
        ("0 0 31 2 *", "never matches"),
    ],
)
def test_a_bad_cron_is_one_line(cron: str, words: str) -> None:
    with pytest.raises(UsageError, match=words) as caught:
        parse_cron(cron)
    assert "\n" not in str(caught.value)


def test_an_unknown_time_zone_is_refused() -> None:
    with pytest.raises(UsageError, match="unknown time zone 'Mars/Olympus'"):
        parse_timezone("Mars/Olympus")
    assert str(parse_timezone(None).key) == "UTC"
    assert parse_cron("@daily", "Europe/Berlin").expression == "@daily"


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("30m", 1800), ("2h", 7200), ("1d", 86400), ("45", 45)]
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "-5m", "0", "3w"])
def test_a_bad_duration_is_refused(text: str) -> None:
    with pytest.raises(UsageError):
        parse_duration(text, what="--catch-up")


def test_durations_are_shown_short() -> None:
    assert format_duration(DEFAULT_CATCH_UP) == "1h"
    assert format_duration(90) == "90s"
    assert format_duration(1800) == "30m"
