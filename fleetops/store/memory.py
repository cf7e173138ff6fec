"""An in-memory store with the semantics of the SQL one, shipped for tests.

:class:`MemoryStore` keeps jobs, items and events in dictionaries and behaves like
:class:`fleetops.store.Store` where the engine can tell: leases expire and are refused to a second
owner, items are read in id order by keyset pages, ``(job, WorkSpace)`` is unique, counts list
every state, and the group writer returns only once a write is applied. A whole job runs through
it in milliseconds::

    store = MemoryStore()
    job = await store.create_job(NewJob(...))
    await JobRunner(store, {"us-east-1": fake_client}, job).run()
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any

import anyio
import anyio.lowlevel

from fleetops.errors import NotFoundError, StoreError
from fleetops.records import (
    EventRow,
    ItemRecord,
    ItemUpdate,
    JobRecord,
    NewJob,
    StepChange,
    StepRecord,
)
from fleetops.states import ACTIVE_ITEM_STATES, ItemState, JobStatus

__all__ = ["ITEM_COLUMNS", "JOB_COLUMNS", "MemoryStore", "MemoryWriter"]

#: The columns of the ``jobs`` and ``items`` tables (:mod:`fleetops.store.tables`; a test keeps
#: them equal), named here so that the memory store needs no SQLAlchemy.
JOB_COLUMNS = (
    "id",
    "parent_id",
    "action",
    "status",
    "params",
    "targets",
    "options",
    "region",
    "regions",
    "profile",
    "endpoint_url",
    "message",
    "created_at",
    "planned_at",
    "started_at",
    "finished_at",
    "lease_owner",
    "lease_expires_at",
    "started_by",
    "started_host",
    "caller_arn",
    "accounts",
    "assume",
    "require_approval",
    "approved_by",
    "approved_at",
    "approval_comment",
    "notifications",
    "next_window_at",
)
ITEM_COLUMNS = (
    "id",
    "job_id",
    "workspace_id",
    "region",
    "state",
    "attempts",
    "seen_state",
    "last_state",
    "user_name",
    "directory_id",
    "bundle_id",
    "reason",
    "error_code",
    "error_message",
    "result",
    "submitted_at",
    "updated_at",
    "account",
)


class MemoryStore:
    """Jobs, items and events in memory (one process, one event loop)."""

    def __init__(self, where: str = "memory") -> None:
        self.where = where
        self.jobs: dict[str, dict[str, Any]] = {}
        self.items: dict[int, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self.steps: dict[tuple[int, int], StepRecord] = {}  # (item id, rung) -> step
        self._next_item = 1
        self.writes = 0  # transactions applied by writers (for tests)
        # WorkSpace claims taken just before an in_flight commit: (region, id) → (job, expiry)
        self._claims: dict[tuple[str, str], tuple[str, float]] = {}

    async def close(self) -> None:
        return None

    # -- jobs --------------------------------------------------------------------------------

    async def create_job(self, job: NewJob) -> JobRecord:
        row: dict[str, Any] = dict.fromkeys(JOB_COLUMNS)
        row.update(job.row(JobStatus.PLANNED, time.time()))
        for name in ("started_by", "started_host", "caller_arn", "assume", "require_approval"):
            if name in row and getattr(job, name, None) is not None:
                row[name] = getattr(job, name)
        if "accounts" in row and getattr(job, "accounts", None) is not None:
            row["accounts"] = list(job.accounts or ())
        self.jobs[job.id] = row
        return await self.get_job(job.id)

    def _job_row(self, job_id: str) -> dict[str, Any]:
        row = self.jobs.get(job_id)
        if row is None:
            matches = [key for key in self.jobs if job_id and key.startswith(job_id)]
            if len(matches) > 1:
                raise NotFoundError(f"job id prefix {job_id!r} is ambiguous")
            if not matches:
                raise NotFoundError(f"no job {job_id!r} in {self.where}")
            row = self.jobs[matches[0]]
        return row

    async def get_job(self, job_id: str) -> JobRecord:
        return JobRecord.from_row(self._job_row(job_id))

    async def update_job(self, job_id: str, **values: Any) -> None:
        if isinstance(values.get("status"), JobStatus):
            values["status"] = values["status"].value
        row = self.jobs.get(job_id)
        if row is not None:
            row.update(values)

    async def counts(self, job_id: str, *, region: str | None = None) -> dict[str, int]:
        counts = {state.value: 0 for state in ItemState}
        for row in self.items.values():
            if row["job_id"] == job_id and (region is None or row["region"] == region):
                counts[row["state"]] += 1
        return counts

    # -- leases ------------------------------------------------------------------------------

    async def acquire_lease(self, job_id: str, owner: str, ttl: float) -> str | None:
        row = self._job_row(job_id)
        now = time.time()
        holder, expires = row["lease_owner"], row["lease_expires_at"]
        if holder is not None and holder != owner and expires is not None and expires > now:
            return str(holder)
        row["lease_owner"], row["lease_expires_at"] = owner, now + ttl
        return None

    async def renew_lease(self, job_id: str, owner: str, ttl: float) -> bool:
        row = self._job_row(job_id)
        if row["lease_owner"] != owner:
            return False
        row["lease_expires_at"] = time.time() + ttl
        return True

    async def release_lease(self, job_id: str, owner: str) -> None:
        row = self._job_row(job_id)
        if row["lease_owner"] == owner:
            row["lease_owner"], row["lease_expires_at"] = None, None

    async def busy_workspaces(
        self, job_id: str, region: str, workspace_ids: Sequence[str]
    ) -> dict[str, str]:
        """As :func:`fleetops.store.coord.busy_workspaces`: WorkSpaces in flight or submitted in
        another running job under a live lease, or claimed by one; the free ones are claimed."""
        from fleetops.store.coord import CLAIM_TTL

        now = time.time()
        live = {
            key
            for key, row in self.jobs.items()
            if key != job_id
            and row["status"] == JobStatus.RUNNING.value
            and (row["lease_expires_at"] or 0.0) > now
        }
        wanted = set(workspace_ids)
        busy = {
            str(r["workspace_id"]): str(r["job_id"])
            for r in self.items.values()
            if r["job_id"] in live
            and r["region"] == region
            and r["workspace_id"] in wanted
            and r["state"] in ACTIVE_ITEM_STATES
        }
        for ws in workspace_ids:
            holder, expires = self._claims.get((region, ws), (job_id, 0.0))
            if holder != job_id and expires > now:
                busy.setdefault(ws, holder)
            elif ws not in busy:
                self._claims[(region, ws)] = (job_id, now + CLAIM_TTL)
        return busy

    # -- items -------------------------------------------------------------------------------

    async def add_items(self, rows: Sequence[Mapping[str, Any]]) -> None:
        existing = {(r["job_id"], r["workspace_id"]) for r in self.items.values()}
        new = []
        for given in rows:
            key = (given["job_id"], given["workspace_id"])
            if key in existing:
                raise StoreError(f"item {key[1]} of job {key[0]} is already recorded")
            existing.add(key)
            row: dict[str, Any] = dict.fromkeys(ITEM_COLUMNS)
            row.update(attempts=0, updated_at=time.time())
            row.update(given)
            new.append(row)
        for row in new:  # all or nothing, like one transaction
            row["id"] = self._next_item
            self.items[self._next_item] = row
            self._next_item += 1

    async def delete_items(self, job_id: str, *, region: str | None = None) -> None:
        for item_id, row in list(self.items.items()):
            if row["job_id"] == job_id and (region is None or row["region"] == region):
                del self.items[item_id]

    async def items_page(
        self,
        job_id: str,
        *,
        states: Iterable[ItemState] | None = None,
        after_id: int = 0,
        limit: int = 1000,
        region: str | None = None,
    ) -> list[ItemRecord]:
        wanted = None if states is None else {str(s) for s in states}
        out: list[ItemRecord] = []
        for item_id in sorted(i for i in self.items if i > after_id):
            row = self.items[item_id]
            if row["job_id"] != job_id or (region is not None and row["region"] != region):
                continue
            if wanted is not None and row["state"] not in wanted:
                continue
            out.append(ItemRecord.from_row(row))
            if len(out) >= limit:
                break
        await anyio.lowlevel.checkpoint()
        return out

    async def iter_items(
        self,
        job_id: str,
        *,
        states: Iterable[ItemState] | None = None,
        page: int = 1000,
        region: str | None = None,
    ) -> AsyncIterator[list[ItemRecord]]:
        wanted = list(states) if states is not None else None
        after = 0
        while True:
            batch = await self.items_page(
                job_id, states=wanted, after_id=after, limit=page, region=region
            )
            if not batch:
                return
            yield batch
            after = batch[-1].id

    async def events_for(self, job_id: str, limit: int = 1000) -> list[dict[str, Any]]:
        return [dict(e) for e in self.events if e["job_id"] == job_id][:limit]

    # -- the steps of a recipe's items (as fleetops.store.steps writes them) ----------------

    async def write_steps(self, changes: Sequence[StepChange]) -> None:
        now = time.time()
        steps = self.steps
        for change in changes:
            if change.close is not None:
                steps[(change.item_id, change.close.rung)] = change.close
            if change.open is not None:
                steps[(change.item_id, change.open.rung)] = change.open
            values = change.item_values(now)
            if values is not None:
                self.items[change.item_id].update(values)
        await anyio.lowlevel.checkpoint()

    async def item_steps(
        self, job_id: str, item_ids: Iterable[int] | None = None
    ) -> list[StepRecord]:
        wanted = None if item_ids is None else set(item_ids)
        return [
            step
            for _, step in sorted(self.steps.items())
            if step.job_id == job_id and (wanted is None or step.item_id in wanted)
        ]

    def writer(self) -> MemoryWriter:
        return MemoryWriter(self)

    # -- the writer's transaction ------------------------------------------------------------

    def apply(self, updates: Sequence[ItemUpdate], event_rows: Sequence[EventRow]) -> None:
        """Apply updates and append events at once (no await: nothing can interleave)."""
        now = time.time()
        for update in updates:
            for item_id in update.ids:
                row = self.items.get(item_id)
                if row is not None:
                    _update_row(row, update, now)
        for event in event_rows:
            self.events.append(
                {
                    "id": len(self.events) + 1,
                    "job_id": event.job_id,
                    "at": event.at,
                    "region": event.region,
                    "operation": event.operation,
                    "workspace_ids": " ".join(event.workspace_ids),
                    "outcome": event.outcome,
                    "error_code": event.error_code,
                    "request_id": event.request_id,
                    "attempts": event.attempts,
                    "duration_ms": event.duration_ms,
                }
            )
        self.writes += 1

    async def approve_job(self, job_id: str, by: str, comment: str | None = None) -> bool:
        """As :meth:`fleetops.store.Store.approve_job`."""
        row = self.jobs.get(job_id)
        if (
            row is None
            or row["status"] != JobStatus.PLANNED.value
            or not row.get("require_approval")
            or row.get("approved_by") is not None
        ):
            return False
        row.update(approved_by=by, approved_at=time.time(), approval_comment=comment)
        return True


def _update_row(row: dict[str, Any], update: ItemUpdate, now: float) -> None:
    """The SQL store's UPDATE, on one row."""
    row["state"] = str(update.state)
    row["updated_at"] = now
    row["attempts"] += update.attempts_inc
    if update.last_state is not None:
        row["last_state"] = update.last_state
    if update.clear_error:
        row["error_code"] = row["error_message"] = None
    if update.error_code is not None:
        row["error_code"], row["error_message"] = update.error_code, update.error_message
    if update.reason is not None:
        row["reason"] = update.reason
    if update.result is not None:
        row["result"] = update.result
    if update.submitted:
        row["submitted_at"] = now


class MemoryWriter:
    """The group writer's contract: ``write`` returns once applied; ``run`` lasts until closed."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store
        self._closed = anyio.Event()
        self.commits = 0

    async def write(
        self, updates: Sequence[ItemUpdate], event_rows: Sequence[EventRow] = ()
    ) -> None:
        await anyio.lowlevel.checkpoint()  # a write is a suspension point, as with a database
        self.store.apply(updates, event_rows)
        self.commits += 1

    def post(self, event_rows: Sequence[EventRow]) -> bool:
        if self._closed.is_set():
            return False
        self.store.apply((), event_rows)
        return True

    async def run(self) -> None:
        await self._closed.wait()

    def close(self) -> None:
        self._closed.set()
