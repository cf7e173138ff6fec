"""The flags of ``fleetops run`` by group: the selectors and the action parameters, made from
the catalogue's declarations (:data:`~fleetops.catalogue.targets.SELECTORS`,
:func:`~fleetops.catalogue.actions.all_params`), and the job options (fields of
:class:`~fleetops.catalogue.options.JobOptions`), declared here.

:func:`option_group` gives a command every flag of a group and hands their values to it as one
dict (keyed by the group's names, only the flags given), so that the command function stays a
short list of its own flags and a body that calls the API. A new selector or parameter is one
entry in the catalogue, a new option one entry here.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from fleetops.catalogue.actions import Param, all_params
from fleetops.catalogue.options import DEFAULT_BURST, DEFAULT_RATE
from fleetops.catalogue.targets import SELECTORS

__all__ = [
    "OPTION_FLAGS",
    "SELECTOR_FLAGS",
    "catalogue_flags",
    "option_group",
]

F = TypeVar("F", bound=Callable[..., Any])


def _flag(name: str, kind: Any, *decls: str, help: str, panel: str) -> inspect.Parameter:
    option = typer.Option(*decls, help=help, rich_help_panel=panel, show_default=False)
    default: Any = False if kind is bool else None
    annotation = Annotated[kind, option] if kind is bool else Annotated[kind | None, option]
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
    )


_SELECT = "Selectors (combined with AND)"
_OPTIONS = "Job options"

#: How a flag reads a value of each kind of the catalogue's parameters and selectors (text
#: when not named here).
_KIND_TYPES: dict[str, Any] = {
    "int": int,
    "days": float,
    "workspace_ids": list[str],
    "states": list[str],
    "pairs": list[str],
    "keys": list[str],
    "scoped_ids": list[str],
    "path": Path,
    "switch": bool,
}

#: Which WorkSpaces: a flag per selector of the catalogue, named by its key.
SELECTOR_FLAGS: list[inspect.Parameter] = [
    _flag(s.key, _KIND_TYPES.get(s.kind, str), s.flag, help=s.help, panel=_SELECT)
    for s in SELECTORS
]

#: How the job runs: each name is a field of ``JobOptions``.
OPTION_FLAGS: list[inspect.Parameter] = [
    _flag("rate", float, "--rate", help=f"Calls/s (default {DEFAULT_RATE}).", panel=_OPTIONS),
    _flag("burst", int, "--burst", help=f"Burst (default {DEFAULT_BURST}).", panel=_OPTIONS),
    _flag("concurrency", int, "--concurrency", help="Calls in flight at most.", panel=_OPTIONS),
    _flag("max_errors", str, "--max-errors", help="Abort past N or P% failures.",
          panel=_OPTIONS),
    _flag(
        "waves",
        str,
        "--waves",
        help="Wave sizes: counts or percentages of the WorkSpaces to act on, e.g. 5,25%,all.",
        panel=_OPTIONS,
    ),
    _flag("no_wait", bool, "--no-wait", help="Do not verify.", panel=_OPTIONS),
    _flag("verify_timeout", float, "--verify-timeout",
          help="Seconds to wait for each WorkSpace to settle.", panel=_OPTIONS),
    _flag("include_connected", bool, "--include-connected",
          help="Act on WorkSpaces in use too.", panel=_OPTIONS),
    _flag("max_snapshot_age", float, "--max-snapshot-age",
          help="Hours (rebuild/restore/migrate guardrail).", panel=_OPTIONS),
    _flag("ignore_snapshot_age", bool, "--ignore-snapshot-age",
          help="Act whatever the last snapshot's age.", panel=_OPTIONS),
    _flag("read_timeout", float, "--read-timeout",
          help="Seconds to wait for an API answer (default 30).", panel=_OPTIONS),
    _flag("connect_timeout", float, "--connect-timeout",
          help="Seconds to wait for a connection (default 5).", panel=_OPTIONS),
    _flag("include_standby", bool, "--include-standby",
          help="Let selectors pick standby WorkSpaces too.", panel=_OPTIONS),
    _flag("notify", list[str], "--notify",
          help="Tell of the job's end: an http(s):// webhook, or sns:arn:aws:sns:… (repeatable).",
          panel=_OPTIONS),
    _flag("window", list[str], "--window",
          help='Act only inside it: "SAT 22:00-SUN 04:00" or daily "22:00-04:00" (repeatable).',
          panel=_OPTIONS),
    _flag("timezone", str, "--timezone",
          help="IANA time zone of --window (default UTC).", panel=_OPTIONS),
    _flag("wait_for_logoff", str, "--wait-for-logoff",
          help="Hold a WorkSpace in use until its user logs off, at most this long (30m, 2h).",
          panel=_OPTIONS),
]  # fmt: skip

#: Selector flags that are also a parameter of some action (``--running-mode``): one flag.
_SHARED = frozenset(selector.flag for selector in SELECTORS)


def _takers(param: Param) -> str:
    from fleetops.catalogue.actions import ACTIONS

    return ", ".join(name for name, spec in ACTIONS.items() if spec.param(param.key) is not None)


def catalogue_flags() -> list[inspect.Parameter]:
    """A flag per parameter of the catalogue (named by its key; the word after the action and
    the flags shared with a selector excepted)."""
    flags = []
    for param in all_params():
        if param.positional or param.flag in _SHARED:
            continue
        repeat = " (repeatable)" if param.kind in ("pairs", "keys", "scoped_ids") else ""
        flags.append(
            _flag(
                f"param_{param.key}",  # ``from`` is no Python name
                _KIND_TYPES.get(param.kind, str),
                param.flag,
                help=f"{_takers(param)}: {param.what} ({param.hint}){repeat}.",
                panel="Action parameters",
            )
        )
    return flags


def _given(value: Any) -> Any:
    """A flag's value as the API takes it: absent (None, False, empty) is None, a list a
    tuple, a path its text."""
    if value is None or value is False or value == []:
        return None
    if isinstance(value, list):
        return tuple(value)
    if isinstance(value, Path):
        return str(value)
    return value


def option_group(
    name: str, flags: Sequence[inspect.Parameter], *, prefix: str = ""
) -> Callable[[F], F]:
    """Give the command every flag of ``flags``; it receives their values as the ``name``
    keyword argument, a dict of the flags given (see :func:`_given`), keyed by the flags' names
    less ``prefix``."""

    def decorate(fn: F) -> F:
        signature = inspect.signature(fn, eval_str=True)
        names = [flag.name for flag in flags]

        @functools.wraps(fn)
        def command(*args: Any, **kwargs: Any) -> Any:
            values = {key.removeprefix(prefix): _given(kwargs.pop(key, None)) for key in names}
            return fn(*args, **{name: {k: v for k, v in values.items() if v is not None}}, **kwargs)

        own = [p for p in signature.parameters.values() if p.name != name]
        command.__signature__ = signature.replace(  # type: ignore[attr-defined]
            parameters=[*own, *flags]
        )
        return command  # type: ignore[return-value]

    return decorate
