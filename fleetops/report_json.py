"""Job history as JSON documents, without rich: what ``--json`` prints.

``job_json`` is the documented contract of ``jobs show --json`` (and of the final line of
``run --json`` / ``jobs resume --json``): the documented keys come first and exactly as written;
a few extra keys follow. :mod:`fleetops.report` re-exports everything here next to its tables.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from fleetops.states import ItemState
from fleetops.store.records import ItemRecord, JobRecord, iso

if TYPE_CHECKING:
    from fleetops.store.history_types import JobHistory

__all__ = ["EXPORT_FORMATS", "ITEM_FIELDS", "history_json", "item_json", "job_json"]

#: The columns of an item in exports (``jobs export``) and in ``jobs items --json``.
ITEM_FIELDS: tuple[str, ...] = (
    "workspace_id",
    "region",
    "state",
    "attempts",
    "seen_state",
    "last_state",
    "user_name",
    "directory_id",
    "bundle_id",
    "reason",
    "error_code",
    "error_message",
    "result",
    "submitted_at",
    "updated_at",
    "account",  # the account reached by an assumed role (empty: the caller's own)
)
EXPORT_FORMATS = ("csv", "json")


# -- JSON ----------------------------------------------------------------------------------------


def job_json(
    job: JobRecord, counts: Mapping[str, int], unverified: int | None = None
) -> dict[str, Any]:
    """The job as ``jobs show --json`` documents it, then ``parent_id``, ``profile``, ``message``,
    ``options``, ``planned_at`` and ``regions`` (every region of the job, with its endpoint), and
    with ``unverified`` given, ``unverified``: how many of the succeeded items were never
    verified (as ``jobs show --json`` counts them)."""
    full = {state.value: int(counts.get(state.value, 0)) for state in ItemState}
    data = {
        "id": job.id,
        "action": job.action,
        "status": job.status.value,
        "total": sum(full.values()),
        "counts": full,
        "region": job.region,
        "endpoint_url": job.endpoint_url,
        "params": job.params,
        "targets": job.targets,
        "created_at": iso(job.created_at),
        "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
        "parent_id": job.parent_id,
        "profile": job.profile,
        "message": job.message,
        "options": job.options,
        "planned_at": iso(job.planned_at),
        "regions": [
            {"region": region, "endpoint_url": job.endpoints.get(region)} for region in job.regions
        ],
        "started_by": job.started_by,
        "started_host": job.started_host,
        "caller_arn": job.caller_arn,
        "accounts": list(job.accounts) if job.accounts else None,
        "assume": job.assume,
    }
    if unverified is not None:
        data["unverified"] = unverified
    return data


def item_json(item: ItemRecord) -> dict[str, Any]:
    data = item.as_dict()
    return {name: data[name] for name in ITEM_FIELDS}


def history_json(history: JobHistory) -> dict[str, Any]:
    """``jobs show --json``: :func:`job_json` plus durations, errors, skip reasons, in-doubt items
    and the API calls the job made."""
    data = job_json(history.job, history.counts)
    spans = history.durations
    data["durations"] = {
        "plan_s": _round(spans.plan_s),
        "wait_s": _round(spans.wait_s),
        "run_s": _round(spans.run_s),
        "succeeded_per_s": _round(spans.throughput),
    }
    data["errors"] = [
        {
            "code": group.code,
            "count": group.count,
            "examples": [
                {"workspace_id": ex.workspace_id, "message": ex.message} for ex in group.examples
            ],
        }
        for group in history.errors
    ]
    data["skipped_reasons"] = [{"reason": g.reason, "count": g.count} for g in history.skipped]
    # Succeeded items never verified (error code Unverified): a part of counts["succeeded"].
    unverified = history.unverified
    data["unverified"] = unverified.count if unverified is not None else 0
    data["unverified_examples"] = [
        {"workspace_id": ex.workspace_id, "message": ex.message}
        for ex in (unverified.examples if unverified is not None else ())
    ]
    data["in_doubt"] = [item_json(item) for item in history.in_doubt]
    if history.scopes:  # a job over several accounts or regions: each one's counts and errors
        data["scopes"] = [
            {
                "scope": scope.key,
                "account": scope.account,
                "region": scope.region,
                "counts": scope.counts,
                "errors": scope.errors,
            }
            for scope in history.scopes
        ]
    data["api_calls"] = {
        "total": history.api_calls,
        "retries": history.retries,
        "operations": [
            {
                "operation": op.operation,
                "calls": op.calls,
                "attempts": op.attempts,
                "retries": op.retries,
                "errors": op.errors,
                "partial": op.partial,
                "duration_ms": op.duration_ms,
            }
            for op in history.operations
        ],
    }
    return data


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
