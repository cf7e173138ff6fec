"""What every CLI command shares: the database location, running async code, and turning
fleetops errors into one line on stderr and an exit code."""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar, cast

from fleetops.errors import FleetOpsError

if TYPE_CHECKING:
    from rich.console import Console

    from fleetops.api import Store

__all__ = [
    "CliState",
    "err_console",
    "fail",
    "out_console",
    "print_json",
    "resolve_db",
    "run_async",
    "state",
    "with_store",
]

T = TypeVar("T")


class _LazyConsole:
    """A rich Console made on first use (rich costs a tenth of a second to import, which
    ``--version`` and the JSON outputs need not pay)."""

    def __init__(self, **settings: Any) -> None:
        self._settings = settings
        self._console: Console | None = None

    def __getattr__(self, name: str) -> Any:
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._settings)
        return getattr(self._console, name)


err_console = cast("Console", _LazyConsole(stderr=True, highlight=False, soft_wrap=True))
out_console = cast("Console", _LazyConsole(highlight=False, soft_wrap=True))


@dataclass
class CliState:
    db: str | None = None
    verbose: int = 0
    quiet: bool = False


state = CliState()


def resolve_db(db: str | None = None) -> str:
    """``--db``, else ``$FLEETOPS_DB``, else ``fleetops.db`` in the user data dir."""
    from fleetops.api import database_target

    return database_target(db or state.db)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print one line to stderr and exit (2: usage or bad input)."""
    import typer  # here, not at the top: the fast history path imports no typer until it fails
    from rich.markup import escape

    err_console.print(f"[bold red]error:[/] {escape(message)}", markup=True, highlight=False)
    raise typer.Exit(code)


def _fleetops_error(exc: BaseException) -> FleetOpsError | None:
    """The FleetOpsError behind ``exc``, also when task groups wrapped it in exception groups."""
    if isinstance(exc, FleetOpsError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _fleetops_error(inner)
            if found is not None:
                return found
    return None


def run_async(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``main`` on asyncio; fleetops errors become one line and their exit code."""
    import anyio

    try:
        return anyio.run(main)
    except (FleetOpsError, BaseExceptionGroup) as exc:
        error = _fleetops_error(exc)
        if error is None:
            raise
        fail(str(error), error.exit_code)


async def with_store(use: Callable[[Store], Awaitable[T]], db: str | None = None) -> T:
    """Open the store, ``use`` it, close it. ``db`` given (from ``existing_db()``): a database
    that must exist already — never created, nor its schema; None: ``--db`` / ``FLEETOPS_DB``,
    created on first use."""
    from fleetops.api import open_store

    store = await open_store(resolve_db(db), create=db is None)
    try:
        return await use(store)
    finally:
        await store.close()


def print_json(data: Any) -> None:
    """One JSON document on stdout (and nothing else there)."""
    sys.stdout.write(json.dumps(data, default=str) + "\n")
    sys.stdout.flush()
