"""Commands imported only when they run.

A :class:`LazyGroup` knows its subcommands by name, as ``module:attribute`` strings, and imports
a module only when its command is invoked (or its own ``--help`` is asked for). Listing the
commands in ``--help`` reads the one-line help kept next to the name, so ``fleetops --help``
imports none of them. The attribute may be a typer app, a click command, or a plain function
(made a command with typer's usual rules).
"""

from __future__ import annotations

import functools
import importlib
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import typer
from typer.core import TyperGroup

__all__ = ["Lazy", "LazyGroup"]


@dataclass(frozen=True)
class Lazy:
    """A subcommand: where it lives (``module:attribute``) and its one line of help."""

    target: str
    help: str


def load_command(name: str, target: str) -> Any:
    """Import ``module:attribute`` and make it a click command named ``name``."""
    module_name, _, attribute = target.partition(":")
    obj = getattr(importlib.import_module(module_name), attribute)
    if isinstance(obj, typer.Typer):
        # A typer app of one command is that command when it has the name it is registered
        # under (``run``); otherwise it stays a group (``db`` of ``upgrade``).
        single = obj.registered_commands[0] if len(obj.registered_commands) == 1 else None
        collapses = (
            single is not None
            and not obj.registered_groups
            and obj.registered_callback is None
            and single.name == name
        )
        command = typer.main.get_command(obj) if collapses else typer.main.get_group(obj)
    elif callable(obj) and not hasattr(obj, "invoke"):
        holder = typer.Typer(add_completion=False)
        holder.command(name=name)(obj)
        command = typer.main.get_command(holder)
    else:
        command = obj
    command.name = name
    return command


def _flag(value: Any) -> bool:
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(text)


_SIMPLE_TYPES: dict[Any, Any] = {str: str, int: int, float: float, Path: Path, bool: _flag}


def _convert(kind: Any, value: Any, param: Any, ctx: Any) -> Any:
    if isinstance(value, kind):
        return value
    try:
        return _SIMPLE_TYPES[kind](value)
    except (TypeError, ValueError):
        label = {int: "integer", float: "float", bool: "boolean"}.get(kind, kind.__name__)
        raise typer.BadParameter(
            f"{value!r} is not a valid {label}.", ctx=ctx, param=param
        ) from None


@functools.cache
def _simple_runtime_class() -> Any:
    from typer._coercion import RuntimeParam

    @dataclass(frozen=True)
    class SimpleRuntimeParam(RuntimeParam):
        """typer's conversion contract, for str, int, float, bool, Path and lists of them."""

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            annotation: Any = self.annotation
            if typing.get_origin(annotation) is list:
                (item,) = typing.get_args(annotation)
                return [_convert(item, v, param, ctx) for v in value]
            return _convert(annotation, value, param, ctx)

    return SimpleRuntimeParam


def _simple_runtime(annotation: Any) -> Any:
    """The light converter class for a simple annotation (None: leave it to typer)."""
    origin = typing.get_origin(annotation)
    item = typing.get_args(annotation)[0] if origin is list else annotation
    if item not in _SIMPLE_TYPES or (origin is not None and origin is not list):
        return None
    try:
        return _simple_runtime_class()
    except ImportError:  # a typer without this contract: its own conversion stays
        return None


def lighten(command: Any) -> Any:
    """Convert the plain parameters of ``command`` (and its subcommands) without typer's
    pydantic adapters: parsing ``--limit 5`` must not cost the import of pydantic, which the
    history commands never otherwise need. Parameters of other types keep typer's conversion;
    on a typer without these internals, nothing changes."""
    for param in getattr(command, "params", ()):
        _lighten_param(param)
    help_option = getattr(command, "get_help_option", None)
    if help_option is not None and not getattr(help_option, "lightened", False):

        def get_help_option(ctx: Any) -> Any:
            option = help_option(ctx)
            if option is not None:
                _lighten_param(option)
            return option

        get_help_option.lightened = True  # type: ignore[attr-defined]
        command.get_help_option = get_help_option
    for sub in getattr(command, "commands", {}).values():
        lighten(sub)
    return command


def _lighten_param(param: Any) -> None:
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is None or getattr(param, "_runtime_param", 0) is not None:
        return
    if getattr(descriptor, "file_annotation", None) is not None:
        return
    runtime = _simple_runtime(descriptor.annotation)
    if runtime is not None:
        param._runtime_param = runtime(
            parameter_info=descriptor.parameter_info, annotation=descriptor.annotation
        )


class LazyGroup(TyperGroup):
    """A typer group whose subcommands (``lazy``, set by a subclass) load on use."""

    lazy: ClassVar[Mapping[str, Lazy]] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._listing = False
        lighten(self)

    def list_commands(self, ctx: Any) -> list[str]:
        eager = super().list_commands(ctx)
        return eager + [name for name in self.lazy if name not in eager]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name in self.commands or cmd_name not in self.lazy:
            return super().get_command(ctx, cmd_name)
        entry = self.lazy[cmd_name]
        if self._listing:  # the help listing needs the name and one line, not the module
            return typer.core.TyperCommand(cmd_name, help=entry.help, short_help=entry.help)
        command = lighten(load_command(cmd_name, entry.target))
        self.commands[cmd_name] = command
        return command

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False
