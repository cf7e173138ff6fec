"""The steps of a job's items read by the history's plain-driver readers (sqlite3 or psycopg:
no SQLAlchemy), each query written once for both: only the parameter marker differs.

``step_counts`` counts each step by its outcome, an open step by its item's live state, in
ladder order (the lowest rung an action was taken at first).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from fleetops.records import StepRecord

__all__ = ["STEP_COUNTS_SQL", "counts_from_rows", "step_counts", "steps_of"]

_STEPS = (
    "SELECT item_id, job_id, rung, action, outcome, attempts, started_at, finished_at,"
    " error_code, error_message, reason, last_state FROM item_steps"
    " WHERE job_id = {p} AND item_id BETWEEN {p} AND {p} ORDER BY item_id, rung"
)
#: Each step by action and outcome (an open step: its item's state); ``{p}``: the job id.
STEP_COUNTS_SQL = (
    "SELECT s.action AS action, COALESCE(s.outcome, i.state) AS outcome,"
    " MIN(s.rung) AS rung, COUNT(*) AS n"
    " FROM item_steps s JOIN items i ON i.id = s.item_id WHERE s.job_id = {p}"
    " GROUP BY s.action, COALESCE(s.outcome, i.state) ORDER BY MIN(s.rung), s.action"
)


#: Each query for each driver's parameter marker (sqlite3 ``?``, psycopg ``%s``): the text is
#: the same, the values are always bound.
_BY_MARKER = {
    marker: {query: query.replace("{p}", marker) for query in (_STEPS, STEP_COUNTS_SQL)}
    for marker in ("?", "%s")
}


def _rows(reader: Any, query: str, params: Sequence[Any]) -> list[Any]:
    marker = "?" if type(reader.conn).__module__.startswith("sqlite3") else "%s"
    sql = _BY_MARKER[marker][query]
    return list(reader.conn.execute(sql, tuple(params)).fetchall())


def steps_of(reader: Any, job_id: str, item_ids: Sequence[int]) -> dict[int, list[StepRecord]]:
    """Item id → its steps, by rung (items without steps are absent)."""
    if not item_ids:
        return {}
    wanted = set(item_ids)
    out: dict[int, list[StepRecord]] = {}
    for row in _rows(reader, _STEPS, (job_id, min(wanted), max(wanted))):
        step = StepRecord.from_row(dict(row))
        if step.item_id in wanted:
            out.setdefault(step.item_id, []).append(step)
    return out


def step_counts(reader: Any, job_id: str) -> dict[str, dict[str, int]]:
    """Action of a step → outcome (or live state) → how many items: ``jobs show``'s counts by
    step (empty for a job of one action)."""
    return counts_from_rows(dict(row) for row in _rows(reader, STEP_COUNTS_SQL, (job_id,)))


def counts_from_rows(rows: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, int]]:
    """The rows of :data:`STEP_COUNTS_SQL` as action → outcome → items."""
    out: dict[str, dict[str, int]] = {}
    for row in rows:
        out.setdefault(str(row["action"]), {})[str(row["outcome"])] = int(row["n"])
    return out
