"""``fleetops run ACTION|JOBFILE``: parse the flags, build the job with the API, plan, confirm,
run, render.

The flags are declared as data in :mod:`fleetops.cli.run_options` (selectors, job options, and
a flag per parameter of the catalogue in :mod:`fleetops.catalogue.actions`; the word after the
action is ``maintenance on``'s); ``run`` itself names only its own switches.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from fleetops.catalogue.actions import ACTIONS, RecipeSpec, get_action
from fleetops.catalogue.specs import RunRequest, Where
from fleetops.cli.common import err_console, fail, run_async, with_store
from fleetops.cli.execute import confirm, execute, finish, need_terminal, print_plan
from fleetops.cli.options import YesOpt, connection_options
from fleetops.cli.run_options import OPTION_FLAGS, SELECTOR_FLAGS, catalogue_flags, option_group
from fleetops.errors import UsageError

if TYPE_CHECKING:
    from fleetops.api import Store
    from fleetops.catalogue.specs import JobSpec

__all__ = ["USERS_CSV_HELP", "run", "run_app"]

USERS_CSV_HELP = (
    "The users CSV of create --from: a header row, then one WorkSpace a row. Columns: "
    "directory_id, user_name, bundle_id (required), running_mode (optional: AUTO_STOP, "
    "ALWAYS_ON, MANUAL), tags (optional: K=V;K2=V2). Example: "
    "directory_id,user_name,bundle_id,running_mode,tags / "
    "d-0123456789,alice,wsb-0123456789,AUTO_STOP,team=finance;cost=42"
)


def _actions_help() -> str:
    lines = [f"{name}: {spec.summary}" for name, spec in ACTIONS.items()]
    return (
        "Run ACTION, or a job file (jobs/FILE.yaml; flags override its fields), over the "
        "selected WorkSpaces.\n\n"
        "Actions:\n\n" + "\n\n".join(lines) + "\n\n"
        "--plan-only plans and stores the job (status planned) and prints the plan and its id; "
        "`fleetops jobs start JOB` then runs exactly that plan; with --require-approval "
        "only once another user has run `fleetops jobs approve JOB`.\n\n" + USERS_CSV_HELP
    )


run_app = typer.Typer(add_completion=False)


@run_app.command(
    "run",
    context_settings={"allow_interspersed_args": True},
    help=_actions_help(),
)
@connection_options
@option_group("params", catalogue_flags(), prefix="param_")
@option_group("options", OPTION_FLAGS)
@option_group("selectors", SELECTOR_FLAGS)
def run(
    action: Annotated[str, typer.Argument(help="An action, or a job file (jobs/FILE.yaml).")],
    arg: Annotated[
        str | None, typer.Argument(help="maintenance: on|off.", show_default=False)
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
    require_approval: Annotated[
        bool,
        typer.Option(
            "--require-approval",
            help="With --plan-only: the plan starts only once another user runs "
            "`fleetops jobs approve JOB` (the two-person rule).",
        ),
    ] = False,
    yes: YesOpt = False,
    as_json: Annotated[bool, typer.Option("--json", help="Final job as JSON on stdout.")] = False,
    selectors: dict[str, Any] | None = None,
    options: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
    where: Where | None = None,
) -> None:
    selectors = selectors or {}
    shared = {key: selectors.get(key) for key in ("running_mode", "compute_type")}
    request = RunRequest(
        action=action,
        argument=arg,
        selectors=selectors,
        params={**(params or {}), **shared},  # the action decides what a shared flag means
        options=options or {},
        where=where or Where(),
        require_approval=require_approval,
    )
    if dry_run_ and plan_only:
        fail("--dry-run writes nothing and --plan-only stores the plan: give one of them")
    if queue:  # a worker runs it: PostgreSQL only, checked before anything is written
        from fleetops.cli.worker import require_queue_store

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
        if spec.require_approval and not (plan_only or dry_run):
            raise UsageError(
                "this job requires approval: store its plan with --plan-only, have another "
                "user run `fleetops jobs approve JOB`, then `fleetops jobs start JOB`"
            )
    except UsageError as exc:
        fail(str(exc), exc.exit_code)
    if spec.action == "rollout":  # as a run checks them, before a dry run, plan or write
        _check_rollout(spec)
    if dry_run:
        from fleetops.api import dry_run as plan_without_writing

        summary = run_async(lambda: plan_without_writing(spec))
        print_plan(summary, as_json=as_json)
        if not as_json:
            _print_note(spec, summary.eligible)
        return 0
    action = get_action(spec.action)
    destructive = (
        bool(action.destructive_rungs(spec.params))
        if isinstance(action, RecipeSpec)
        else action.destructive
    )
    confirm_first = destructive and not yes and not plan_only
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


def _check_rollout(spec: JobSpec) -> None:
    """Each scope's bundle and image, as the run checks them (a scope not targeted or left
    without a bundle or image, an image absent or not AVAILABLE, a bundle not found): else one
    line, exit 2, nothing written."""
    from fleetops.api import check_configuration, check_rollout

    run_async(lambda: check_configuration(spec))  # no credentials: one line, nothing written
    run_async(lambda: check_rollout(spec))


def _print_note(spec: JobSpec, eligible: int) -> None:
    """A recipe's plan says which rungs a WorkSpace may reach, the destructive ones named; a
    rollout's, which bundle of each scope is pointed at which image."""
    action = get_action(spec.action)
    if isinstance(action, RecipeSpec):
        err_console.print(f"  {action.plan_note(spec.params, eligible)}", highlight=False)
    if spec.action == "rollout":
        from fleetops.catalogue.recipes import rollout_scopes, scope_keys

        keys = scope_keys([c.region for c in spec.connections], spec.accounts)
        for scope, (bundle, image) in rollout_scopes(spec.params, keys).items():
            err_console.print(
                f"  {scope}: bundle {bundle} → image {image}, then its WorkSpaces rebuilt",
                highlight=False,
            )


def _risk(spec: JobSpec) -> str:
    """The confirmation's words on the destructive rungs of a recipe ('' for an action)."""
    action = get_action(spec.action)
    if not isinstance(action, RecipeSpec):
        return ""
    risky = action.destructive_rungs(spec.params)
    return f", up to {' and '.join(risky)} (destructive)" if risky else ""


def _check_guards(spec: JobSpec, *, yes: bool) -> None:
    # a rollout selects its bundles' WorkSpaces, in each scope its own
    if spec.targets.selects_all and spec.action not in ("create", "rollout") and not yes:
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
    if queue:  # the document says what the job is once queued
        from fleetops.cli.worker import queue_planned

        if not as_json:
            print_plan(summary, job_id=job.id)
        code = await queue_planned(store, job.id, summary.eligible, confirm_first=confirm_first)
        if as_json:
            print_plan(summary, job_id=job.id, status="queued", as_json=True)
        return code
    print_plan(summary, job_id=job.id, as_json=as_json and plan_only)
    if not (as_json and plan_only):
        _print_note(spec, summary.eligible)
    if plan_only:
        if job.require_approval:
            err_console.print(
                f"job {job.id} awaits approval: another user runs "
                f"`fleetops jobs approve {job.id}`, then `fleetops jobs start {job.id}` runs it",
                highlight=False,
            )
        return 0
    confirm(
        f"{spec.action} {summary.eligible} WorkSpaces{_risk(spec)}?",
        refuse=f"{spec.action} is destructive: pass --yes",
        declined=f"not confirmed: nothing was done (the plan is kept: "
        f"`fleetops jobs start {job.id}` runs it)",
    )
    job = await execute(lambda stop, on: start_job(store, job.id, stop=stop, on_start=on))
    return await finish(store, job, as_json)
