"""Job history as JSON documents and item exports (CSV or JSON), without rich: what ``--json``
and ``jobs export`` print.

``job_json`` is the documented contract of ``jobs show --json`` (and of the final line of
``run --json`` / ``jobs resume --json``): the documented keys come first and exactly as written;
a few extra keys follow. :mod:`fleetops.report.text` re-exports everything here next to its tables.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TextIO

from fleetops.records import ItemRecord, JobRecord, iso, shown_target
from fleetops.states import ItemState

if TYPE_CHECKING:
    from fleetops.records import JobHistory, StepRecord

#: The steps of a page of items, by item id (a job of several steps: a recipe).
StepsOf = Callable[[Sequence[ItemRecord]], Mapping[int, Sequence["StepRecord"]]]

__all__ = [
    "EXPORT_FORMATS",
    "ITEM_FIELDS",
    "ItemWriter",
    "StepsOf",
    "approval_json",
    "history_json",
    "item_json",
    "job_json",
    "write_items",
]

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
    ``options``, ``planned_at``, ``regions`` (every region of the job, with its endpoint),
    who started it, its accounts and ``approval`` (:func:`approval_json`), and
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
        "options": _shown_options(job.options),
        "planned_at": iso(job.planned_at),
        "regions": [
            {"region": region, "endpoint_url": job.endpoints.get(region)} for region in job.regions
        ],
        "started_by": job.started_by,
        "started_host": job.started_host,
        "caller_arn": job.caller_arn,
        "accounts": list(job.accounts) if job.accounts else None,
        "assume": job.assume,
        "approval": approval_json(job),
        "notifications": list(job.notifications),
        "window": list(job.options.get("window") or []),
        "next_window_at": iso(job.next_window_at),
    }
    if unverified is not None:
        data["unverified"] = unverified
    return data


def approval_json(job: JobRecord) -> dict[str, Any]:
    """The two-person rule of a job: whether its plan needs an approval, and who gave it when
    (and why)."""
    return {
        "required": job.require_approval,
        "approved_by": job.approved_by,
        "approved_at": iso(job.approved_at),
        "comment": job.approval_comment,
    }


def _shown_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """A job's options as they may be printed: notification targets without their secrets."""
    if not options.get("notify"):
        return dict(options)
    return {**options, "notify": [shown_target(t) for t in options["notify"]]}


def item_json(item: ItemRecord, steps: Sequence[StepRecord] | None = None) -> dict[str, Any]:
    """An item as ``jobs items --json`` shows it; with ``steps`` (a recipe's item), its steps
    in order, the open one with the item's live state."""
    data = item.as_dict()
    out = {name: data[name] for name in ITEM_FIELDS}
    if steps is not None:
        out["steps"] = [step.as_dict(item) for step in steps]
    return out


def steps_text(item: ItemRecord, steps: Sequence[StepRecord]) -> str:
    """``reboot:failed;restore:succeeded``: an item's steps in one CSV cell."""
    return ";".join(f"{s.action}:{s.as_dict(item)['outcome']}" for s in steps)


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


def _csv_value(value: Any) -> Any:
    return "" if value is None else value


class ItemWriter:
    """Items to ``out`` as CSV (a header row, then one row per item) or JSON (one array), a batch
    at a time: memory stays bounded however big the job. :meth:`close` ends the document."""

    def __init__(self, fmt: str, out: TextIO, steps: StepsOf | None = None) -> None:
        if fmt not in EXPORT_FORMATS:
            raise ValueError(f"unknown export format {fmt!r}")
        self.fmt = fmt
        self.out = out
        self.written = 0
        self.steps = steps  # a recipe's job: each item's steps too (CSV: one ``steps`` cell)
        self._csv = csv.writer(out, lineterminator="\n") if fmt == "csv" else None
        if self._csv is not None:
            self._csv.writerow([*ITEM_FIELDS, "steps"] if steps else ITEM_FIELDS)
        else:
            out.write("[")

    def write(self, batch: Iterable[ItemRecord]) -> None:
        items = list(batch)
        found = self.steps(items) if self.steps is not None else None
        for item in items:
            steps = None if found is None else found.get(item.id, ())
            if self._csv is not None:
                data = item.as_dict()
                row = [_csv_value(data[name]) for name in ITEM_FIELDS]
                if steps is not None:
                    row.append(steps_text(item, steps))
                self._csv.writerow(row)
            else:
                self.out.write(",\n" if self.written else "\n")
                self.out.write(json.dumps(item_json(item, steps)))
            self.written += 1

    def close(self) -> int:
        """End the document; returns how many items were written."""
        if self._csv is None:
            self.out.write("\n]\n" if self.written else "]\n")
        return self.written


def write_items(
    pages: Iterable[Iterable[ItemRecord]], fmt: str, out: TextIO, steps: StepsOf | None = None
) -> int:
    """Every page of items to ``out`` (see :class:`ItemWriter`); returns how many were written."""
    writer = ItemWriter(fmt, out, steps)
    for page in pages:
        writer.write(page)
    return writer.close()
