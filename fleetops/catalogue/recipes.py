"""Recipes: maintenance in several steps, decided WorkSpace by WorkSpace.

``recover`` is AWS's runbook for an UNHEALTHY WorkSpace (AWSSupport-RecoverWorkSpace): reboot
it; if it is not AVAILABLE once settled, restore it; if still not, rebuild it. Each rung is
an action of the catalogue (:mod:`fleetops.catalogue.actions`), with its own eligibility,
evidence and in-doubt rule; this module holds what the recipe adds, as pure data and pure
functions: which rungs exist and in which order, how ``--ladder`` and ``--settle`` read, and
what a step's outcome means for the next one (:func:`climbs`).

Invariants: a ladder names each rung once, in the runbook's order (a lighter remedy is never
tried after a heavier one); a WorkSpace climbs only from a failed step (it is not AVAILABLE
once settled, or the rung was refused); a step that succeeded, was skipped, was cancelled or is
in doubt ends the climb (an in-doubt destructive step holds the WorkSpace for the operator).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from fleetops.errors import UsageError
from fleetops.states import ItemState

__all__ = [
    "DEFAULT_LADDER",
    "DEFAULT_SETTLE",
    "RECIPES",
    "RECOVER_RUNGS",
    "SNAPSHOT_GUARD",
    "climbs",
    "ladder_of",
    "parse_duration",
    "parse_ladder",
    "settle_of",
]

#: The actions of the catalogue that are recipes (several steps per WorkSpace).
RECIPES: tuple[str, ...] = ("recover",)
#: The rungs of recover, lightest first: the order any ladder keeps.
RECOVER_RUNGS: tuple[str, ...] = ("reboot", "restore", "rebuild")
DEFAULT_LADDER: tuple[str, ...] = RECOVER_RUNGS
#: The error code of a step skipped by its snapshot-age guard (the WorkSpace climbs on).
SNAPSHOT_GUARD = "SnapshotGuard"
#: Seconds a rung may take to bring a WorkSpace back to AVAILABLE (``--settle 10m``).
DEFAULT_SETTLE = 600.0

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h)?\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1.0, "m": 60.0, "h": 3600.0}


def parse_ladder(value: str | Sequence[str]) -> list[str]:
    """``"reboot,restore,rebuild"`` (or a list) → the rungs; anything else is a one-line
    :class:`UsageError`."""
    parts = value.split(",") if isinstance(value, str) else [str(v) for v in value]
    rungs = [part.strip().lower() for part in parts if part.strip()]
    known = ", ".join(RECOVER_RUNGS)
    if not rungs:
        raise UsageError(f"--ladder needs at least one of {known}")
    for rung in rungs:
        if rung not in RECOVER_RUNGS:
            raise UsageError(f"--ladder: {rung!r} is not a rung of recover (rungs: {known})")
    if len(set(rungs)) != len(rungs):
        raise UsageError("--ladder names a rung twice (no rung is sent twice to a WorkSpace)")
    if rungs != sorted(rungs, key=RECOVER_RUNGS.index):
        raise UsageError(f"--ladder climbs in the order {known}, lightest first")
    return rungs


def parse_duration(value: str | float | int) -> float:
    """``"10m"``, ``"90s"``, ``"1h"`` or seconds → seconds (positive)."""
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if match is None:
            raise UsageError(f"--settle {value!r} must be a duration such as 90s, 10m or 1h")
        seconds = float(match.group(1)) * _UNIT_SECONDS[(match.group(2) or "s").lower()]
    if seconds <= 0:
        raise UsageError(f"--settle must be positive, not {value!r}")
    return seconds


def ladder_of(params: Mapping[str, Any] | None) -> list[str]:
    """The job's ladder (its ``ladder`` param, else the whole runbook)."""
    raw = (params or {}).get("ladder")
    if raw is None:
        return list(DEFAULT_LADDER)
    return parse_ladder(raw if isinstance(raw, str) else [str(r) for r in raw])


def settle_of(params: Mapping[str, Any] | None) -> float:
    """The job's settle time in seconds (its ``settle`` param, else :data:`DEFAULT_SETTLE`)."""
    raw = (params or {}).get("settle")
    if raw is None:
        return DEFAULT_SETTLE
    return parse_duration(raw if isinstance(raw, int | float) else str(raw))


def climbs(state: ItemState | str, error_code: str | None = None) -> bool:
    """Does a WorkSpace whose step ended in ``state`` go on to the next rung? A failed step
    climbs, and one skipped by the snapshot guard (:data:`SNAPSHOT_GUARD`: the next rung reads
    its own snapshots); succeeded (AVAILABLE, verified or not), skipped otherwise (changed or
    gone since the plan), cancelled end the climb, and in doubt holds it."""
    if str(state) == ItemState.FAILED.value:
        return True
    return str(state) == ItemState.SKIPPED.value and error_code == SNAPSHOT_GUARD
