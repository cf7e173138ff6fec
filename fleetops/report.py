"""Job history → JSON documents, rich tables, and CSV/JSON exports.

``job_json`` is the contract of shared/DESIGN.md (``jobs show --json`` and the final line of
``run --json`` / ``jobs resume --json``): the documented keys come first and exactly as written;
a few extra keys follow. Renderers take a rich ``Console`` so the CLI decides where output goes.
Exports stream a job's items page by page: memory stays bounded however big the job.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from fleetops.states import ItemState, JobStatus
from fleetops.store import ItemRecord, JobRecord, Store, iso
from fleetops.store.history import JobHistory

__all__ = [
    "EXPORT_FORMATS",
    "ITEM_FIELDS",
    "export_items",
    "format_duration",
    "history_json",
    "item_json",
    "job_json",
    "render_items",
    "render_job",
    "render_job_list",
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
)
EXPORT_FORMATS = ("csv", "json")

STATUS_STYLE: dict[str, str] = {
    JobStatus.PLANNED: "blue",
    JobStatus.RUNNING: "cyan",
    JobStatus.SUCCEEDED: "green",
    JobStatus.FAILED: "red",
    JobStatus.ABORTED: "bold red",
    JobStatus.INTERRUPTED: "yellow",
    JobStatus.CANCELLED: "dim",
}
STATE_STYLE: dict[str, str] = {
    ItemState.PENDING: "blue",
    ItemState.IN_FLIGHT: "cyan",
    ItemState.SUBMITTED: "cyan",
    ItemState.SUCCEEDED: "green",
    ItemState.FAILED: "red",
    ItemState.SKIPPED: "yellow",
    ItemState.IN_DOUBT: "bold magenta",
    ItemState.CANCELLED: "dim",
}


# -- JSON ----------------------------------------------------------------------------------------


def job_json(job: JobRecord, counts: Mapping[str, int]) -> dict[str, Any]:
    """The job as documented in shared/DESIGN.md, then ``parent_id``, ``profile``, ``message``,
    ``options`` and ``planned_at``."""
    full = {state.value: int(counts.get(state.value, 0)) for state in ItemState}
    return {
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
    }


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
    data["in_doubt"] = [item_json(item) for item in history.in_doubt]
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


# -- text helpers --------------------------------------------------------------------------------


def format_duration(seconds: float | None) -> str:
    """``3.2s``, ``12m 04s``, ``2h 05m``, ``3d 04h``; ``-`` for None."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    minutes, secs = divmod(whole, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d {hours:02d}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s"


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _status(status: str) -> Text:
    return Text(status, style=STATUS_STYLE.get(status, ""))


def _count(value: int, style: str) -> Text:
    return Text(str(value), style=style if value else "dim")


def _summary(mapping: Mapping[str, Any]) -> str:
    """``key=value`` pairs on one line; long lists shortened (an ids list can be thousands)."""
    parts = []
    for key, value in mapping.items():
        if isinstance(value, list | tuple):
            if value and all(isinstance(v, list | tuple) and len(v) == 2 for v in value):
                shown = ",".join(f"{k}={v}" for k, v in value[:5])
            else:
                shown = ",".join(str(v) for v in value[:5])
            if len(value) > 5:
                shown += f",… ({len(value)} in all)"
        elif isinstance(value, Mapping):
            shown = ",".join(f"{k}={v}" for k, v in value.items())
        else:
            shown = str(value)
        parts.append(f"{key}={shown}")
    return " ".join(parts) or "-"


# -- renderers -----------------------------------------------------------------------------------


def render_job_list(
    console: Console, jobs: Sequence[JobRecord], counts: Mapping[str, Mapping[str, int]]
) -> None:
    """``jobs list``: one row per job, newest first."""
    if not jobs:
        console.print("no jobs")
        return
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("JOB", no_wrap=True)
    table.add_column("ACTION", no_wrap=True)
    table.add_column("STATUS", no_wrap=True)
    table.add_column("ITEMS", justify="right")
    table.add_column("OK", justify="right")
    table.add_column("FAIL", justify="right")
    table.add_column("SKIP", justify="right")
    table.add_column("DOUBT", justify="right")
    table.add_column("CREATED (UTC)", no_wrap=True)
    table.add_column("RAN", justify="right", no_wrap=True)
    for job in jobs:
        c = counts.get(job.id, {})
        ran = None
        if job.started_at is not None and job.finished_at is not None:
            ran = job.finished_at - job.started_at
        table.add_row(
            job.id,
            job.action,
            _status(job.status.value),
            str(sum(c.values())),
            _count(c.get(ItemState.SUCCEEDED, 0), "green"),
            _count(c.get(ItemState.FAILED, 0), "red"),
            _count(c.get(ItemState.SKIPPED, 0), "yellow"),
            _count(c.get(ItemState.IN_DOUBT, 0), "bold magenta"),
            _when(job.created_at)[:-4] + "Z",  # to the minute
            format_duration(ran),
        )
    console.print(table)


def render_job(console: Console, history: JobHistory) -> None:
    """``jobs show``: what, where, when, how far, how fast, and what went wrong."""
    job = history.job
    spans = history.durations
    head = Text.assemble(
        ("job ", "bold"), (job.id, "bold"), "  ", (job.action, "bold"), "  ", _status(job.status)
    )
    console.print(head)

    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="dim", no_wrap=True)
    facts.add_column()
    if job.parent_id:
        facts.add_row("retry of", job.parent_id)
    where = job.region + (f" (profile {job.profile})" if job.profile else "")
    if job.endpoint_url:
        where += f" via {job.endpoint_url}"
    facts.add_row("region", escape(where))
    facts.add_row("targets", escape(_summary(job.targets)))
    if job.params:
        facts.add_row("params", escape(_summary(job.params)))
    facts.add_row("created", _when(job.created_at))
    if job.started_at is not None:
        facts.add_row("started", _when(job.started_at))
    if job.finished_at is not None:
        facts.add_row("finished", _when(job.finished_at))
    timing = [f"planned in {format_duration(spans.plan_s)}"] if spans.plan_s is not None else []
    if spans.run_s is not None:
        ran = "running for" if spans.running else "ran"
        timing.append(f"{ran} {format_duration(spans.run_s)}")
    if spans.throughput is not None:
        timing.append(f"{spans.throughput:.2f} succeeded/s")
    if timing:
        facts.add_row("timing", ", ".join(timing))
    if history.operations:
        facts.add_row(
            "api calls",
            f"{history.api_calls} calls, {history.retries} retried attempts"
            " (throttling, 5xx, time-outs)",
        )
    if job.message:
        facts.add_row("message", escape(job.message))
    console.print(facts)

    counts = Table(box=box.SIMPLE_HEAD, pad_edge=False, title_justify="left")
    for state in ItemState:
        counts.add_column(state.value.upper().replace("_", " "), justify="right")
    counts.add_column("TOTAL", justify="right")
    counts.add_row(
        *[_count(history.counts.get(s.value, 0), STATE_STYLE[s]) for s in ItemState],
        str(history.total),
    )
    console.print(counts)

    if history.errors:
        errors = Table(
            title="failed, by error code", box=box.SIMPLE_HEAD, pad_edge=False, title_justify="left"
        )
        errors.add_column("CODE", style="red", no_wrap=True)
        errors.add_column("COUNT", justify="right")
        errors.add_column("EXAMPLES")
        for group in history.errors:
            lines = [
                f"{ex.workspace_id}: {ex.message}" if ex.message else ex.workspace_id
                for ex in group.examples
            ]
            errors.add_row(escape(group.code), str(group.count), escape("\n".join(lines)))
        console.print(errors)

    if history.skipped:
        skipped = Table(
            title="skipped, by reason", box=box.SIMPLE_HEAD, pad_edge=False, title_justify="left"
        )
        skipped.add_column("REASON")
        skipped.add_column("COUNT", justify="right")
        for reason in history.skipped:
            skipped.add_row(escape(reason.reason), str(reason.count))
        console.print(skipped)

    if history.in_doubt:
        held = history.counts.get(ItemState.IN_DOUBT, 0)
        title = "in doubt (resume with --redo-in-doubt to re-send)"
        if held > len(history.in_doubt):
            title += f": first {len(history.in_doubt)} of {held}"
        doubt = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, title_justify="left")
        doubt.add_column("WORKSPACE", no_wrap=True)
        doubt.add_column("LAST STATE", no_wrap=True)
        doubt.add_column("REASON")
        for item in history.in_doubt:
            doubt.add_row(item.workspace_id, item.last_state or "-", escape(item.reason or "-"))
        console.print(doubt)

    if history.operations:
        ops = Table(title="API calls", box=box.SIMPLE_HEAD, pad_edge=False, title_justify="left")
        ops.add_column("OPERATION", no_wrap=True)
        ops.add_column("CALLS", justify="right")
        ops.add_column("RETRIES", justify="right")
        ops.add_column("ERRORS", justify="right")
        ops.add_column("AVG MS", justify="right")
        for op in history.operations:
            ops.add_row(
                op.operation,
                str(op.calls),
                _count(op.retries, "yellow"),
                _count(op.errors, "red"),
                f"{op.avg_ms:.0f}",
            )
        console.print(ops)


def _detail(item: ItemRecord) -> str:
    if item.error_code or item.error_message:
        return ": ".join(p for p in (item.error_code, item.error_message) if p)
    if item.reason:
        return item.reason
    if item.result:
        return f"→ {item.result}"
    return ""


def render_items(
    console: Console, items: Sequence[ItemRecord], *, matching: int | None = None
) -> None:
    """``jobs items``: one row per WorkSpace. ``matching`` is how many items the filter matched
    (to say when the table shows only the first of them)."""
    if not items:
        console.print("no items")
        return
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("WORKSPACE", no_wrap=True)
    table.add_column("REGION", no_wrap=True)
    table.add_column("STATE", no_wrap=True)
    table.add_column("TRIES", justify="right")
    table.add_column("SEEN → LAST", no_wrap=True)
    table.add_column("USER")
    table.add_column("DETAIL")
    for item in items:
        table.add_row(
            item.workspace_id,
            item.region,
            Text(item.state.value, style=STATE_STYLE.get(item.state, "")),
            str(item.attempts),
            f"{item.seen_state or '-'} → {item.last_state or '-'}",
            escape(item.user_name or "-"),
            escape(_detail(item)),
        )
    console.print(table)
    if matching is not None and matching > len(items):
        console.print(
            f"[dim]first {len(items)} of {matching} items: --limit N for more, "
            "or jobs export for all[/]"
        )


# -- exports -------------------------------------------------------------------------------------


def _csv_value(value: Any) -> Any:
    return "" if value is None else value


async def export_items(
    store: Store,
    job_id: str,
    fmt: str,
    out: TextIO,
    *,
    states: Sequence[ItemState] | None = None,
    page: int = 1000,
) -> int:
    """Write a job's items to ``out`` as CSV (a header row, then one row per item) or JSON (one
    array), a page at a time. Returns how many items were written."""
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {fmt!r}")
    written = 0
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(ITEM_FIELDS)
        async for batch in store.iter_items(job_id, states=states, page=page):
            for item in batch:
                data = item.as_dict()
                writer.writerow([_csv_value(data[name]) for name in ITEM_FIELDS])
            written += len(batch)
        return written
    out.write("[")
    async for batch in store.iter_items(job_id, states=states, page=page):
        for item in batch:
            out.write(",\n" if written else "\n")
            out.write(json.dumps(item_json(item)))
            written += 1
    out.write("\n]\n" if written else "]\n")
    return written
