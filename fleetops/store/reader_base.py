"""What the history's plain-driver readers share (sqlite3 in :mod:`fleetops.store.readonly`,
psycopg in :mod:`fleetops.store.pgreader`): the connection's life, and what follows from each
dialect's own ``counts_for`` and ``items_page``. No SQLAlchemy here: that is their point."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Self

from fleetops.records import ItemRecord
from fleetops.states import ItemState


class ReaderBase:
    """One read-only connection; each dialect writes its own SQL for the two methods below."""

    def __init__(self, conn: Any, where: str) -> None:
        self.conn = conn
        self.where = where

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def counts_for(self, job_ids: Sequence[str]) -> dict[str, dict[str, int]]:
        raise NotImplementedError

    def items_page(
        self,
        job_id: str,
        *,
        states: Iterable[ItemState] | None = None,
        after_id: int = 0,
        limit: int = 1000,
    ) -> list[ItemRecord]:
        raise NotImplementedError

    def counts(self, job_id: str) -> dict[str, int]:
        return self.counts_for([job_id])[job_id]

    def iter_items(
        self, job_id: str, *, states: Iterable[ItemState] | None = None, page: int = 1000
    ) -> Iterator[list[ItemRecord]]:
        """Every item of a job, a page at a time."""
        wanted = list(states) if states is not None else None
        after = 0
        while True:
            found = self.items_page(job_id, states=wanted, after_id=after, limit=page)
            if not found:
                return
            yield found
            after = found[-1].id
