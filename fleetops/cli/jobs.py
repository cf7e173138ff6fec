"""``fleetops jobs …``: the history of jobs (list, show, items, export), and the commands that
act on a recorded job (start, resume, retry, cancel).

Read commands never create a database: a missing file is a one-line error (exit 2). ``--json``
puts one JSON document on stdout and nothing else there; messages go to stderr. Every command
imports what it uses when it runs: the history commands never load the engine. A ``jobs``
subcommand that lives in another module is one line in :data:`JOBS_COMMANDS`.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any

import typer

from fleetops.cli import history as cli_history
from fleetops.cli.common import (
    err_console,
    fail,
    out_console,
    print_json,
    run_async,
    with_store,
)
from fleetops.cli.history import (
    LIST_FLAGS,
    SHOW_FLAGS,
    check_flag,
    existing_db,
    flag,
    parse_since,
    parse_states,
    reading,
)
from fleetops.cli.lazy import Lazy, LazyGroup
from fleetops.cli.options import JsonOpt, YesOpt
from fleetops.states import ItemState

if TYPE_CHECKING:
    from fleetops.api import Store
    from fleetops.records import CancelResult, JobRecord

__all__ = ["JOBS_COMMANDS", "existing_db", "jobs_app", "parse_since", "parse_states"]

#: ``jobs`` subcommands kept in other modules (``module:attribute``, loaded when they run).
JOBS_COMMANDS: dict[str, Lazy] = {
    "report": Lazy("fleetops.cli.report:report_job", "Draw a job as one HTML file (-o FILE)."),
    "approve": Lazy(
        "fleetops.cli.approve:approve_job",
        "Approve a plan stored with --require-approval (by someone other than its planner).",
    ),
}


class JobsGroup(LazyGroup):
    lazy = JOBS_COMMANDS


jobs_app = typer.Typer(
    cls=JobsGroup,
    no_args_is_help=True,
    add_completion=False,
    help="Jobs: list, show, items, export; start or approve a stored plan; resume, retry, cancel.",
)

JobArg = Annotated[str, typer.Argument(metavar="JOB", help="A job id, or a unique prefix of one.")]


def _list_flag(keyword: str) -> Any:
    return flag(LIST_FLAGS, keyword).option()


def _show_flag(keyword: str) -> Any:
    return flag(SHOW_FLAGS, keyword).option()


@jobs_app.command("list")
def list_jobs(
    status: Annotated[str | None, _list_flag("status")] = None,
    action: Annotated[str | None, _list_flag("action")] = None,
    since: Annotated[str | None, _list_flag("since")] = None,
    limit: Annotated[int, _list_flag("limit")] = 20,
    by: Annotated[str | None, _list_flag("by")] = None,
    as_json: Annotated[bool, _list_flag("as_json")] = False,
) -> None:
    """Jobs, newest first."""
    cli_history.list_jobs(
        status=status, action=action, since=since, limit=limit, by=by, as_json=as_json
    )


@jobs_app.command("show")
def show_job(
    job: JobArg, as_json: Annotated[bool, _show_flag("as_json")] = False
) -> None:
    """A job: status, counts, timing, throughput, errors by code, in-doubt items, API calls."""
    cli_history.show_job(job, as_json=as_json)


@jobs_app.command("items")
def list_items(
    job: JobArg,
    state: Annotated[
        list[str] | None,
        typer.Option("--state", help="Only items in this state (repeatable, or comma-separated)."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most N items; 0 for all.")] = 100,
    account: Annotated[
        str | None, typer.Option("--account", metavar="ID", help="Only this account's items.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """A job's items (one per WorkSpace), in the order they were planned."""
    states = check_flag(parse_states, state)
    if limit < 0:
        fail(f"--limit must be 0 (all) or more, not {limit}")
    if account is not None and not re.fullmatch(r"\d{12}", account):
        fail(f"--account {account!r} is not an AWS account id (12 digits)")
    from fleetops.cli.jobs_read import list_items as read_items

    with reading(existing_db()) as reader:
        read_items(reader, job, states, limit, account, as_json)


@jobs_app.command("export")
def export_job(
    job: JobArg,
    fmt: Annotated[str, typer.Option("--format", help="csv or json.")] = "",
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="Write to FILE (default: stdout).")
    ] = None,
) -> None:
    """Every item of a job, as CSV (a header row) or JSON (one array), streamed."""
    from fleetops.cli.jobs_read import export_job as read_export
    from fleetops.report.documents import EXPORT_FORMATS

    fmt = fmt.strip().lower()
    if fmt not in EXPORT_FORMATS:
        shown = repr(fmt) if fmt else "(missing)"
        fail(f"--format must be csv or json, not {shown}")
    with reading(existing_db()) as reader:
        count, job_id = read_export(reader, job, fmt, output)
    if output is not None and output != "-":
        err_console.print(f"exported {count} items of job {job_id} to {output}")


@jobs_app.command("cancel")
def cancel(job: JobArg, as_json: JsonOpt = False) -> None:
    """Cancel a job that is not running (or whose runner died): its pending items are cancelled.

    A job whose runner is alive is refused (exit 1): stop the runner first (Ctrl-C or SIGTERM).
    """
    from fleetops.api import CancelOutcome, cancel_job
    from fleetops.report.documents import job_json

    where = existing_db()

    async def use(store: Store) -> tuple[CancelResult, dict[str, int]]:
        result = await cancel_job(store, job)
        return result, await store.counts(result.job.id)

    result, counts = run_async(lambda: with_store(use, where))
    record = result.job
    if result.outcome is CancelOutcome.RUNNING:
        fail(
            f"job {record.id} is running (held by {result.holder}): stop that runner first "
            "(Ctrl-C or SIGTERM), then cancel",
            1,
        )
    if result.outcome is CancelOutcome.FINISHED:
        fail(f"job {record.id} already finished ({record.status.value}): nothing to cancel", 1)
    if as_json:
        print_json(job_json(record, counts))
    elif result.outcome is CancelOutcome.ALREADY:
        err_console.print(f"job {record.id} was already cancelled")
    else:
        out_console.print(
            f"cancelled job {record.id}: {result.items_cancelled} pending items cancelled"
            + (
                f", {counts[ItemState.IN_FLIGHT]} in flight left as they are (outcome unknown)"
                if counts[ItemState.IN_FLIGHT]
                else ""
            )
        )


# -- acting on a recorded job -------------------------------------------------------------------


def _run_recorded(job: str, act: Any, *, as_json: bool) -> None:
    """Open the existing database, let ``act(store, record)`` run the job, print the result and
    exit with the job's code."""
    from fleetops.cli.execute import finish

    where = existing_db()

    async def use(store: Store) -> int:
        record = await store.get_job(job)
        done: JobRecord = await act(store, record)
        return await finish(store, done, as_json)

    raise typer.Exit(run_async(lambda: with_store(use, where)))


@jobs_app.command("start")
def start(
    job: JobArg,
    yes: YesOpt = False,
    as_json: Annotated[bool, typer.Option("--json", help="Final job as JSON on stdout.")] = False,
    max_plan_age: Annotated[
        float | None,
        typer.Option(
            "--max-plan-age",
            metavar="HOURS",
            help="Refuse a plan older than this (default 4 h): the fleet has moved on since.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run exactly the stored plan of a job made with `run ... --plan-only` (no second plan)."""
    from fleetops.api import DEFAULT_MAX_PLAN_AGE, start_job, startable_plan, stored_plan
    from fleetops.catalogue.actions import get_action
    from fleetops.cli.execute import confirm, execute, print_plan

    limit = DEFAULT_MAX_PLAN_AGE if max_plan_age is None else max_plan_age
    if limit <= 0:
        fail(f"--max-plan-age must be a positive number of hours, not {limit:g}")

    async def act(store: Store, record: JobRecord) -> JobRecord:
        await startable_plan(store, record.id, max_plan_age=limit)  # before any question
        if get_action(record.action).destructive and not yes:
            summary = await stored_plan(store, record.id)
            print_plan(summary, job_id=record.id)
            confirm(
                f"{record.action} {summary.eligible} WorkSpaces?",
                refuse=f"{record.action} is destructive: pass --yes",
            )
        return await execute(
            lambda stop, on: start_job(store, record.id, max_plan_age=limit, stop=stop, on_start=on)
        )

    _run_recorded(job, act, as_json=as_json)


@jobs_app.command("resume")
def resume(
    job: JobArg,
    redo_in_doubt: Annotated[
        bool,
        typer.Option("--redo-in-doubt", help="Send in-doubt items again (after checking them)."),
    ] = False,
    yes: YesOpt = False,
    as_json: Annotated[bool, typer.Option("--json", help="Final job as JSON on stdout.")] = False,
) -> None:
    """Resume an interrupted job: reconcile what was in flight, then carry on."""
    from fleetops.api import resume_job
    from fleetops.cli.execute import confirm, execute

    async def act(store: Store, record: JobRecord) -> JobRecord:
        in_doubt = (await store.counts(record.id))[ItemState.IN_DOUBT]
        if redo_in_doubt and in_doubt and not yes:
            confirm(
                f"send {record.action} again to {in_doubt} in-doubt WorkSpaces?",
                refuse=f"--redo-in-doubt sends {record.action} again to {in_doubt} "
                "WorkSpaces: pass --yes",
            )
        return await execute(
            lambda stop, on: resume_job(
                store, record.id, redo_in_doubt=redo_in_doubt, stop=stop, on_start=on
            )
        )

    _run_recorded(job, act, as_json=as_json)


@jobs_app.command("retry")
def retry(
    job: JobArg,
    yes: YesOpt = False,
    as_json: Annotated[bool, typer.Option("--json", help="Final job as JSON on stdout.")] = False,
) -> None:
    """A new job, linked to JOB, over JOB's failed items (fresh plan: states are re-read)."""
    from fleetops.api import retry_candidates, retry_job, run_job
    from fleetops.catalogue.actions import get_action
    from fleetops.cli.execute import confirm, execute

    async def act(store: Store, parent: JobRecord) -> JobRecord:
        failed = await retry_candidates(store, parent.id)
        if get_action(parent.action).destructive and not yes:
            confirm(
                f"{parent.action} {len(failed)} WorkSpaces again?",
                refuse=f"{parent.action} is destructive: pass --yes",
            )
        child = await retry_job(store, parent.id)
        err_console.print(
            f"job {child.id}: retry of {len(failed)} failed items of {parent.id}",
            highlight=False,
        )
        return await execute(lambda stop, on: run_job(store, child.id, stop=stop, on_start=on))

    _run_recorded(job, act, as_json=as_json)
