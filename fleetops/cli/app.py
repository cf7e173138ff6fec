"""The ``fleetops`` command as a typer app: the root options, and where every subcommand lives.

The console script (:func:`fleetops.cli.main.main`, where the exit codes are listed) comes here for
everything but the history reads it answers itself. Each subcommand is a module imported only
when it runs (:mod:`fleetops.cli.lazy`), so ``fleetops --help`` and ``--version`` import almost
nothing and the history commands never load the engine. Adding a command is one line in
:data:`COMMANDS`; adding a ``jobs`` subcommand is one line in
:data:`fleetops.cli.jobs.JOBS_COMMANDS`.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from fleetops import __version__
from fleetops.cli.common import err_console, state
from fleetops.cli.history import ROOT_FLAGS, flag
from fleetops.cli.lazy import Lazy, LazyGroup
from fleetops.errors import FleetOpsError

__all__ = ["COMMANDS", "app", "configure_logging", "main"]

#: Every subcommand: ``module:attribute`` (a typer app, a click command or a function) and the
#: line ``fleetops --help`` shows for it.
COMMANDS: dict[str, Lazy] = {
    "run": Lazy(
        "fleetops.cli.run:run_app",
        "Run ACTION or a job file over the selected WorkSpaces (--plan-only: plan, store, stop).",
    ),
    "jobs": Lazy(
        "fleetops.cli.jobs:jobs_app",
        "Jobs: list, show, items, export; start, resume, retry, cancel, approve.",
    ),
    "db": Lazy("fleetops.cli.db:db_app", "The job database: create or upgrade its schema."),
    "worker": Lazy("fleetops.cli.worker:worker", "Run queued jobs from a shared PostgreSQL store."),
    "serve": Lazy("fleetops.web.cli:serve", "A web dashboard of the jobs (and approvals)."),
    "schedule": Lazy(
        "fleetops.cli.schedule:schedule_app",
        "Recurring jobs: add, list, pause, resume, remove; run-due starts what is due.",
    ),
    "sim": Lazy("fleetops.sim.cli:sim_app", "The local WorkSpaces simulator."),
    "bench": Lazy("fleetops.bench.cli:bench_app", "The benchmark suite."),
    "demo": Lazy(
        "fleetops.cli.demo:demo_app",
        "Run a realistic job against the built-in simulator, then show its history.",
    ),
}


class RootGroup(LazyGroup):
    lazy = COMMANDS


app = typer.Typer(
    cls=RootGroup,
    # Plain help here: typer's rich help imports a markdown renderer and more, which would
    # cost `fleetops --help` several times the rest of its start-up. Subcommands keep rich help.
    rich_markup_mode=None,
    no_args_is_help=True,
    add_completion=False,
    help="Async fleet operations for Amazon WorkSpaces: planned, batched, rate-limited, "
    "verified, resumable jobs.",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        print(f"fleetops {__version__}")
        raise typer.Exit()


def configure_logging(verbose: int, quiet: bool, fmt: str = "text") -> None:
    """Logs on stderr (see fleetops.cli.logs): -v fleetops's decisions, -vv library debug too, but
    never botocore's (it logs whole requests there, signing headers and session tokens)."""
    from fleetops.cli.logs import configure

    configure(verbose, fmt, quiet=quiet)


def _root_flag(keyword: str, **settings: Any) -> Any:
    return flag(ROOT_FLAGS, keyword).option(**settings)


@app.callback()
def _root(
    db: Annotated[str | None, _root_flag("db", show_default=False)] = None,
    verbose: Annotated[
        int,
        typer.Option(
            "-v", "--verbose", count=True, help="-v fleetops's decisions; -vv library debug too."
        ),
    ] = 0,
    log_format: Annotated[
        str, typer.Option("--log-format", metavar="text|json", help="Log lines as text or JSON.")
    ] = "text",
    quiet: Annotated[bool, _root_flag("quiet")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Async fleet operations for Amazon WorkSpaces."""
    state.db = db
    state.verbose = verbose
    state.quiet = quiet
    configure_logging(verbose, quiet, log_format.strip().lower())


def main() -> None:
    """The console script: usage errors are one line (and exit 2), like every other bad input."""
    try:
        # Without standalone mode, click returns an Exit's code instead of exiting.
        code = app(standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err_console.print("aborted", highlight=False)
        sys.exit(130)
    except FleetOpsError as exc:  # raised while parsing (a bad value read by a callback)
        err_console.print(f"error: {exc}", highlight=False, markup=False)
        sys.exit(exc.exit_code)
    except typer.TyperException as exc:  # click's usage errors, as typer vendors them
        if type(exc).__name__ == "NoArgsIsHelpError":  # `fleetops` alone: the help, as is
            sys.stderr.write(exc.format_message() + "\n")
            sys.exit(exc.exit_code)
        ctx = getattr(exc, "ctx", None)
        hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        err_console.print(f"error: {exc.format_message()}{hint}", highlight=False, markup=False)
        sys.exit(exc.exit_code)
