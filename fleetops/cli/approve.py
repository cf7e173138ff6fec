"""``fleetops jobs approve JOB [--comment TEXT]``: the second person of the two-person rule.

A plan stored with ``run … --plan-only --require-approval`` starts only once someone other than
its planner (the job's ``started_by``, the OS user who planned it) approves it here or on the
dashboard. The approver is this process's OS user, as ``started_by`` records it. Refusals (the
planner approving, a job that needs no approval or is approved already, not a stored plan) are
one line and exit 2, with nothing written; an approval is recorded once, with who, when and the
comment.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from fleetops.api import JobRecord, Store

__all__ = ["approve_job"]


def approve_job(
    job: Annotated[str, typer.Argument(metavar="JOB", help="A job id, or a unique prefix of one.")],
    comment: Annotated[
        str | None,
        typer.Option("--comment", "-m", help="Why (recorded with the approval)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The job as JSON on stdout.")] = False,
) -> None:
    """Approve a stored plan planned by someone else (--require-approval): it may then start."""
    from fleetops.cli.common import out_console, print_json, run_async, with_store
    from fleetops.cli.jobs import existing_db

    where = existing_db()

    async def use(store: Store) -> tuple[JobRecord, dict[str, int]]:
        from fleetops.api import approve_job as approve

        record = await approve(store, job, comment=comment)
        return record, await store.counts(record.id)

    record, counts = run_async(lambda: with_store(use, where))
    if as_json:
        from fleetops.report.documents import job_json

        print_json(job_json(record, counts))
        return
    out_console.print(
        f"job {record.id} approved by {record.approved_by} (planned by {record.started_by}): "
        f"`fleetops jobs start {record.id}` runs it",
        highlight=False,
        markup=False,
    )
