"""A job over time, for the HTML report: aggregate queries over its events and items.

Every figure is summed by the database into at most ``buckets`` time slices (never a Python loop
over every call or item): API calls, retried attempts (throttling, 5xx, time-outs), calls that
failed for good, items sent and items finished per slice; plus error codes of the calls and
the items' states per scope (account and region). The queries go through the (job_id, at) index
on events and the (job_id, …) indexes on items.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa

from fleetops.states import OUTCOME_ITEM_STATES, ItemState
from fleetops.store.repo import Store
from fleetops.store.tables import events, items

__all__ = ["ScopeCounts", "Slice", "Timeline", "call_errors", "scope_counts", "timeline"]

#: Item states that end an item's run of the action (an outcome, not a decision to skip).
FINISHED = tuple(sorted(state.value for state in OUTCOME_ITEM_STATES))


@dataclass
class Slice:
    """One time slice: ``start`` seconds after the job's first call."""

    start: float
    calls: int = 0
    retries: int = 0
    errors: int = 0
    sent: int = 0  # items whose (last) call went out in this slice
    succeeded: int = 0
    failed: int = 0  # failed or in doubt
    settled: int = 0  # items sent earlier that finished in this slice
    in_flight: int = 0  # items sent, not finished, at the slice's end


@dataclass
class Timeline:
    t0: float | None  # epoch seconds of the first call (None: the job made no call)
    width: float  # seconds per slice
    slices: list[Slice] = field(default_factory=list)

    @property
    def span(self) -> float:
        return self.width * len(self.slices)


@dataclass(frozen=True)
class ScopeCounts:
    account: str | None
    region: str
    counts: dict[str, int]

    @property
    def scope(self) -> str:
        return self.region if self.account is None else f"{self.account}/{self.region}"


def _slice_of(
    column: sa.ColumnElement[float], t0: float, width: float, dialect: str
) -> sa.Label[int]:
    """The slice index of ``column`` (truncated, as both SQLite and PostgreSQL do it alike)."""
    offset = (column - t0) / width
    if dialect == "postgresql":
        return sa.cast(sa.func.floor(offset), sa.Integer).label("slice")
    return sa.cast(offset, sa.Integer).label("slice")


async def _bounds(store: Store, job_id: str) -> tuple[float | None, float | None]:
    first_call = sa.select(sa.func.min(events.c.at), sa.func.max(events.c.at)).where(
        events.c.job_id == job_id
    )
    last_item = sa.select(sa.func.max(items.c.updated_at)).where(
        items.c.job_id == job_id, items.c.state.in_(FINISHED)
    )
    async with store.reading() as conn:
        lo, hi = (await conn.execute(first_call)).one()
        done = (await conn.execute(last_item)).scalar()
    if lo is None:
        return None, None
    return float(lo), max(float(hi), float(done or hi))


async def timeline(store: Store, job_id: str, *, buckets: int = 120) -> Timeline:
    """The job's calls and items over time, in at most ``buckets`` slices (≥ 1 s each)."""
    t0, t1 = await _bounds(store, job_id)
    if t0 is None or t1 is None:
        return Timeline(t0=None, width=1.0)
    width = max(1.0, (t1 - t0) / buckets)
    count = int((t1 - t0) / width) + 1
    slices = [Slice(start=i * width) for i in range(count)]
    dialect = store.dialect
    calls = (
        sa.select(
            _slice_of(events.c.at, t0, width, dialect),
            sa.func.count(),
            sa.func.coalesce(
                sa.func.sum(sa.case((events.c.attempts > 1, events.c.attempts - 1), else_=0)), 0
            ),
            sa.func.coalesce(sa.func.sum(sa.case((events.c.outcome == "error", 1), else_=0)), 0),
        )
        .where(events.c.job_id == job_id)
        .group_by(sa.literal_column("slice"))
    )
    sent = (
        sa.select(_slice_of(items.c.submitted_at, t0, width, dialect), sa.func.count())
        .where(items.c.job_id == job_id, items.c.submitted_at.is_not(None))
        .group_by(sa.literal_column("slice"))
    )
    finished = (
        sa.select(
            _slice_of(items.c.updated_at, t0, width, dialect),
            items.c.state,
            sa.func.count(),
            sa.func.coalesce(
                sa.func.sum(sa.case((items.c.submitted_at.is_not(None), 1), else_=0)), 0
            ),
        )
        .where(items.c.job_id == job_id, items.c.state.in_(FINISHED))
        .group_by(sa.literal_column("slice"), items.c.state)
    )
    async with store.reading() as conn:
        call_rows = (await conn.execute(calls)).all()
        sent_rows = (await conn.execute(sent)).all()
        finished_rows = (await conn.execute(finished)).all()

    def at(index: int) -> Slice:
        return slices[min(max(int(index), 0), count - 1)]

    for index, n, retries, errors in call_rows:
        s = at(index)
        s.calls, s.retries, s.errors = (
            s.calls + int(n),
            s.retries + int(retries),
            s.errors + int(errors),
        )
    for index, n in sent_rows:
        at(index).sent += int(n)
    for index, state, n, were_sent in finished_rows:
        s = at(index)
        if state == ItemState.SUCCEEDED.value:
            s.succeeded += int(n)
        else:
            s.failed += int(n)
        s.settled += int(were_sent)
    in_flight = 0
    for s in slices:
        in_flight = max(0, in_flight + s.sent - s.settled)
        s.in_flight = in_flight
    return Timeline(t0=t0, width=width, slices=slices)


async def call_errors(store: Store, job_id: str) -> list[tuple[str, str, int]]:
    """API calls that failed for good or in part, by (operation, error code), most first."""
    query = (
        sa.select(events.c.operation, events.c.error_code, sa.func.count().label("n"))
        .where(events.c.job_id == job_id, events.c.error_code.is_not(None))
        .group_by(events.c.operation, events.c.error_code)
        .order_by(sa.desc("n"), events.c.operation, events.c.error_code)
    )
    async with store.reading() as conn:
        rows = (await conn.execute(query)).all()
    return [(str(op), str(code), int(n)) for op, code, n in rows]


async def scope_counts(store: Store, job_id: str) -> list[ScopeCounts]:
    """Items by state for each (account, region) of the job."""
    query = (
        sa.select(items.c.account, items.c.region, items.c.state, sa.func.count())
        .where(items.c.job_id == job_id)
        .group_by(items.c.account, items.c.region, items.c.state)
    )
    async with store.reading() as conn:
        rows = (await conn.execute(query)).all()
    scopes: dict[tuple[str | None, str], dict[str, int]] = {}
    for account, region, state, n in rows:
        scopes.setdefault((account, str(region)), {})[str(state)] = int(n)
    return [
        ScopeCounts(account=account, region=region, counts=counts)
        for (account, region), counts in sorted(
            scopes.items(), key=lambda kv: (kv[0][0] or "", kv[0][1])
        )
    ]
