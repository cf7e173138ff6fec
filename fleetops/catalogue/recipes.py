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

``rollout`` takes a bundle and an image per scope (an account in a region: bundle and image ids
are a region's, and an account's): ``--bundle [SCOPE=]wsb-…`` and ``--image [SCOPE=]wsi-…``,
repeatable, where SCOPE is a region (``eu-west-1``: that region, in every account of the job)
or an account and a region (``111122223333/eu-west-1``). A bare value is the same id in every
scope not named otherwise (one scope, or an image shared with several accounts of a region). A
scope is given its value by its account and region first, then its region, then the bare value
(:func:`scoped_value`); :func:`rollout_scopes` refuses a scope the job does not target and a
scope left without a bundle or an image. The job's params keep what was given: one bare value
as a string (``"bundle": "wsb-…"``), anything else as a mapping of scope to id, the bare one
under ``"*"``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from fleetops.errors import UsageError
from fleetops.states import ItemState

__all__ = [
    "ANY_SCOPE",
    "DEFAULT_LADDER",
    "DEFAULT_SETTLE",
    "NOT_HEALED",
    "RECIPES",
    "RECOVER_RUNGS",
    "SNAPSHOT_GUARD",
    "bundle_problem",
    "climbs",
    "image_problem",
    "ladder_of",
    "parse_duration",
    "parse_ladder",
    "parse_scoped_ids",
    "rollout_scopes",
    "scope_keys",
    "scoped_value",
    "settle_of",
]

#: The actions of the catalogue that are recipes (several steps per WorkSpace).
RECIPES: tuple[str, ...] = ("recover",)
#: The rungs of recover, lightest first: the order any ladder keeps.
RECOVER_RUNGS: tuple[str, ...] = ("reboot", "restore", "rebuild")
DEFAULT_LADDER: tuple[str, ...] = RECOVER_RUNGS
#: The error code of a step skipped by its snapshot-age guard (the WorkSpace climbs on).
SNAPSHOT_GUARD = "SnapshotGuard"
#: The error codes of a failed step whose rung was carried out and did not bring the WorkSpace
#: back to AVAILABLE (settled in a failure state, or not at all within the settle time): it
#: climbs. Any other failure (the call refused, or not made: retries spent, account unreachable)
#: ends the climb, failed: a heavier rung is no remedy for a refused request.
NOT_HEALED = frozenset({"VerificationFailed", "VerifyTimeout"})
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
    """Does a WorkSpace whose step ended in ``state`` go on to the next rung? A step whose rung
    was carried out but did not heal the WorkSpace (:data:`NOT_HEALED`) climbs, and one skipped
    by the snapshot guard (:data:`SNAPSHOT_GUARD`: the next rung reads its own snapshots); a
    step failed otherwise (refused, not sent) ends the climb failed; succeeded (AVAILABLE,
    verified or not), skipped otherwise (changed or gone since the plan), cancelled end the
    climb, and in doubt holds it."""
    if str(state) == ItemState.FAILED.value:
        return error_code in NOT_HEALED
    return str(state) == ItemState.SKIPPED.value and error_code == SNAPSHOT_GUARD


# -- rollout: a bundle and an image per scope ------------------------------------------------

#: The key of the bare value in a mapping of scope to id: every scope not named otherwise.
ANY_SCOPE = "*"
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d+")
_ACCOUNT = re.compile(r"\d{12}")


def _check_scope(flag: str, scope: str) -> str:
    account, sep, region = scope.rpartition("/")
    if scope == ANY_SCOPE:
        return scope
    if _REGION.fullmatch(region) and (not sep or _ACCOUNT.fullmatch(account)):
        return scope
    raise UsageError(
        f"{flag} {scope}=…: the scope must be a region (eu-west-1) or ACCOUNT/REGION "
        "(111122223333/eu-west-1)"
    )


def parse_scoped_ids(flag: str, value: Any) -> str | dict[str, str]:
    """``--bundle`` / ``--image`` values (a string, repeated strings ``[SCOPE=]ID``, or a job
    file's mapping of scope to id) → one bare id as a string, else a mapping of scope to id
    (the bare one under :data:`ANY_SCOPE`). A scope given twice is a :class:`UsageError`."""
    if isinstance(value, Mapping):
        pairs = [(str(k).strip(), str(v).strip()) for k, v in value.items()]
    else:
        texts = [value] if isinstance(value, str) else [str(v) for v in value]
        pairs = []
        for text in texts:
            scope, sep, ident = str(text).strip().rpartition("=")
            pairs.append((scope.strip() if sep else ANY_SCOPE, ident.strip()))
    out: dict[str, str] = {}
    for scope, ident in pairs:
        _check_scope(flag, scope)
        if not ident:
            raise UsageError(f"{flag} {scope}=: the id is missing")
        if scope in out:
            named = "a bare value" if scope == ANY_SCOPE else f"scope {scope}"
            raise UsageError(f"{flag} gives {named} twice ({out[scope]} and {ident})")
        out[scope] = ident
    if list(out) == [ANY_SCOPE]:
        return out[ANY_SCOPE]
    return out


def scoped_value(value: Any, scope: str) -> str | None:
    """The id ``value`` (a string, or a mapping of scope to id) gives ``scope`` (``"region"``
    or ``"account/region"``): by account and region, else by region, else the bare value."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        return str(value)
    region = scope.rpartition("/")[2]
    for key in (scope, region, ANY_SCOPE):
        if key in value:
            return str(value[key])
    return None


def scope_keys(regions: Sequence[str], accounts: Sequence[str] | None) -> list[str]:
    """A job's scopes, keyed as its clients are: each region, or each account × region."""
    if not accounts:
        return list(regions)
    return [f"{account}/{region}" for account in accounts for region in regions]


def rollout_scopes(params: Mapping[str, Any], scopes: Sequence[str]) -> dict[str, tuple[str, str]]:
    """Each scope of a rollout job → (its bundle, its image); a scope given that the job does
    not target, or a scope left without a bundle or an image, is a :class:`UsageError`."""
    targeted = set(scopes)
    regions = {scope.rpartition("/")[2] for scope in scopes}
    shown = ", ".join(scopes)
    for key, flag in (("bundle", "--bundle"), ("image", "--image")):
        value = params.get(key)
        for named in value if isinstance(value, Mapping) else ():
            if named != ANY_SCOPE and named not in targeted and named not in regions:
                raise UsageError(
                    f"{flag} {named}=…: the job does not target {named} (its scopes: {shown})"
                )
    out: dict[str, tuple[str, str]] = {}
    for scope in scopes:
        found = []
        for key, hint in (("bundle", "wsb-…"), ("image", "wsi-…")):
            ident = scoped_value(params.get(key), scope)
            if ident is None:
                raise UsageError(f"rollout has no {key} for {scope}: add --{key} {scope}={hint}")
            found.append(ident)
        out[scope] = (found[0], found[1])
    return out


def image_problem(answer: Mapping[str, Any], image: str, scope: str) -> str | None:
    """Why DescribeWorkspaceImages' ``answer`` forbids rolling ``image`` out in ``scope``
    (None: it exists there and is AVAILABLE)."""
    found = [i for i in answer.get("Images") or [] if i.get("ImageId") == image]
    if not found:
        return f"image {image} not found in {scope}: nothing was rolled out"
    state = found[0].get("State")
    if state != "AVAILABLE":
        return f"image {image} is {state}, not AVAILABLE, in {scope}: nothing was rolled out"
    return None


def bundle_problem(answer: Mapping[str, Any], bundle: str, scope: str) -> str | None:
    """Why DescribeWorkspaceBundles' ``answer`` forbids the rollout over ``bundle`` in
    ``scope`` (None: the bundle is there)."""
    if not any(b.get("BundleId") == bundle for b in answer.get("Bundles") or []):
        return f"bundle {bundle} not found in {scope}: nothing was rolled out"
    return None
