"""``fleetops schedule …``: recurring jobs (add, list, pause, resume, remove) and ``run-due``,
which starts what is due now (from cron or a systemd timer; workers on PostgreSQL start due
schedules themselves).

Everything given to ``add`` is checked before the database is opened: a bad cron, time zone,
duration or job file is one line and exit 2, with nothing written. ``--json`` puts one JSON
document on stdout and nothing else there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from fleetops.catalogue.specs import Where
from fleetops.cli.common import err_console, out_console, print_json, run_async, with_store
from fleetops.cli.options import JsonOpt, connection_options

if TYPE_CHECKING:
    from fleetops.api import Store

__all__ = ["schedule_app"]

schedule_app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Recurring jobs: a job file run at the slots of a cron, in a time zone.",
)

NameArg = Annotated[str, typer.Argument(metavar="NAME", help="The schedule's name.")]


@schedule_app.command("add")
@connection_options
def add(
    name: NameArg,
    job_file: Annotated[str, typer.Argument(metavar="JOBFILE", help="A job file (jobs/X.yaml).")],
    cron: Annotated[
        str,
        typer.Option(
            "--cron",
            metavar="CRON",
            help='Five fields, minute hour day month weekday: "0 3 * * SUN".',
        ),
    ],
    timezone: Annotated[
        str | None,
        typer.Option("--timezone", metavar="TZ", help="IANA time zone of the cron (default UTC)."),
    ] = None,
    catch_up: Annotated[
        str | None,
        typer.Option(
            "--catch-up",
            metavar="DURATION",
            help="A slot missed while nothing ran starts late within this long (default 1h).",
        ),
    ] = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace the schedule of that name.")
    ] = False,
    as_json: JsonOpt = False,
    where: Where | None = None,
) -> None:
    """Run JOBFILE at every slot of --cron. The job file is read now: the schedule keeps the
    job it describes (edit the file, then `schedule add --replace` to change it)."""
    from fleetops.api import add_schedule, check_schedule

    given = where or Where()
    # checked before the database is opened: a bad value writes nothing
    check_schedule(name, job_file, cron=cron, timezone=timezone, catch_up=catch_up, where=given)

    async def use(store: Store) -> dict[str, Any]:
        return await add_schedule(
            store,
            name,
            job_file,
            cron=cron,
            timezone=timezone,
            catch_up=catch_up,
            where=given,
            replace=replace,
        )

    shown = run_async(lambda: with_store(use))
    if as_json:
        print_json(shown)
        return
    err_console.print(
        f"schedule {shown['name']}: {shown['action']} from {shown['source']} at "
        f"{shown['cron']!r} ({shown['timezone']}); next run {shown['next_run_at']}",
        highlight=False,
    )


@schedule_app.command("list")
def list_(as_json: JsonOpt = False) -> None:
    """Every schedule: its cron, time zone, next run (UTC), last job, paused or not."""
    from fleetops.api import schedules_document

    document = run_async(lambda: with_store(schedules_document))
    if as_json:
        print_json(document)
        return
    rows = document["schedules"]
    if not rows:
        err_console.print("no schedules (add one with `fleetops schedule add`)", highlight=False)
        return
    out_console.print(
        f"{'NAME':<24} {'ACTION':<10} {'CRON':<18} {'TIMEZONE':<20} {'NEXT RUN (UTC)':<25} "
        "LAST JOB",
        highlight=False,
    )
    for row in rows:
        next_run = "paused" if row["paused"] else row["next_run_at"]
        out_console.print(
            f"{row['name']:<24} {row['action'] or '':<10} {row['cron']:<18} "
            f"{row['timezone']:<20} {next_run:<25} {row['last_job_id'] or '-'}",
            highlight=False,
        )


def _pause(name: str, paused: bool) -> None:
    from fleetops.api import pause_schedule

    changed = run_async(
        lambda: with_store(lambda store: pause_schedule(store, name, paused=paused))
    )
    word = "paused" if paused else "resumed"
    note = "" if changed else f" (it was {'paused' if paused else 'running'} already)"
    err_console.print(f"schedule {name} {word}{note}", highlight=False)


@schedule_app.command("pause")
def pause(name: NameArg) -> None:
    """Stop starting jobs at its slots (they are skipped, not caught up on resume)."""
    _pause(name, True)


@schedule_app.command("resume")
def resume(name: NameArg) -> None:
    """Start jobs at its slots again, from the next one."""
    _pause(name, False)


@schedule_app.command("remove")
def remove(name: NameArg) -> None:
    """Delete a schedule (the jobs it started stay in the history)."""
    from fleetops.api import remove_schedule

    run_async(lambda: with_store(lambda store: remove_schedule(store, name)))
    err_console.print(f"schedule {name} removed", highlight=False)


@schedule_app.command("run-due")
def run_due(as_json: JsonOpt = False) -> None:
    """Start what is due now and run it to its end: for cron or a systemd timer every minute.

    Each due slot becomes one job whoever sees it (several run-due at once, workers); a slot
    missed for longer than its catch-up is recorded missed. Exit code: the highest of the jobs
    run (0 when nothing was due)."""
    code, document = run_async(lambda: with_store(_run_due))
    if as_json:
        print_json(document)
    raise typer.Exit(code)


async def _run_due(store: Store) -> tuple[int, dict[str, Any]]:
    from fleetops.api import claim_due, get_job, unstarted_scheduled_jobs

    claimed = await claim_due(store)
    started = [entry for entry in claimed if entry["job_id"]]
    missed = [
        {"schedule": entry["schedule"], "slots": entry["missed"]}
        for entry in claimed
        if entry["missed"]
    ]
    for entry in missed:
        err_console.print(
            f"schedule {entry['schedule']}: {entry['slots']} slot(s) missed (older than its "
            "catch-up)",
            highlight=False,
        )
    orphans = [
        {"schedule": None, "slot_at": None, "job_id": job_id, "late_s": None}
        for job_id in await unstarted_scheduled_jobs(store)
        if job_id not in {entry["job_id"] for entry in started}
    ]
    code = 0
    jobs: list[dict[str, Any]] = []
    for entry in started + orphans:
        job_code = await _run_one(store, entry)
        code = max(code, job_code)
        job = await get_job(store, entry["job_id"])
        jobs.append(
            {
                "schedule": (job.started_by or "").removeprefix("schedule:"),
                "slot_at": entry["slot_at"],
                "job_id": job.id,
                "late_s": entry["late_s"],
                "status": job.status.value,
                "exit_code": job_code,
            }
        )
        # a foreground run returns a job waiting for its window, or interrupted by a signal,
        # only when Ctrl-C / SIGTERM came: the jobs not run yet are for the next run-due
        if job.status.value == "waiting" or "interrupted by SIG" in (job.message or ""):
            break
    if not jobs and not missed:
        err_console.print("nothing is due", highlight=False)
    return code, {"jobs": jobs, "missed": missed}


async def _run_one(store: Store, entry: dict[str, Any]) -> int:
    """Run a claimed job in this process, as `fleetops jobs start` would; its exit code."""
    from fleetops.api import run_job
    from fleetops.cli.execute import execute, finish
    from fleetops.errors import FleetOpsError, LeaseHeldError
    from fleetops.states import JobStatus

    job_id = entry["job_id"]
    if entry["schedule"] is None:
        why = "claimed by a schedule earlier, never started"
    else:
        late = entry["late_s"] or 0
        why = f"schedule {entry['schedule']}" + (f", {late:.0f} s late" if late >= 60 else "")
    err_console.print(f"job {job_id}: {why}", highlight=False)
    try:
        job = await execute(lambda stop, on: run_job(store, job_id, stop=stop, on_start=on))
    except LeaseHeldError:  # another run-due took over the same unstarted job first
        return 0
    except FleetOpsError as exc:  # no credentials, a profile gone: recorded on the job
        await store.update_job(job_id, status=JobStatus.FAILED, message=f"schedule: {exc}")
        err_console.print(f"job {job_id} failed: {exc}", highlight=False, markup=False)
        return exc.exit_code if exc.exit_code != 2 else 1
    return await finish(store, job, False)  # the final line on stderr: stdout is run-due's
