"""A picture of a job: one self-contained HTML file (``fleetops jobs report JOB -o FILE``).

No network, no script, no external stylesheet: inline CSS and inline SVG charts, so the file
can be mailed, attached to a ticket or opened years later. It shows the job's summary, a
timeline (API calls per second and retried attempts, WorkSpaces in flight, WorkSpaces finished
per second), errors by code (failed WorkSpaces and failed calls), the counts of each account
and region, the reasons WorkSpaces were skipped and the calls made per operation. Every figure
comes from the store's aggregate queries, so a report of a million-item job is quick.
"""

from __future__ import annotations

import html
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fleetops.records import JobHistory, iso
from fleetops.states import ItemState
from fleetops.store import Store
from fleetops.store.history import job_history
from fleetops.store.timeline import ScopeCounts, Timeline, call_errors, scope_counts, timeline

__all__ = ["CSS", "ReportData", "gather", "render", "sections", "svg_chart", "write_report"]

STATES = [state.value for state in ItemState]
COLORS = {
    "calls": "#2563eb",
    "retries": "#d97706",
    "errors": "#dc2626",
    "in_flight": "#7c3aed",
    "succeeded": "#16a34a",
    "failed": "#dc2626",
}
CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px auto;
max-width:1100px;color:#1f2937;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}
h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #e5e7eb}
.sub{color:#6b7280;margin:0 0 16px}
.cards{display:flex;flex-wrap:wrap;gap:10px}
.card{border:1px solid #e5e7eb;border-radius:8px;padding:8px 14px;min-width:110px}
.card b{display:block;font-size:20px}.card span{color:#6b7280;font-size:12px}
table{border-collapse:collapse;margin:6px 0}td,th{padding:3px 12px 3px 0;text-align:left}
th{color:#6b7280;font-weight:600;border-bottom:1px solid #e5e7eb}td.n,th.n{text-align:right}
.status-succeeded{color:#16a34a}.status-failed,.status-aborted{color:#dc2626}
svg{display:block;margin:4px 0 14px;max-width:100%;height:auto}
svg text{font:11px system-ui,sans-serif;fill:#4b5563}
svg text.chart-title{font-weight:600;font-size:12px}
.none{color:#6b7280}.facts td{padding-right:28px}
"""


@dataclass(frozen=True)
class ReportData:
    history: JobHistory
    timeline: Timeline
    call_errors: list[tuple[str, str, int]]
    scopes: list[ScopeCounts]
    generated_at: float
    #: A recipe's job: each step's items by outcome (empty for one action).
    steps: dict[str, dict[str, int]] = field(default_factory=dict)


async def gather(store: Store, job_id: str) -> ReportData:
    """Everything the report shows (a handful of aggregate queries)."""
    job = await store.get_job(job_id)
    history = await job_history(store, job, examples=3)
    return ReportData(
        history=history,
        timeline=await timeline(store, job.id),
        call_errors=await call_errors(store, job.id),
        scopes=await scope_counts(store, job.id),
        generated_at=time.time(),
        steps=await store.step_counts(job.id),
    )


async def write_report(store: Store, job_id: str, path: Path) -> Path:
    """Write the report of ``job_id`` to ``path`` (written whole, then renamed into place)."""
    text = render(await gather(store, job_id))
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


# -- SVG ---------------------------------------------------------------------------------------


def _nice(top: float) -> float:
    """A round axis maximum ≥ ``top``."""
    if top <= 0:
        return 1.0
    step = 10 ** len(str(int(top))) / 10 if top >= 1 else 0.1
    for mult in (1, 2, 2.5, 5, 10):
        if step * mult >= top:
            return step * mult
    return step * 10


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) else f"{value:,.1f}"


#: Tick spacings of the time axis, in seconds.
TIME_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 43200)


def _time_ticks(x_max: float, most: int = 8) -> list[float]:
    step = next((s for s in TIME_STEPS if x_max / s <= most), TIME_STEPS[-1])
    return [float(t) for t in range(0, int(x_max) + 1, step)]


def svg_chart(
    title: str,
    xs: Sequence[float],
    series: Sequence[tuple[str, str, Sequence[float]]],
    *,
    unit: str,
    width: int = 1000,
    height: int = 190,
) -> str:
    """A line chart: ``series`` are (name, colour, values over ``xs`` seconds)."""
    left, right, top, bottom = 58, 12, 26, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    x_max = max(xs[-1] if xs else 1.0, 1.0)
    y_max = _nice(max((max(v, default=0.0) for _, _, v in series), default=0.0))

    def px(x: float) -> float:
        return left + plot_w * x / x_max

    def py(y: float) -> float:
        return top + plot_h * (1 - y / y_max)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{html.escape(title)}" '
        f'data-chart="{html.escape(title)}">',
        f'<text x="{left}" y="14" class="chart-title">'
        f"{html.escape(title)} ({html.escape(unit)})</text>",
    ]
    for i in range(5):
        y = y_max * i / 4
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{py(y):.1f}" y2="{py(y):.1f}" '
            'stroke="#e5e7eb"/>'
            f'<text x="{left - 6}" y="{py(y) + 4:.1f}" text-anchor="end">{_fmt(y)}</text>'
        )
    for x in _time_ticks(x_max):
        parts.append(
            f'<text x="{px(x):.1f}" y="{height - 8}" text-anchor="middle">{_clock(x)}</text>'
        )
    legend_x = left + 7 * (len(title) + len(unit)) + 40
    for name, color, values in series:
        points = " ".join(f"{px(x):.1f},{py(v):.1f}" for x, v in zip(xs, values, strict=True))
        parts.append(
            f'<polyline fill="none" stroke="{color}" stroke-width="1.8" points="{points}" '
            f'data-series="{html.escape(name)}" data-total="{sum(values):g}"/>'
        )
        parts.append(
            f'<rect x="{legend_x}" y="6" width="10" height="10" fill="{color}"/>'
            f'<text x="{legend_x + 14}" y="15">{html.escape(name)}</text>'
        )
        legend_x += 24 + 7 * len(name)
    parts.append("</svg>")
    return "".join(parts)


def _clock(seconds: float) -> str:
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _timeline_html(tl: Timeline) -> str:
    if tl.t0 is None or not tl.slices:
        return '<p class="none">The job made no API call: nothing to draw.</p>'
    xs = [s.start + tl.width / 2 for s in tl.slices]
    per_s = [1 / tl.width] * len(tl.slices)
    calls = svg_chart(
        "API calls",
        xs,
        [
            (
                "calls/s",
                COLORS["calls"],
                [s.calls * k for s, k in zip(tl.slices, per_s, strict=True)],
            ),
            (
                "retried attempts/s (throttled, 5xx, time-outs)",
                COLORS["retries"],
                [s.retries * k for s, k in zip(tl.slices, per_s, strict=True)],
            ),
        ],
        unit="per second",
    )
    flight = svg_chart(
        "WorkSpaces in flight",
        xs,
        [("in flight", COLORS["in_flight"], [float(s.in_flight) for s in tl.slices])],
        unit="sent, not verified yet",
    )
    done = svg_chart(
        "WorkSpaces finished",
        xs,
        [
            ("verified/s", COLORS["succeeded"], [s.succeeded / tl.width for s in tl.slices]),
            ("failed or in doubt/s", COLORS["failed"], [s.failed / tl.width for s in tl.slices]),
        ],
        unit="per second",
    )
    note = (
        f'<p class="sub">Time from the first API call ({html.escape(iso(tl.t0) or "")}), '
        f"in slices of {tl.width:g} s.</p>"
    )
    return f'<div data-slice-s="{tl.width:g}">{note}{calls}{flight}{done}</div>'


# -- tables ------------------------------------------------------------------------------------


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]], numeric: set[int]) -> str:
    head = "".join(
        f'<th class="n">{html.escape(h)}</th>' if i in numeric else f"<th>{html.escape(h)}</th>"
        for i, h in enumerate(headers)
    )
    body = []
    for row in rows:
        cells = []
        for i, value in enumerate(row):
            text = f"{value:,}" if isinstance(value, int) else html.escape(str(value))
            cells.append(f'<td class="n">{text}</td>' if i in numeric else f"<td>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _summary(data: ReportData) -> str:
    h = data.history
    job, d = h.job, h.durations
    cards = [("total", h.total)] + [(s, h.counts.get(s, 0)) for s in STATES if h.counts.get(s)]
    card_html = "".join(
        f'<div class="card" data-count="{html.escape(name)}"><b>{n:,}</b>'
        f"<span>{html.escape(name.replace('_', ' '))}</span></div>"
        for name, n in cards
    )
    regions = ", ".join(job.regions or (job.region,))
    facts: list[tuple[str, str]] = [
        ("status", f"{job.status.value}" + (f" — {job.message}" if job.message else "")),
        ("action", job.action),
        ("regions", regions),
        ("accounts", ", ".join(job.accounts) if job.accounts else "the connection's own"),
        ("created", iso(job.created_at) or "–"),
        ("started", iso(job.started_at) or "–"),
        ("finished", iso(job.finished_at) or "–"),
        ("planning", f"{d.plan_s:.1f} s" if d.plan_s is not None else "–"),
        ("run", f"{d.run_s:.1f} s" if d.run_s is not None else "–"),
        ("throughput", f"{d.throughput:.1f} WorkSpaces/s" if d.throughput else "–"),
        ("API calls", f"{h.api_calls:,} ({h.retries:,} retried attempts)"),
    ]
    if job.started_by:
        facts.append(("started by", f"{job.started_by}@{job.started_host or '?'}"))
    cells = [f"<th>{html.escape(k)}</th><td>{html.escape(v)}</td>" for k, v in facts]
    per_row = 3  # three facts a row: the summary stays above the fold
    rows = "".join(
        "<tr>" + "".join(cells[i : i + per_row]) + "</tr>" for i in range(0, len(cells), per_row)
    )
    return f'<div class="cards">{card_html}</div><table class="facts">{rows}</table>'


def _errors(data: ReportData) -> str:
    h = data.history
    parts = ["<h3>Failed WorkSpaces by error code</h3>"]
    if h.errors:
        parts.append(
            _table(
                ["error code", "WorkSpaces", "examples"],
                [
                    (
                        g.code,
                        g.count,
                        "; ".join(f"{e.workspace_id}: {e.message or ''}" for e in g.examples),
                    )
                    for g in h.errors
                ],
                {1},
            )
        )
    else:
        parts.append('<p class="none">No WorkSpace failed.</p>')
    parts.append("<h3>API calls that failed (in part or for good)</h3>")
    if data.call_errors:
        parts.append(_table(["operation", "error code", "calls"], data.call_errors, {2}))
    else:
        parts.append('<p class="none">No call failed.</p>')
    return "".join(parts)


def _scopes(data: ReportData) -> str:
    if not data.scopes:
        return '<p class="none">No items.</p>'
    shown = [s for s in STATES if any(sc.counts.get(s) for sc in data.scopes)]
    rows = [
        [
            sc.account or "(own)",
            sc.region,
            *(sc.counts.get(s, 0) for s in shown),
            sum(sc.counts.values()),
        ]
        for sc in data.scopes
    ]
    return _table(["account", "region", *shown, "total"], rows, set(range(2, len(shown) + 3)))


def _operations(data: ReportData) -> str:
    ops = data.history.operations
    if not ops:
        return '<p class="none">No API call.</p>'
    rows = [
        (op.operation, op.calls, op.retries, op.partial, op.errors, f"{op.avg_ms:.0f}")
        for op in ops
    ]
    return _table(
        ["operation", "calls", "retried attempts", "partial", "failed", "avg ms"],
        rows,
        {1, 2, 3, 4, 5},
    )


def _steps(data: ReportData) -> str:
    """A recipe's job: a row per step, its items by outcome (nothing for one action)."""
    if not data.steps:
        return ""
    outcomes = [s.value for s in ItemState if any(s.value in c for c in data.steps.values())]
    rows = [
        (action, *(counts.get(outcome, 0) for outcome in outcomes))
        for action, counts in data.steps.items()
    ]
    numeric = set(range(1, len(outcomes) + 1))
    return f"<h2>Steps</h2>{_table(['step', *outcomes], rows, numeric)}"


def sections(data: ReportData) -> str:
    """The report's body, section by section (summary, timeline, errors, scopes, skipped,
    calls): HTML with every value escaped and no script or inline style, so that a page with a
    strict Content-Security-Policy (the dashboard's) shows it as it is, styled by :data:`CSS`."""
    h = data.history
    skipped = (
        _table(["reason", "WorkSpaces"], [(r.reason, r.count) for r in h.skipped], {1})
        if h.skipped
        else '<p class="none">None skipped.</p>'
    )
    return (
        f"<h2>Summary</h2>{_summary(data)}"
        f"{_steps(data)}"
        f"<h2>Timeline</h2>{_timeline_html(data.timeline)}"
        f"<h2>Errors</h2>{_errors(data)}"
        f"<h2>By account and region</h2>{_scopes(data)}"
        f"<h2>Skipped</h2>{skipped}"
        f"<h2>API calls by operation</h2>{_operations(data)}"
    )


def render(data: ReportData) -> str:
    """The whole HTML document."""
    job = data.history.job
    title = f"fleetops job {job.id}: {job.action} — {job.status.value}"
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>"
        f'<p class="sub">Report generated {html.escape(iso(data.generated_at) or "")} '
        "by fleetops jobs report.</p>"
        f"{sections(data)}"
        "</body></html>\n"
    )
