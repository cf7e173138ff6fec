"""The two-person rule: a stored plan that needs an approval starts only once someone other
than its planner approves it; the one check every way in meets before any action call."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fleetops.errors import UsageError
from fleetops.states import JobStatus

if TYPE_CHECKING:
    from fleetops.records import JobRecord
    from fleetops.store import Store


def current_user() -> str | None:
    """Who this process acts as: the OS user, as a job's ``started_by`` records it (getpass:
    ``LOGNAME``, ``USER``, ``LNAME``, ``USERNAME``, then the password database)."""
    from fleetops.store.repo import current_user as os_user

    return os_user()


def approval_error(job: JobRecord) -> str | None:
    """Why ``job`` may not run yet under the two-person rule (None: it may). Pure."""
    if not job.require_approval or job.approved_by is not None:
        return None
    planner = f" other than {job.started_by}" if job.started_by else ""
    return (
        f"job {job.id} awaits approval: someone{planner} runs "
        f"`fleetops jobs approve {job.id}` first"
    )


def refuse_unapproved(job: JobRecord) -> None:
    """An :class:`AwaitsApprovalError` if ``job`` needs an approval it does not have yet: the one
    check that ``jobs start``, ``jobs resume`` and the workers (all through :func:`run_job`)
    meet before any action call."""
    problem = approval_error(job)
    if problem is not None:
        from fleetops.errors import AwaitsApprovalError

        raise AwaitsApprovalError(problem)


#: The longest comment an approval records.
MAX_APPROVAL_COMMENT = 1000


def _approval_refusal(job: JobRecord, by: str) -> str | None:
    """Why ``by`` cannot approve ``job`` (None: they can). Pure."""
    if not job.require_approval:
        return f"job {job.id} needs no approval (it was not planned with --require-approval)"
    if job.approved_by is not None:
        from fleetops.records import iso

        return f"job {job.id} was already approved by {job.approved_by} at {iso(job.approved_at)}"
    if job.status is not JobStatus.PLANNED or job.planned_at is None:
        return f"job {job.id} is {job.status.value}, not a complete stored plan awaiting approval"
    if not job.started_by:
        return f"job {job.id} records no planner: the two-person rule cannot be checked"
    if by == job.started_by:
        return f"{by} planned job {job.id}: an approval must come from someone else"
    return None


async def approve_job(
    store: Store, job_id: str, *, by: str | None = None, comment: str | None = None
) -> JobRecord:
    """Record ``by``'s approval (default: this process's OS user) of the stored plan
    ``job_id``, which then may start; a planner approving their own plan, a job that needs no
    approval or has one already, an unknown approver: a :class:`UsageError`, nothing written."""
    approver = (by if by is not None else current_user() or "").strip()
    if not approver:
        raise UsageError("cannot tell who is approving (no OS user name): nothing recorded")
    text = (comment or "").strip() or None
    if text is not None and len(text) > MAX_APPROVAL_COMMENT:
        raise UsageError(f"an approval comment is at most {MAX_APPROVAL_COMMENT} characters")
    job = await store.get_job(job_id)
    problem = _approval_refusal(job, approver)
    if problem is None and not await store.approve_job(job.id, approver, text):
        problem = _approval_refusal(await store.get_job(job.id), approver) or (
            f"job {job.id} changed while it was being approved: look again"
        )
    if problem is not None:
        raise UsageError(problem)
    return await store.get_job(job.id)
