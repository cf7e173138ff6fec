"""The steps of a job's items read by the history's plain-driver readers (sqlite3 or psycopg:
no SQLAlchemy), through the queries of :mod:`fleetops.store.queries` that the Store runs too.

``step_counts`` counts each step by its outcome, an open step by its item's live state, in
ladder order (the lowest rung an action was taken at first).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from fleetops.records import StepRecord
from fleetops.store.queries import STEP_COUNTS, STEPS_OF_ITEMS

__all__ = ["counts_from_rows", "step_counts", "steps_of"]


def steps_of(reader: Any, job_id: str, item_ids: Sequence[int]) -> dict[int, list[StepRecord]]:
    """Item id → its steps, by rung (items without steps are absent)."""
    if not item_ids:
        return {}
    wanted = set(item_ids)
    out: dict[int, list[StepRecord]] = {}
    params = {"job_id": job_id, "low": min(wanted), "high": max(wanted)}
    for row in reader.fetch(STEPS_OF_ITEMS, params):
        step = StepRecord.from_row(dict(row))
        if step.item_id in wanted:
            out.setdefault(step.item_id, []).append(step)
    return out


def step_counts(reader: Any, job_id: str) -> dict[str, dict[str, int]]:
    """Action of a step → outcome (or live state) → how many items: ``jobs show``'s counts by
    step (empty for a job of one action)."""
    return counts_from_rows(reader.fetch(STEP_COUNTS, {"job_id": job_id}))


def counts_from_rows(rows: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, int]]:
    """The rows of :data:`~fleetops.store.queries.STEP_COUNTS` as action → outcome → items."""
    out: dict[str, dict[str, int]] = {}
    for row in rows:
        out.setdefault(str(row["action"]), {})[str(row["outcome"])] = int(row["n"])
    return out
