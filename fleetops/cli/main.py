"""The ``fleetops`` console script.

``jobs list`` and ``jobs show`` — the commands people and scripts run most, often in a loop —
are answered here without importing typer (a tenth of a second of start-up): their command line
is read by :func:`fast_history`, and the same functions the typer commands call
(:mod:`fleetops.cli.history`) do the work. Anything else, and any command line this reader is
not sure of (``--help``, ``-v``, an unknown or repeated flag, a value that is not a number), goes
to the typer app (:mod:`fleetops.cli.app`), which parses it and reports usage errors as always:
the fast path changes how soon a command answers, never what it answers.

Exit codes: 0 every item succeeded or was skipped; 1 some items failed, or the API failed (the
job is then ``failed`` with a message naming the operation); 2 usage, bad input or configuration
(no region, credentials or profile; nothing written); 3 aborted by --max-errors; 4 items in doubt
await the operator; 130 interrupted (resumable).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fleetops.cli.history import Flag

__all__ = ["fast_history", "main"]

def _flags(
    args: Sequence[str], declared: tuple[Flag, ...]
) -> tuple[dict[str, Any], list[str]] | None:
    """``--flag value``, ``--flag=value`` and switches ``declared``, by keyword, and the
    positionals; None when anything else is there (or a flag is repeated, or ``--`` ends the
    options)."""
    known: dict[str, bool] = {}
    keyword: dict[str, str] = {}
    for declaration in declared:
        known.update(declaration.spellings)
        keyword.update(dict.fromkeys(declaration.decls, declaration.keyword))
    found: dict[str, Any] = {}
    positionals: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("-") or arg == "-":
            positionals.append(arg)
            i += 1
            continue
        spelled, equals, inline = arg.partition("=")
        name = keyword.get(spelled)
        if name is None or name in found:
            return None
        if known[spelled]:
            if equals:
                found[name] = inline
            elif i + 1 < len(args):
                i += 1
                found[name] = args[i]
            else:
                return None
        elif equals:
            return None
        else:
            found[name] = True
        i += 1
    return found, positionals


def fast_history(argv: Sequence[str]) -> Callable[[], None] | None:
    """What to run for ``argv`` when it is ``[--db DB] [-q] jobs list|show …`` with flags this
    reader knows (the root options are applied when it runs); None for anything else."""
    if "jobs" not in argv:
        return None
    from fleetops.cli.common import state
    from fleetops.cli.history import LIST_FLAGS, ROOT_FLAGS, SHOW_FLAGS

    i = list(argv).index("jobs")
    root = _flags(argv[:i], ROOT_FLAGS)
    if root is None or root[1] or i + 1 >= len(argv):
        return None
    db: str | None = root[0].get("db")
    quiet = bool(root[0].get("quiet"))
    command, rest = argv[i + 1], argv[i + 2 :]
    work: Callable[[], None]
    if command == "list":
        parsed = _flags(rest, LIST_FLAGS)
        if parsed is None or parsed[1]:
            return None
        flags = parsed[0]
        try:
            limit = int(flags.get("limit", "20"))  # as click reads an integer
        except ValueError:
            return None  # typer says what is wrong with it
        from fleetops.cli import history as cli_history

        def work() -> None:
            given = {**flags, "limit": limit, "as_json": bool(flags.get("as_json"))}
            cli_history.list_jobs(**given)

    elif command == "show":
        parsed = _flags(rest, SHOW_FLAGS)
        if parsed is None or len(parsed[1]) != 1:
            return None
        flags, (job,) = parsed
        from fleetops.cli import history as cli_history

        def work() -> None:
            cli_history.show_job(job, as_json=bool(flags.get("as_json")))

    else:
        return None

    def answer() -> None:
        from fleetops.cli.logs import configure

        # What the root options do (typer's callback), with no -v and the text log format.
        state.db, state.verbose, state.quiet = db, 0, quiet
        configure(0, "text", quiet=quiet)
        work()

    return answer


def _exit_code(exc: BaseException) -> int | None:
    """The exit code of a typer/click ``Exit`` (raised by ``fail``), else None."""
    typer = sys.modules.get("typer")
    if typer is not None and isinstance(exc, typer.Exit):
        return int(exc.exit_code)
    return None


def main() -> None:
    """The console script: the history reads answered at once, everything else by typer."""
    work = fast_history(sys.argv[1:])
    if work is None:
        from fleetops.cli.app import main as app_main

        app_main()
        return
    try:
        work()
    except KeyboardInterrupt:
        sys.stderr.write("\naborted\n")
        sys.exit(130)
    except Exception as exc:
        code = _exit_code(exc)
        if code is None:
            raise
        sys.exit(code)
    sys.exit(0)
