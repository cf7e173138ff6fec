"""Job history → JSON documents, rich tables, and CSV/JSON exports.

``job_json`` is the documented contract of ``jobs show --json`` (and of the final line of
``run --json`` / ``jobs resume --json``): the documented keys come first and exactly as written;
a few extra keys follow. Renderers take a rich ``Console`` so the CLI decides where output goes.
Exports stream a job's items page by page: memory stays bounded however big the job.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

from rich.console import Console
from rich.text import Text

from fleetops.records import ROLLOUT_RECORD, ItemRecord, JobRecord
from fleetops.report.documents import (
    EXPORT_FORMATS,
    ITEM_FIELDS,
    ItemWriter,
    history_json,
    item_json,
    job_json,
)
from fleetops.states import ItemState, JobStatus

if TYPE_CHECKING:
    from fleetops.records import JobHistory
    from fleetops.store import Store

__all__ = [
    "EXPORT_FORMATS",
    "ITEM_FIELDS",
    "approval_line",
    "export_items",
    "format_duration",
    "history_json",
    "item_json",
    "job_json",
    "render_items",
    "render_job",
    "render_job_list",
    "render_rollout",
    "render_step_counts",
]


STATUS_STYLE: dict[str, str] = {
    JobStatus.PLANNED: "blue",
    JobStatus.RUNNING: "cyan",
    JobStatus.SUCCEEDED: "green",
    JobStatus.FAILED: "red",
    JobStatus.ABORTED: "bold red",
    JobStatus.INTERRUPTED: "yellow",
    JobStatus.WAITING: "cyan",
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


Cell = str | Text


def _plain(cell: Cell) -> str:
    return cell.plain if isinstance(cell, Text) else cell


def _lines(cell: Cell, room: int | None = None) -> list[Text]:
    """The lines of ``cell``, each cut to ``room`` characters when given (an ellipsis marks the
    cut)."""
    lines = (cell.copy() if isinstance(cell, Text) else Text(cell)).split("\n")
    if room is not None:
        for line in lines:
            line.truncate(room, overflow="ellipsis")
    return list(lines)


def _pad(cell: Text, width: int, right: bool) -> Text:
    gap = " " * max(0, width - cell.cell_len)
    return Text.assemble(gap, cell) if right else Text.assemble(cell, gap)


def _table(
    console: Console,
    headers: Sequence[str],
    rows: Sequence[Sequence[Cell]],
    *,
    title: str | None = None,
    right: Sequence[str] = (),
    flex: str | None = None,
) -> Text:
    """A plain table: a header, a rule, one line per line of each cell, columns two spaces
    apart at their full width, but for ``flex``: it gets the room left on the console, and its
    cells are cut to fit. Laid out here, as styled text, rather than by rich's ``Table``, whose
    measuring costs more than the rest of ``jobs list`` together."""
    widths = [
        max([len(header), *(len(line) for row in rows for line in _plain(row[i]).split("\n"))])
        for i, header in enumerate(headers)
    ]
    if flex is not None:
        index = list(headers).index(flex)
        used = sum(w for i, w in enumerate(widths) if i != index) + 2 * (len(headers) - 1)
        room = max(16, min(widths[index], console.width - used))
        widths[index] = room
    justify = [header in right for header in headers]
    lines: list[Text] = []
    if title is not None:
        lines += [Text(), Text(title)]  # a blank line sets a titled table off what came before
    header = Text("  ").join(
        _pad(Text(h, style="bold"), w, r) for h, w, r in zip(headers, widths, justify, strict=True)
    )
    header.rstrip()
    lines.append(header)
    lines.append(Text("─" * (sum(widths) + 2 * (len(widths) - 1)), style="dim"))
    for row in rows:
        cells = [
            _lines(cell, w if header == flex else None)
            for header, cell, w in zip(headers, row, widths, strict=True)
        ]
        for n in range(max(len(cell) for cell in cells)):
            parts = [
                _pad(cell[n] if n < len(cell) else Text(), w, r)
                for cell, w, r in zip(cells, widths, justify, strict=True)
            ]
            line = Text("  ").join(parts)
            line.rstrip()  # in place: a left-justified last column leaves no trailing blanks
            lines.append(line)
    return Text("\n").join(lines)


# -- renderers -----------------------------------------------------------------------------------


def render_job_list(
    console: Console, jobs: Sequence[JobRecord], counts: Mapping[str, Mapping[str, int]]
) -> None:
    """``jobs list``: one row per job, newest first."""
    if not jobs:
        console.print("no jobs")
        return
    rows: list[list[Cell]] = []
    for job in jobs:
        c = counts.get(job.id, {})
        ran = None
        if job.started_at is not None and job.finished_at is not None:
            ran = job.finished_at - job.started_at
        rows.append(
            [
                job.id,
                job.action,
                _status(job.status.value),
                str(sum(c.values())),
                _count(c.get(ItemState.SUCCEEDED, 0), "green"),
                _count(c.get(ItemState.FAILED, 0), "red"),
                _count(c.get(ItemState.SKIPPED, 0), "yellow"),
                _count(c.get(ItemState.IN_DOUBT, 0), "bold magenta"),
                _when(job.created_at)[:-4],  # to the minute
                format_duration(ran),
                held_by(job) or "",
            ]
        )
    headers = ["JOB", "ACTION", "STATUS", "ITEMS", "OK", "FAIL", "SKIP", "DOUBT", "CREATED UTC"]
    console.print(
        _table(
            console,
            [*headers, "RAN", "HELD BY"],
            rows,
            right=["ITEMS", "OK", "FAIL", "SKIP", "DOUBT", "RAN"],
        )
    )


def held_by(job: JobRecord, now: float | None = None) -> str | None:
    """``host:pid`` of the process running the job (a worker or a CLI run), while its lease
    lives; None otherwise."""
    if job.lease_owner is None or (job.lease_expires_at or 0.0) <= (now or time.time()):
        return None
    host, _, rest = job.lease_owner.partition(":")
    return f"{host}:{rest.partition(':')[0]}"


def _counts_line(counts: Mapping[str, int], unverified: int = 0) -> Text:
    """``62: 50 succeeded (3 unverified) · 4 failed · 6 skipped · 2 in doubt`` (states with none
    left out)."""
    line = Text(f"{sum(counts.values())}")
    parts = [(state, counts.get(state.value, 0)) for state in ItemState]
    shown = [(state, n) for state, n in parts if n]
    for index, (state, n) in enumerate(shown):
        line.append(": " if index == 0 else " · ")
        line.append(f"{n} {state.value.replace('_', ' ')}", style=STATE_STYLE[state])
        if state is ItemState.SUCCEEDED and unverified:
            line.append(f" ({unverified} unverified)", style="yellow")
    return line


def render_job(console: Console, history: JobHistory) -> None:
    """``jobs show``: what, where, when, how far, how fast, and what went wrong."""
    job = history.job
    head = Text.assemble(
        ("job ", "bold"), (job.id, "bold"), "  ", (job.action, "bold"), "  ", _status(job.status)
    )
    console.print(head)
    console.print(_job_facts(history))
    _render_scopes(console, history)
    _render_problems(console, history)
    _render_operations(console, history)


class _Facts:
    """Label and value lines: the labels dim, in a column of their own, two spaces before the
    values (the text is taken as it is: no markup)."""

    def __init__(self) -> None:
        self._rows: list[tuple[str, Cell]] = []

    def add_row(self, label: str, value: Cell) -> None:
        self._rows.append((label, value))

    def text(self) -> Text:
        width = max((len(label) for label, _ in self._rows), default=0)
        return Text("\n").join(
            Text.assemble((label.ljust(width), "dim"), "  ", value) for label, value in self._rows
        )


def approval_line(job: JobRecord) -> str:
    """The two-person rule of a job that needs an approval, in one line."""
    if job.approved_by is None:
        return f"required, awaits approval by someone other than {job.started_by or '?'}"
    line = f"approved by {job.approved_by} at {_when(job.approved_at)}"
    return line + (f" ({job.approval_comment})" if job.approval_comment else "")


def _job_facts(history: JobHistory) -> Text:
    """The job's facts, one a row: where, targets, who, when, how fast, how far."""
    job = history.job
    spans = history.durations
    facts = _Facts()
    if job.parent_id:
        facts.add_row("retry of", job.parent_id)
    where = ", ".join(job.regions or (job.region,)) + (
        f" (profile {job.profile})" if job.profile else ""
    )
    if job.endpoint_url:
        where += f" via {job.endpoint_url}"
    facts.add_row("region", where)
    facts.add_row("targets", _summary(job.targets))
    # a rollout's record is told by its own line (:func:`render_rollout`), not among the params
    given = {k: v for k, v in job.params.items() if k != ROLLOUT_RECORD}
    if given:
        facts.add_row("params", _summary(given))
    facts.add_row("created", _when(job.created_at))
    if job.started_by or job.started_host:
        who = "@".join(part for part in (job.started_by, job.started_host) if part)
        facts.add_row("started by", who)
    if job.require_approval:
        facts.add_row("approval", approval_line(job))
    if job.caller_arn:
        facts.add_row("caller", job.caller_arn)
    if job.accounts:
        role = job.assume or {}
        how = role.get("role_arn_template") or f"role {role.get('role_name')}"
        facts.add_row("accounts", f"{', '.join(job.accounts)} ({how})")
    if job.started_at is not None:
        facts.add_row("started", _when(job.started_at))
    if job.finished_at is not None:
        facts.add_row("finished", _when(job.finished_at))
    for told in job.notifications:
        outcome = "delivered" if told.get("ok") else f"not delivered: {told.get('error')}"
        tries = told.get("attempts")
        facts.add_row(
            "notified",
            f"{told.get('target')} ({told.get('status')}): {outcome} "
            f"({tries} {'try' if tries == 1 else 'tries'})",
        )
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
        facts.add_row("message", job.message)
    unverified = history.unverified
    facts.add_row("items", _counts_line(history.counts, unverified.count if unverified else 0))
    return facts.text()


def _render_problems(console: Console, history: JobHistory) -> None:
    """Unverified, failed, skipped and in-doubt items, each kind a table with examples."""
    unverified = history.unverified
    if unverified is not None:
        lines = [f"{ex.workspace_id}: {ex.message}" for ex in unverified.examples]
        console.print(
            _table(
                console,
                ["CODE", "COUNT", "EXAMPLES"],
                [[Text(unverified.code, style="yellow"), str(unverified.count), "\n".join(lines)]],
                title="succeeded, but no sign of the action was ever seen (unverified)",
                right=["COUNT"],
                flex="EXAMPLES",
            )
        )

    rows: list[list[Cell]]
    if history.errors:
        rows = []
        for group in history.errors:
            lines = [
                f"{ex.workspace_id}: {ex.message}" if ex.message else ex.workspace_id
                for ex in group.examples
            ]
            rows.append([Text(group.code, style="red"), str(group.count), "\n".join(lines)])
        console.print(
            _table(
                console,
                ["CODE", "COUNT", "EXAMPLES"],
                rows,
                title="failed, by error code",
                right=["COUNT"],
                flex="EXAMPLES",
            )
        )

    if history.skipped:
        rows = [[str(r.count), r.reason] for r in history.skipped]
        console.print(
            _table(
                console,
                ["COUNT", "REASON"],
                rows,
                title="skipped, by reason",
                right=["COUNT"],
                flex="REASON",
            )
        )

    if history.in_doubt:
        held = history.counts.get(ItemState.IN_DOUBT, 0)
        title = "in doubt (jobs resume --redo-in-doubt re-sends them)"
        if held > len(history.in_doubt):
            title += f": first {len(history.in_doubt)} of {held}"
        rows = [
            [item.workspace_id, item.last_state or "-", item.reason or "-"]
            for item in history.in_doubt
        ]
        console.print(
            _table(console, ["WORKSPACE", "LAST STATE", "REASON"], rows, title=title, flex="REASON")
        )


def _render_operations(console: Console, history: JobHistory) -> None:
    """API calls by operation: calls, retried attempts, errors, mean duration."""
    if history.operations:
        rows: list[list[Cell]] = [
            [
                op.operation,
                str(op.calls),
                _count(op.retries, "yellow"),
                _count(op.errors, "red"),
                f"{op.avg_ms:.0f}",
            ]
            for op in history.operations
        ]
        console.print(
            _table(
                console,
                ["OPERATION", "CALLS", "RETRIES", "ERRORS", "AVG MS"],
                rows,
                title="API calls",
                right=["CALLS", "RETRIES", "ERRORS", "AVG MS"],
            )
        )


def _render_scopes(console: Console, history: JobHistory) -> None:
    """A job over several accounts or regions: counts and errors of each."""
    if not history.scopes:
        return
    rows: list[list[Cell]] = []
    for scope in history.scopes:
        c = scope.counts
        errors = ", ".join(f"{code} {n}" for code, n in sorted(scope.errors.items()))
        rows.append(
            [
                scope.account or "(own)",
                scope.region,
                str(sum(c.values())),
                _count(c.get(ItemState.SUCCEEDED, 0), "green"),
                _count(c.get(ItemState.FAILED, 0), "red"),
                _count(c.get(ItemState.SKIPPED, 0), "yellow"),
                errors,
            ]
        )
    console.print(
        _table(
            console,
            ["ACCOUNT", "REGION", "ITEMS", "OK", "FAIL", "SKIP", "ERRORS"],
            rows,
            title="by account and region",
            right=["ITEMS", "OK", "FAIL", "SKIP"],
            flex="ERRORS",
        )
    )


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
    regions = len({item.region for item in items}) > 1
    headers = ["WORKSPACE", *(["REGION"] if regions else []), "STATE", "TRIES", "LAST STATE"]
    headers += ["USER", "DETAIL"]
    rows: list[list[Cell]] = []
    for item in items:
        row: list[Cell] = [item.workspace_id]
        if regions:
            row.append(item.region)
        row += [
            Text(item.state.value, style=STATE_STYLE.get(item.state, "")),
            str(item.attempts),
            item.last_state or item.seen_state or "-",
            item.user_name or "-",
            _detail(item),
        ]
        rows.append(row)
    table = _table(console, headers, rows, right=["TRIES"], flex="DETAIL")
    console.print(table)
    if matching is not None and matching > len(items):
        console.print(
            f"[dim]first {len(items)} of {matching} items: --limit N for more, "
            "or jobs export for all[/]"
        )


# -- exports -------------------------------------------------------------------------------------


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
    writer = ItemWriter(fmt, out)
    async for batch in store.iter_items(job_id, states=states, page=page):
        writer.write(batch)
    return writer.close()


def render_step_counts(console: Console, steps: Mapping[str, Mapping[str, int]]) -> None:
    """``jobs show`` of a recipe's job: each step's items by outcome (an open step by its
    item's state), in ladder order: ``restore  17: 9 succeeded · 8 failed``."""
    if not steps:
        return
    console.print(Text("steps", style="bold"))
    width = max(len(action) for action in steps)
    for action, counts in steps.items():
        console.print(Text.assemble("  ", (action.ljust(width), "dim"), "  ", _counts_line(counts)))


def rollout_lines(rollout: Mapping[str, Any]) -> list[str]:
    """A rollout's bundle and images, a line per scope (one line for a one-scope rollout):
    ``us-east-1: bundle wsb-… wsi-old → wsi-new (rolled back)``; an old image not read yet
    is ``?``."""
    if not rollout:
        return []
    rows = rollout.get("scopes") or [rollout]
    lines = []
    for row in rows:
        where = ""
        if "region" in row:
            where = (
                f"{row['account']}/{row['region']}: "
                if row.get("account")
                else (f"{row['region']}: ")
            )
        line = (
            f"{where}bundle {row.get('bundle_id')} {row.get('old_image_id') or '?'} → "
            f"{row.get('new_image_id')}"
        )
        lines.append(line + (" (rolled back)" if row.get("rolled_back") else ""))
    return lines


def render_rollout(console: Console, rollout: Mapping[str, Any]) -> None:
    """``jobs show`` of a rollout: each scope's bundle, its old image and the new one."""
    for line in rollout_lines(rollout):
        console.print(Text.assemble(("rollout", "bold"), "  ", line))
