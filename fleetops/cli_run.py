"""``fleetops run ACTION|JOBFILE``: parse the flags, build the job with the API, plan, confirm,
run, render.

The action names and their parameter flags come from the catalogue (:mod:`fleetops.actions`):
each parameter of an action is a flag here (or the word after the action, as ``maintenance
on``), added by :func:`catalogue_options`.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from fleetops.actions import ACTIONS, Param, all_params, get_action
from fleetops.cli_common import err_console, fail, run_async, with_store
from fleetops.cli_exec import confirm, execute, finish, need_terminal, print_plan
from fleetops.cli_options import YesOpt, connection_options
from fleetops.errors import UsageError
from fleetops.options import DEFAULT_BURST, DEFAULT_RATE
from fleetops.specs import RunRequest, Where

if TYPE_CHECKING:
    from fleetops.specs import JobSpec
    from fleetops.store import Store

__all__ = ["USERS_CSV_HELP", "run", "run_app"]

F = TypeVar("F", bound=Callable[..., Any])

USERS_CSV_HELP = (
    "The users CSV of create --from: a header row, then one WorkSpace a row. Columns: "
    "directory_id, user_name, bundle_id (required), running_mode (optional: AUTO_STOP, "
    "ALWAYS_ON, MANUAL), tags (optional: K=V;K2=V2). Example: "
    "directory_id,user_name,bundle_id,running_mode,tags / "
    "d-0123456789,alice,wsb-0123456789,AUTO_STOP,team=finance;cost=42"
)

#: Selector flags that are also a parameter of some action (``--running-mode``): one flag.
_SELECTOR_FLAGS = {"--running-mode", "--compute-type"}
_KIND_TYPES: dict[str, Any] = {"int": int, "pairs": list[str], "keys": list[str], "path": Path}
_PARAMS_PANEL = "Action parameters"


def _takers(param: Param) -> str:
    return ", ".join(name for name, spec in ACTIONS.items() if spec.param(param.key) is not None)


def _flag_parameter(param: Param) -> inspect.Parameter:
    kind = _KIND_TYPES.get(param.kind, str)
    repeat = " (repeatable)" if param.kind in ("pairs", "keys") else ""
    option = typer.Option(
        param.flag,
        help=f"{_takers(param)}: {param.what} ({param.hint}){repeat}.",
        rich_help_panel=_PARAMS_PANEL,
        show_default=False,
    )
    return inspect.Parameter(
        f"param_{param.key}",
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[kind | None, option],
    )


def catalogue_options(fn: F) -> F:
    """Give ``run`` a flag per parameter of the catalogue; it receives their values as one
    ``params`` keyword argument (keyed by parameter, None when not given)."""
    signature = inspect.signature(fn, eval_str=True)
    flagged = [p for p in all_params() if not p.positional and p.flag not in _SELECTOR_FLAGS]
    extra = [_flag_parameter(p) for p in flagged]

    @functools.wraps(fn)
    def command(*args: Any, **kwargs: Any) -> Any:
        params = {p.key: kwargs.pop(f"param_{p.key}", None) for p in flagged}
        return fn(*args, params=params, **kwargs)

    own = [p for p in signature.parameters.values() if p.name != "params"]
    command.__signature__ = signature.replace(parameters=[*own, *extra])  # type: ignore[attr-defined]
    return command  # type: ignore[return-value]


def _actions_help() -> str:
    lines = [f"{name}: {spec.summary}" for name, spec in ACTIONS.items()]
    return (
        "Run ACTION, or a job file (jobs/FILE.yaml; flags override its fields), over the "
        "selected WorkSpaces.\n\n"
        "Actions:\n\n" + "\n\n".join(lines) + "\n\n"
        "--plan-only plans and stores the job (status planned) and prints the plan and its id; "
        "`fleetops jobs start JOB` then runs exactly that plan.\n\n" + USERS_CSV_HELP
    )


run_app = typer.Typer(add_completion=False)


@run_app.command(
    "run",
    context_settings={"allow_interspersed_args": True},
    help=_actions_help(),
)
@connection_options
@catalogue_options
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
    dry_run_: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan; write nothing.")
    ] = False,
    plan_only: Annotated[
        bool,
        typer.Option(
            "--plan-only", help="Plan and store the job (planned); print the plan and its id."
        ),
    ] = False,
    queue: Annotated[
        bool, typer.Option("--queue", help="Plan and store the job queued for a worker.")
    ] = False,
    yes: YesOpt = False,
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
    connect_timeout: Annotated[
        float | None, typer.Option(help="Seconds to wait for a connection (default 5).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Final job as JSON on stdout.")] = False,
    params: dict[str, Any] | None = None,
    where: Where | None = None,
) -> None:
    request = RunRequest(
        action=action,
        argument=arg,
        selectors={
            "workspace_ids": tuple(workspace_id or ()),
            "ids_file": str(ids_file) if ids_file else None,
            "directory_id": directory_id,
            "bundle_id": bundle_id,
            "states": tuple(state_ or ()),
            "running_mode": running_mode,
            "compute_type": compute_type,
            "user": user,
            "tags": tuple(tag or ()),
            "exclude_tags": tuple(exclude_tag or ()),
            "idle_days": idle_days,
        },
        params={**(params or {}), "running_mode": running_mode, "compute_type": compute_type},
        options={
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
            "connect_timeout": connect_timeout,
        },
        where=where or Where(),
    )
    if dry_run_ and plan_only:
        fail("--dry-run writes nothing and --plan-only stores the plan: give one of them")
    if queue:  # a worker runs it: PostgreSQL only, checked before anything is written
        from fleetops.cli_worker import require_queue_store

        if dry_run_ or plan_only:
            fail("--queue stores the job for a worker: not with --dry-run or --plan-only")
        require_queue_store()
    raise typer.Exit(
        run_request(
            request, dry_run=dry_run_, plan_only=plan_only, yes=yes, as_json=as_json, queue=queue
        )
    )


def run_request(
    request: RunRequest,
    *,
    dry_run: bool,
    plan_only: bool,
    yes: bool,
    as_json: bool,
    queue: bool = False,
) -> int:
    """Build, check and run (or plan) a request; returns the exit code."""
    from fleetops.api import build_spec

    try:
        spec = build_spec(request)
        _check_guards(spec, yes=yes or dry_run or plan_only)
    except UsageError as exc:
        fail(str(exc), exc.exit_code)
    if dry_run:
        from fleetops.api import dry_run as plan_without_writing

        summary = run_async(lambda: plan_without_writing(spec))
        print_plan(summary, as_json=as_json)
        return 0
    confirm_first = get_action(spec.action).destructive and not yes and not plan_only
    if confirm_first:
        try:
            need_terminal(f"{spec.action} is destructive: pass --yes")
        except UsageError as exc:
            fail(str(exc))

    from fleetops.api import check_configuration

    run_async(lambda: check_configuration(spec))  # no credentials: one line, nothing written

    async def use(store: Store) -> int:
        return await _run_spec(
            store,
            spec,
            plan_only=plan_only,
            confirm_first=confirm_first,
            as_json=as_json,
            queue=queue,
        )

    return run_async(lambda: with_store(use))


def _check_guards(spec: JobSpec, *, yes: bool) -> None:
    if spec.targets.selects_all and spec.action != "create" and not yes:
        regions = ", ".join(c.region for c in spec.connections)
        raise UsageError(
            f"no selector given: this would {spec.action} every WorkSpace in {regions}; "
            "add a selector, or --yes to mean it"
        )


async def _run_spec(
    store: Store,
    spec: JobSpec,
    *,
    plan_only: bool,
    confirm_first: bool,
    as_json: bool,
    queue: bool = False,
) -> int:
    """Record the job; plan it first when it is to be shown (plan-only, or a confirmation),
    then run the stored plan, or plan and run in one go."""
    from fleetops.api import create_job, plan_job, run_job, start_job, stored_plan
    from fleetops.states import JobStatus

    job = await create_job(store, spec)
    regions = ", ".join(c.region for c in spec.connections)
    if not (plan_only or confirm_first or queue):
        err_console.print(
            f"job {job.id}: {spec.action} in {regions} (resume with "
            f"`fleetops jobs resume {job.id}`)",
            highlight=False,
        )
        job = await execute(lambda stop, on: run_job(store, job.id, stop=stop, on_start=on))
        return await finish(store, job, as_json)
    job = await execute(lambda stop, on: plan_job(store, job.id, stop=stop, on_start=on))
    if job.planned_at is None or job.status is not JobStatus.PLANNED:
        if job.status is JobStatus.PLANNED:  # stopped while planning
            fail(f"planning of job {job.id} was stopped: nothing was run", 130)
        return await finish(store, job, as_json)  # planning failed: the job says why
    summary = await stored_plan(store, job.id)
    print_plan(summary, job_id=job.id, as_json=as_json and (plan_only or queue))
    if queue:
        from fleetops.cli_worker import queue_planned

        return await queue_planned(store, job.id, summary.eligible, confirm_first=confirm_first)
    if plan_only:
        return 0
    confirm(
        f"{spec.action} {summary.eligible} WorkSpaces?",
        refuse=f"{spec.action} is destructive: pass --yes",
        declined=f"not confirmed: nothing was done (the plan is kept: "
        f"`fleetops jobs start {job.id}` runs it)",
    )
    job = await execute(lambda stop, on: start_job(store, job.id, stop=stop, on_start=on))
    return await finish(store, job, as_json)
