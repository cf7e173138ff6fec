"""The steps of a job's items (a recipe's rungs), in the SQL store and in memory.

Invariants: an item has at most one open step (``outcome`` NULL), the last one; a step is
closed and the next one opened in the same transaction as the item's reset to ``pending`` for
it (:func:`write_changes`), so a process killed at any instant leaves either the old step open
with the item's outcome on its row, or the new step open with the item pending: never an item
between two steps. The open step's live figures are the item's own (state, attempts, error).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from fleetops.records import StepChange, StepRecord
from fleetops.store.queries import STEP_COUNTS
from fleetops.store.steps_read import counts_from_rows
from fleetops.store.tables import item_steps, items

__all__ = ["count_steps", "read_steps", "write_changes"]


#: The history readers' count of steps, with SQLAlchemy's named parameter.
_COUNTS = sa.text(STEP_COUNTS.sql)


async def write_changes(conn: AsyncConnection, changes: Sequence[StepChange]) -> None:
    """Apply ``changes`` on ``conn`` (the caller's one transaction)."""
    now = time.time()
    for change in changes:
        if change.close is not None:
            row = change.close.as_row()
            updated = await conn.execute(
                item_steps.update()
                .where(
                    item_steps.c.item_id == change.item_id, item_steps.c.rung == change.close.rung
                )
                .values(**{k: v for k, v in row.items() if k not in ("item_id", "rung")})
            )
            if not updated.rowcount:
                await conn.execute(item_steps.insert().values(**row))
        if change.open is not None:
            await conn.execute(item_steps.insert().values(**change.open.as_row()))
        values = change.item_values(now)
        if values is not None:
            await conn.execute(items.update().where(items.c.id == change.item_id).values(**values))


async def read_steps(
    conn: AsyncConnection, job_id: str, item_ids: Iterable[int] | None = None
) -> list[StepRecord]:
    """A job's steps (of ``item_ids`` only, when given), by item and rung."""
    query = sa.select(item_steps).where(item_steps.c.job_id == job_id)
    if item_ids is not None:
        wanted = sorted(set(item_ids))
        if not wanted:
            return []
        query = query.where(item_steps.c.item_id.between(wanted[0], wanted[-1]))
        found = (await conn.execute(query.order_by("item_id", "rung"))).mappings().all()
        keep = set(wanted)
        return [StepRecord.from_row(dict(row)) for row in found if row["item_id"] in keep]
    found = (await conn.execute(query.order_by("item_id", "rung"))).mappings().all()
    return [StepRecord.from_row(dict(row)) for row in found]


async def count_steps(conn: AsyncConnection, job_id: str) -> dict[str, dict[str, int]]:
    """A job's steps by action and outcome (the history readers' query, run here)."""
    rows = await conn.execute(_COUNTS, {"job_id": job_id})
    return counts_from_rows(dict(row) for row in rows.mappings())
