"""The ``fleetops`` command: parse, open the store, call the library, render.

Exit codes (DESIGN.md): 0 every item succeeded or was skipped; 1 some items failed; 2 usage or
bad input (nothing written); 3 aborted by --max-errors; 4 items in doubt await the operator;
130 interrupted (resumable).
"""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from fleetops import __version__
from fleetops.cli_common import err_console, fail, print_json, run_async, state, with_store
from fleetops.errors import UsageError
from fleetops.states import ItemState, exit_code_for

# The engine (aiobotocore, botocore's model, the runner) is imported inside the commands that
# need it, so that history commands start fast.
if TYPE_CHECKING:
    from fleetops.planner import PlanSummary
    from fleetops.runner import JobRunner, StopSignal
    from fleetops.store import JobRecord, Store

ACTION_NAMES = (
    "reboot",
    "start",
    "stop",
    "terminate",
    "rebuild",
    "restore",
    "migrate",
    "modify",
    "maintenance",
    "tag",
    "create",
)
DEFAULT_RATE = 2.0
DEFAULT_BURST = 5

__all__ = ["app", "main"]

app = typer.Typer(
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


@app.callback()
def _root(
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            help="Database file or sqlite URL (default: $FLEETOPS_DB, else the user data dir).",
            show_default=False,
        ),
    ] = None,
    verbose: Annotated[int, typer.Option("-v", "--verbose", count=True, help="Debug logs.")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Async fleet operations for Amazon WorkSpaces."""
    state.db = db
    state.verbose = verbose
    state.quiet = quiet
    level = logging.DEBUG if verbose else (logging.ERROR if quiet else logging.WARNING)
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Never the libraries' DEBUG: botocore logs whole requests there, signing headers and
    # session tokens included. -v is fleetops's own debug log.
    for library in ("botocore", "aiobotocore", "urllib3", "aiohttp", "sqlalchemy", "asyncio"):
        logging.getLogger(library).setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.ERROR)


from fleetops.bench.cli import bench_app  # noqa: E402
from fleetops.cli_jobs import existing_db, jobs_app  # noqa: E402
from fleetops.sim.cli import sim_app  # noqa: E402

app.add_typer(jobs_app, name="jobs", help="Job history: list, show, items, export, resume, ...")
app.add_typer(sim_app, name="sim")
app.add_typer(bench_app, name="bench")
db_app = typer.Typer(no_args_is_help=True, help="The job database.")
app.add_typer(db_app, name="db")


# -- running --------------------------------------------------------------------------------


def _signal_stop(stop: StopSignal) -> Any:
    import anyio

    async def receive() -> None:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                name = signal.Signals(signum).name
                if stop.is_set:
                    err_console.print(f"{name} again: stopping now", highlight=False)
                    stop.set_hard()
                else:
                    err_console.print(
                        f"{name}: no new batches; waiting for calls in flight "
                        "(again to stop at once)",
                        highlight=False,
                    )
                    stop.set(f"interrupted by {name}")

    return receive


async def execute(
    store: Store,
    job_id: str,
    *,
    redo_in_doubt: bool = False,
    credentials: tuple[str, str] | None = None,
) -> JobRecord:
    """Run a job with progress and signal handling (shared by run, resume, retry, demo)."""
    import anyio

    from fleetops.api import run_job
    from fleetops.progress import watch
    from fleetops.runner import StopSignal

    stop = StopSignal()
    async with anyio.create_task_group() as tg:
        tg.start_soon(_signal_stop(stop))

        def started(runner: JobRunner) -> None:
            async def show() -> None:
                await watch(runner, err_console, quiet=state.quiet)

            tg.start_soon(show)

        try:
            job = await run_job(
                store,
                job_id,
                stop=stop,
                redo_in_doubt=redo_in_doubt,
                credentials=credentials,
                on_start=started,
            )
        finally:
            tg.cancel_scope.cancel()
    return job


async def finish(store: Store, job: JobRecord, as_json: bool) -> int:
    from fleetops.report import job_json

    counts = await store.counts(job.id)
    if as_json:
        print_json(job_json(job, counts))
    else:
        shown = ", ".join(f"{counts[s]} {s}" for s in ItemState if counts[s])
        err_console.print(f"job {job.id} {job.status}: {shown or 'no items'}", highlight=False)
        if job.message:
            err_console.print(job.message, highlight=False)
    return exit_code_for(job.status, counts)


def _print_plan(summary: PlanSummary, as_json: bool) -> None:
    if as_json:
        print_json({"dry_run": True, **summary.as_dict()})
        return
    out = err_console
    out.print(f"dry run: {summary.action} — nothing was written", highlight=False)
    out.print(f"  {summary.eligible} WorkSpaces would be acted on", highlight=False)
    for reason, count in summary.skipped.most_common():
        out.print(f"  {count} skipped: {reason}", highlight=False)
    for group, examples in summary.examples.items():
        out.print(f"  e.g. {group}: {', '.join(examples)}", highlight=False)
    out.print(
        f"  API calls: {summary.planning_calls} to plan (of which {summary.snapshot_calls} "
        f"snapshot checks); to run, {summary.submit_calls} to act and ~{summary.verify_calls} "
        f"to verify (~{summary.seconds_at_quota:.0f} s at {summary.rate or 'unlimited'} calls/s)",
        highlight=False,
    )


_PARAM_FLAGS: dict[str, dict[str, str]] = {
    # action → {parameter: the flag that sets it}
    "migrate": {"to_bundle": "--to-bundle"},
    "modify": {
        "running_mode": "--running-mode",
        "auto_stop_timeout": "--auto-stop-timeout",
        "compute_type": "--compute-type",
        "root_volume": "--root-volume",
        "user_volume": "--user-volume",
        "protocols": "--protocols",
    },
    "tag": {"set": "--set", "remove": "--remove"},
    "maintenance": {"maintenance": "on|off"},
    "create": {"from": "--from"},
}
_ALL_FLAGS = {name: flag for flags in _PARAM_FLAGS.values() for name, flag in flags.items()}


def _override_targets(targets: Any, flags: dict[str, Any]) -> Any:
    """A job file's selectors with those given as flags replacing the file's."""
    from fleetops.targets import Targets

    merged = {**targets.as_dict(), **flags}
    if "ids_file" in flags and "workspace_ids" not in flags:
        merged.pop("workspace_ids", None)  # the flag's file replaces the file's ids
    merged["tags"] = (
        [f"{k}={v}" for k, v in merged.get("tags", ())]
        if "tags" not in flags
        else (list(flags["tags"]))
    )
    merged["exclude_tags"] = (
        [f"{k}={v}" for k, v in merged.get("exclude_tags", ())]
        if "exclude_tags" not in flags
        else list(flags["exclude_tags"])
    )
    return Targets.build(**merged)


def _params_for(action: str, values: dict[str, Any], *, partial: bool = False) -> dict[str, Any]:
    """Action parameters from flags, keyed as in job files; a flag that does not apply to the
    action is refused. ``partial``: flags overriding a job file's params (nothing required)."""
    given = {k: v for k, v in values.items() if v not in (None, [], ())}
    allowed = _PARAM_FLAGS.get(action, {})
    for name in sorted(set(given) - set(allowed)):
        raise UsageError(f"{_ALL_FLAGS[name]} does not apply to {action}")
    if "maintenance" in given:
        mode = str(given["maintenance"]).lower()
        if mode not in ("on", "off"):
            raise UsageError(f"maintenance takes on or off, not {given['maintenance']!r}")
        given["maintenance"] = mode == "on"
    elif action == "maintenance" and not partial:
        raise UsageError("maintenance needs on or off (fleetops run maintenance on ...)")
    if "set" in given:
        pairs: dict[str, str] = {}
        for text in given["set"]:
            key, sep, value = text.partition("=")
            if not sep or not key:
                raise UsageError(f"--set {text!r} must be KEY=VALUE")
            pairs[key] = value
        given["set"] = pairs
    if "remove" in given:
        given["remove"] = list(given["remove"])
    if partial:
        return given
    if action == "migrate" and "to_bundle" not in given:
        raise UsageError("migrate needs --to-bundle wsb-…")
    if action == "tag" and not ("set" in given or "remove" in given):
        raise UsageError("tag needs --set K=V and/or --remove K")
    if action == "modify" and not given:
        raise UsageError("modify needs at least one of " + ", ".join(allowed.values()))
    if action == "create" and "from" not in given:
        raise UsageError("create needs --from users.csv")
    return given


def _connections(regions: list[str], endpoints: list[str], profile: str | None) -> list[Any]:
    """One connection per region; one endpoint serves all, or there is one per region."""
    from fleetops.aws import Connection

    if len(set(regions)) != len(regions):
        raise UsageError("a --region is given twice")
    if len(endpoints) > 1 and len(endpoints) != len(regions):
        raise UsageError(
            f"{len(endpoints)} --endpoint-url for {len(regions)} --region: give one endpoint, "
            "or one per region in the same order"
        )
    if not regions:
        return [Connection.resolve(None, profile, endpoints[0] if endpoints else None)]
    return [
        Connection.resolve(
            region,
            profile,
            endpoints[index] if len(endpoints) > 1 else (endpoints[0] if endpoints else None),
        )
        for index, region in enumerate(regions)
    ]


def _is_job_file(text: str) -> bool:
    return text.endswith((".yaml", ".yml")) or ("/" in text and Path(text).is_file())


@app.command(
    context_settings={"allow_interspersed_args": True},
    help="Run ACTION (" + ", ".join(ACTION_NAMES) + ") or a job file over the selected WorkSpaces.",
)
def run(
    action: Annotated[str, typer.Argument(help="An action, or a job file (jobs/FILE.yaml).")],
    arg: Annotated[
        str | None, typer.Argument(help="maintenance: on|off.", show_default=False)
    ] = None,
    workspace_id: Annotated[
        list[str] | None, typer.Option("--workspace-id", help="A WorkSpace id (repeatable).")
    ] = None,
    ids_file: Annotated[
        Path | None, typer.Option(help="A file of WorkSpace ids, one a line, # comments.")
    ] = None,
    directory_id: Annotated[str | None, typer.Option(help="Select a directory.")] = None,
    bundle_id: Annotated[str | None, typer.Option(help="Select a bundle.")] = None,
    state_: Annotated[
        list[str] | None, typer.Option("--state", help="Select a state (repeatable).")
    ] = None,
    running_mode: Annotated[
        str | None,
        typer.Option(help="Select a running mode (for modify: the new running mode)."),
    ] = None,
    compute_type: Annotated[
        str | None, typer.Option(help="Select a compute type (for modify: the new one).")
    ] = None,
    user: Annotated[str | None, typer.Option(help="Select users by glob.")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="Select by tag K=V.")] = None,
    exclude_tag: Annotated[
        list[str] | None, typer.Option("--exclude-tag", help="Leave out tag K=V (opt-out).")
    ] = None,
    idle_days: Annotated[
        float | None, typer.Option(help="Select WorkSpaces unused for N days.")
    ] = None,
    to_bundle: Annotated[str | None, typer.Option(help="migrate: the target bundle.")] = None,
    auto_stop_timeout: Annotated[
        int | None, typer.Option(help="modify: auto-stop timeout in minutes.")
    ] = None,
    root_volume: Annotated[int | None, typer.Option(help="modify: root volume GiB.")] = None,
    user_volume: Annotated[int | None, typer.Option(help="modify: user volume GiB.")] = None,
    protocols: Annotated[str | None, typer.Option(help="modify: PCOIP or WSP.")] = None,
    set_tags: Annotated[
        list[str] | None, typer.Option("--set", help="tag: set K=V (repeatable).")
    ] = None,
    remove_tags: Annotated[
        list[str] | None, typer.Option("--remove", help="tag: remove key K (repeatable).")
    ] = None,
    from_csv: Annotated[Path | None, typer.Option("--from", help="create: a users CSV.")] = None,
    region: Annotated[
        list[str] | None,
        typer.Option(help="AWS region (repeatable: one job over several regions)."),
    ] = None,
    profile: Annotated[str | None, typer.Option(help="AWS profile.")] = None,
    endpoint_url: Annotated[
        list[str] | None,
        typer.Option(help="WorkSpaces endpoint URL (one, or one per --region in order)."),
    ] = None,
    dry_run_: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan; write nothing.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    rate: Annotated[float | None, typer.Option(help=f"Calls/s (default {DEFAULT_RATE}).")] = None,
    burst: Annotated[int | None, typer.Option(help=f"Burst (default {DEFAULT_BURST}).")] = None,
    concurrency: Annotated[int | None, typer.Option(help="Calls in flight at most.")] = None,
    max_errors: Annotated[str | None, typer.Option(help="Abort past N or P% failures.")] = None,
    waves: Annotated[str | None, typer.Option(help="Wave sizes, e.g. 5,50,all.")] = None,
    no_wait: Annotated[bool, typer.Option("--no-wait", help="Do not verify.")] = False,
    verify_timeout: Annotated[
        float | None, typer.Option(help="Seconds to wait for each WorkSpace to settle.")
    ] = None,
    include_connected: Annotated[
        bool, typer.Option("--include-connected", help="Act on WorkSpaces in use too.")
    ] = False,
    max_snapshot_age: Annotated[
        float | None, typer.Option(help="Hours (rebuild/restore/migrate guardrail).")
    ] = None,
    ignore_snapshot_age: Annotated[bool, typer.Option("--ignore-snapshot-age")] = False,
    read_timeout: Annotated[
        float | None, typer.Option(help="Seconds to wait for an API answer (default 30).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Final job as JSON on stdout.")] = False,
) -> None:
    from fleetops.actions import get_action
    from fleetops.api import JobSpec, create_job, dry_run
    from fleetops.options import JobOptions, parse_waves
    from fleetops.targets import Targets

    flags: dict[str, Any] = {
        "rate": rate,
        "burst": burst,
        "concurrency": concurrency,
        "max_errors": max_errors,
        "waves": waves,
        "no_wait": no_wait or None,
        "verify_timeout": verify_timeout,
        "include_connected": include_connected or None,
        "max_snapshot_age": max_snapshot_age,
        "ignore_snapshot_age": ignore_snapshot_age or None,
        "read_timeout": read_timeout,
    }
    flags = {k: v for k, v in flags.items() if v is not None}
    try:
        if "waves" in flags:
            flags["waves"] = parse_waves(flags["waves"])
        job_file = _is_job_file(action)
        if job_file:
            from fleetops.jobfile import load_job_file

            jobfile = load_job_file(Path(action))
            action_name = jobfile.action
        else:
            action_name = action
        get_action(action_name)
        modify = action_name == "modify"
        if arg is not None and action_name != "maintenance":
            raise UsageError(f"unexpected argument {arg!r} (only maintenance takes on|off)")
        # Selectors and parameters given as flags; with a job file they override its fields.
        selector_flags: dict[str, Any] = {
            "workspace_ids": tuple(workspace_id or ()),
            "ids_file": str(ids_file) if ids_file else None,
            "directory_id": directory_id,
            "bundle_id": bundle_id,
            "states": tuple(state_ or ()),
            "running_mode": None if modify else running_mode,
            "compute_type": None if modify else compute_type,
            "user": user,
            "tags": tuple(tag or ()),
            "exclude_tags": tuple(exclude_tag or ()),
            "idle_days": idle_days,
        }
        selector_flags = {k: v for k, v in selector_flags.items() if v not in (None, ())}
        param_flags = {
            "to_bundle": to_bundle,
            "running_mode": running_mode if modify else None,
            "compute_type": compute_type if modify else None,
            "auto_stop_timeout": auto_stop_timeout,
            "root_volume": root_volume,
            "user_volume": user_volume,
            "protocols": protocols,
            "set": set_tags,
            "remove": remove_tags,
            "maintenance": arg,
            "from": str(from_csv.resolve()) if from_csv else None,
        }
        if job_file:
            targets = jobfile.to_targets()
            if selector_flags:
                targets = _override_targets(targets, selector_flags)
            options = jobfile.to_options(flags)
            given = {k: v for k, v in param_flags.items() if v not in (None, [], ())}
            params = {**jobfile.to_params(), **_params_for(action_name, given, partial=True)}
            region = region or jobfile.regions()
            profile = profile or jobfile.profile
            endpoint_url = endpoint_url or (
                [jobfile.endpoint_url] if jobfile.endpoint_url else None
            )
        else:
            targets = Targets.build(**selector_flags)
            options = JobOptions(**flags)
            params = _params_for(action_name, param_flags)
        connections = _connections(region or [], endpoint_url or [], profile)
        connection = connections[0]
        spec = JobSpec(
            more_regions=tuple(connections[1:]),
            action=action_name,
            targets=targets,
            connection=connection,
            options=options,
            params=params,
        )
    except UsageError as exc:
        fail(str(exc))
    spec_action = get_action(spec.action)
    if spec.targets.selects_all and spec.action != "create" and not yes and not dry_run_:
        fail(
            f"no selector given: this would {spec.action} every WorkSpace in "
            f"{', '.join(c.region for c in spec.connections)}; add a selector, or --yes to mean it"
        )

    if dry_run_:
        summary = run_async(lambda: dry_run(spec))
        _print_plan(summary, as_json)
        raise typer.Exit(0)

    if spec_action.destructive and not yes:
        if not sys.stdin.isatty():
            fail(f"{spec.action} is destructive: pass --yes (no terminal to confirm on)")
        summary = run_async(lambda: dry_run(spec))
        _print_plan(summary, False)
        if not typer.confirm(f"{spec.action} {summary.eligible} WorkSpaces?", err=True):
            fail("not confirmed: nothing was done", 1)

    async def go() -> int:
        async def use(store: Store) -> int:
            job = await create_job(store, spec)
            err_console.print(
                f"job {job.id}: {spec.action} in "
                f"{', '.join(c.region for c in spec.connections)} (resume with "
                f"`fleetops jobs resume {job.id}`)",
                highlight=False,
            )
            job = await execute(store, job.id)
            return await finish(store, job, as_json)

        return await with_store(use)

    raise typer.Exit(run_async(go))


@jobs_app.command("resume")
def resume(
    job_id: Annotated[str, typer.Argument(metavar="JOB", help="The job id (or a unique prefix).")],
    redo_in_doubt: Annotated[
        bool,
        typer.Option("--redo-in-doubt", help="Send in-doubt items again (after checking them)."),
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Final job as JSON on stdout.")] = False,
) -> None:
    """Resume an interrupted job: reconcile what was in flight, then carry on."""

    async def go() -> int:
        async def use(store: Store) -> int:
            job = await store.get_job(job_id)
            counts = await store.counts(job.id)
            if redo_in_doubt and counts[ItemState.IN_DOUBT] and not yes:
                if not sys.stdin.isatty():
                    raise UsageError(
                        f"--redo-in-doubt sends {job.action} again to "
                        f"{counts[ItemState.IN_DOUBT]} WorkSpaces: pass --yes"
                    )
                if not typer.confirm(
                    f"send {job.action} again to {counts[ItemState.IN_DOUBT]} in-doubt WorkSpaces?",
                    err=True,
                ):
                    raise UsageError("not confirmed: nothing was done")
            job = await execute(store, job.id, redo_in_doubt=redo_in_doubt)
            return await finish(store, job, as_json)

        return await with_store(use, existing_db())

    raise typer.Exit(run_async(go))


@jobs_app.command("retry")
def retry(
    job_id: Annotated[str, typer.Argument(metavar="JOB", help="The job whose failures to retry.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Final job as JSON on stdout.")] = False,
) -> None:
    """A new job, linked to JOB, over JOB's failed items (fresh plan: states are re-read)."""
    from fleetops.actions import get_action
    from fleetops.api import JobSpec, create_job, job_connections
    from fleetops.options import JobOptions
    from fleetops.targets import Targets

    async def go() -> int:
        async def use(store: Store) -> int:
            parent = await store.get_job(job_id)
            failed: list[str] = []
            async for page in store.iter_items(parent.id, states=[ItemState.FAILED]):
                failed.extend(item.workspace_id for item in page)
            if not failed:
                raise UsageError(f"job {parent.id} has no failed items")
            action = get_action(parent.action)
            if action.destructive and not yes:
                if not sys.stdin.isatty():
                    raise UsageError(f"{parent.action} is destructive: pass --yes")
                if not typer.confirm(f"{parent.action} {len(failed)} WorkSpaces again?", err=True):
                    raise UsageError("not confirmed: nothing was done")
            targets = Targets(workspace_ids=tuple(failed))
            spec = JobSpec(
                action=parent.action,
                targets=targets,
                connection=job_connections(parent)[0],
                more_regions=tuple(job_connections(parent)[1:]),
                options=JobOptions.from_dict(parent.options),
                params=parent.params,
            )
            job = await create_job(store, spec, parent_id=parent.id)
            err_console.print(
                f"job {job.id}: retry of {len(failed)} failed items of {parent.id}",
                highlight=False,
            )
            job = await execute(store, job.id)
            return await finish(store, job, as_json)

        return await with_store(use, existing_db())

    raise typer.Exit(run_async(go))


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create the database or bring its schema up to date."""
    from fleetops.cli_common import resolve_db
    from fleetops.store import Store

    async def go() -> None:
        store = await Store.open(resolve_db())
        await store.close()

    run_async(go)
    err_console.print(f"database {resolve_db()} is up to date", highlight=False)


@app.command()
def demo(
    workspaces: Annotated[int, typer.Option(help="Size of the simulated fleet.")] = 3000,
) -> None:
    """Run a realistic job against the built-in simulator, then show its history."""
    from fleetops.demo import run_demo

    raise typer.Exit(run_demo(workspaces=workspaces))


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
    except typer.TyperException as exc:  # click's usage errors, as typer vendors them
        ctx = getattr(exc, "ctx", None)
        hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        err_console.print(f"error: {exc.format_message()}{hint}", highlight=False, markup=False)
        sys.exit(exc.exit_code)
