"""The history's plain-driver readers (sqlite3 in :mod:`fleetops.store.readonly`, psycopg in
:mod:`fleetops.store.pgreader`): one class over the reads of :mod:`fleetops.store.reads`.

A dialect brings its connection and :meth:`ReaderBase.fetch`, which runs one query of
:mod:`fleetops.store.queries` in its driver's parameter style; every read (a job, the job list,
counts, item pages) is the Store's own, run here synchronously. No SQLAlchemy here: that is the
readers' point.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Self, TypeVar

from fleetops.records import ItemRecord, JobRecord
from fleetops.states import ItemState
from fleetops.store import reads
from fleetops.store.queries import Query

__all__ = ["ReaderBase"]

T = TypeVar("T")


class ReaderBase:
    """One read-only connection; each dialect runs the queries with its driver (:meth:`fetch`)."""

    def __init__(self, conn: Any, where: str) -> None:
        self.conn = conn
        self.where = where

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def fetch(self, query: Query, params: Mapping[str, Any]) -> reads.Rows:
        """The rows of one query (column name → value)."""
        raise NotImplementedError

    def read(self, read: reads.Read[T]) -> T:
        """Run one of the history's reads on this connection."""
        return reads.run(read, self.fetch)

    def get_job(self, job_id: str) -> JobRecord:
        """A job by id, or by a unique prefix of its id (as :meth:`Store.get_job`)."""
        return self.read(reads.get_job(job_id, self.where))

    def list_jobs(
        self,
        *,
        status: str | None = None,
        action: str | None = None,
        since: float | None = None,
        limit: int = 20,
        started_by: str | None = None,
    ) -> list[JobRecord]:
        """The newest jobs first, filtered as :meth:`Store.list_jobs` filters them."""
        return self.read(
            reads.list_jobs(
                status=status, action=action, since=since, limit=limit, started_by=started_by
            )
        )

    def counts_for(self, job_ids: Sequence[str]) -> dict[str, dict[str, int]]:
        """Items by state (zeros included) of each job."""
        return self.read(reads.counts_for(job_ids))

    def counts(self, job_id: str) -> dict[str, int]:
        return self.counts_for([job_id])[job_id]

    def items_page(
        self,
        job_id: str,
        *,
        states: Iterable[ItemState] | None = None,
        after_id: int = 0,
        limit: int = 1000,
    ) -> list[ItemRecord]:
        """One page of a job's items in id order (as :meth:`Store.items_page`)."""
        return self.read(reads.items_page(job_id, states=states, after_id=after_id, limit=limit))

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
