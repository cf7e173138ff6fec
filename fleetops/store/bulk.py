"""Writing many rows at once, the fastest way each database offers.

PostgreSQL takes rows through ``COPY … FROM STDIN`` (several times faster than multi-row
INSERTs); SQLite through one prepared INSERT executed for every row. Used by ``db copy`` and to
fill benchmark histories; the engine's own writes stay ordinary statements.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from fleetops.store.ident import quoted

__all__ = ["insert_rows", "reset_sequences"]


def _json_columns(table: sa.Table) -> set[str]:
    return {column.name for column in table.columns if isinstance(column.type, sa.JSON)}


async def insert_rows(
    conn: AsyncConnection, table: sa.Table, rows: Sequence[Mapping[str, Any]]
) -> int:
    """Insert ``rows`` (every row with the same keys) into ``table`` on an open transaction."""
    if not rows:
        return 0
    columns = list(rows[0])
    if conn.dialect.name != "postgresql":
        await conn.execute(table.insert(), [dict(row) for row in rows])
        return len(rows)
    as_json = _json_columns(table) & set(columns)
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection
    names = ", ".join(f'"{name}"' for name in columns)
    async with driver.cursor() as cursor:
        async with cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
            for row in rows:
                await copy.write_row(
                    [
                        json.dumps(row[name])
                        if name in as_json and row[name] is not None
                        else row[name]
                        for name in columns
                    ]
                )
    return len(rows)


async def reset_sequences(conn: AsyncConnection, tables: Sequence[sa.Table]) -> None:
    """After rows were written with their ids: move each serial id's sequence past the largest
    id, so the next ordinary INSERT does not collide (PostgreSQL; SQLite needs nothing)."""
    if conn.dialect.name != "postgresql":
        return
    for table in tables:
        for column in table.primary_key.columns:
            if not column.autoincrement or not isinstance(column.type, sa.Integer):
                continue
            await conn.execute(
                sa.text(
                    "SELECT setval(pg_get_serial_sequence(:table, :column), "
                    f"COALESCE((SELECT MAX({quoted(column.name)}) FROM {quoted(table.name)}), 0) "
                    "+ 1, false)"
                ),
                {"table": table.name, "column": column.name},
            )
