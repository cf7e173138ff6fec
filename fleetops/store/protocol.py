"""What the engine needs from a store, and nothing more.

:class:`fleetops.store.Store` (SQLite or PostgreSQL through SQLAlchemy) and
:class:`fleetops.store.memory.MemoryStore` (in memory, for tests) both satisfy it. Written in the
base's record types alone: importing it loads no database library.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any, Protocol

from fleetops.records import EventRow, ItemRecord, ItemUpdate, JobRecord, StepChange, StepRecord
from fleetops.states import ItemState

__all__ = ["EngineStore", "ItemWriter"]


class ItemWriter(Protocol):
    """Group commit: ``await write(updates, events)`` returns once both are durable."""

    async def write(
        self, updates: Sequence[ItemUpdate], event_rows: Sequence[EventRow] = ()
    ) -> None: ...

    def post(self, event_rows: Sequence[EventRow]) -> bool:
        """Queue audit rows for a coming commit, not waited for; False once closed."""
        ...

    async def run(self) -> None:
        """The writer's task: commits what is queued until closed and drained."""

    def close(self) -> None: ...


class EngineStore(Protocol):
    """The store operations a run uses: its job, the job's lease, and the job's items."""

    async def get_job(self, job_id: str) -> JobRecord: ...

    async def update_job(self, job_id: str, **values: Any) -> None: ...

    async def counts(self, job_id: str, *, region: str | None = None) -> dict[str, int]: ...

    async def acquire_lease(self, job_id: str, owner: str, ttl: float) -> str | None: ...

    async def renew_lease(self, job_id: str, owner: str, ttl: float) -> bool: ...

    async def release_lease(self, job_id: str, owner: str) -> None: ...

    async def busy_workspaces(
        self, job_id: str, region: str, workspace_ids: Sequence[str]
    ) -> dict[str, str]:
        """WorkSpace id → the other live job holding it (the free ones are claimed for job_id)."""
        ...

    async def add_items(self, rows: Sequence[Mapping[str, Any]]) -> None: ...

    async def delete_items(self, job_id: str, *, region: str | None = None) -> None: ...

    async def items_page(
        self,
        job_id: str,
        *,
        states: Iterable[ItemState] | None = None,
        after_id: int = 0,
        limit: int = 1000,
        region: str | None = None,
    ) -> list[ItemRecord]: ...

    def iter_items(
        self,
        job_id: str,
        *,
        states: Iterable[ItemState] | None = None,
        page: int = 1000,
        region: str | None = None,
    ) -> AsyncIterator[list[ItemRecord]]: ...

    def writer(self) -> ItemWriter: ...

    async def write_steps(self, changes: Sequence[StepChange]) -> None:
        """Close, open and reset the steps of a recipe's items, in one transaction."""
        ...

    async def item_steps(
        self, job_id: str, item_ids: Iterable[int] | None = None
    ) -> list[StepRecord]: ...
