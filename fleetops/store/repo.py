"""Every database operation of fleetops, and nothing else.

Reads are short queries: a job, the job list, counts and item pages are the reads of
:mod:`fleetops.store.reads` (SQL written once in :mod:`fleetops.store.queries`, shared with the
history commands' light readers) run through ``sqlalchemy.text()`` by :meth:`Store.read`. Writes
of the running engine go through :class:`GroupWriter`, which commits whatever has queued up in
one transaction (group commit), so SQLite's per-commit cost is shared by every batch that
finished meanwhile.
"""

from __future__ import annotations

import getpass
import logging
import os
import secrets
import socket
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from functools import cache
from typing import Any, TypeVar

import anyio
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from fleetops.errors import NotFoundError
from fleetops.records import (
    EventRow,
    ItemRecord,
    ItemUpdate,
    JobRecord,
    NewJob,
    StepChange,
    StepRecord,
)
from fleetops.states import ItemState, JobStatus
from fleetops.store import reads
from fleetops.store.engine import create_engine, explain_db_error, migrate, parse_target
from fleetops.store.queries import Query
from fleetops.store.reads import Read
from fleetops.store.tables import events, items, jobs

__all__ = ["GroupWriter", "Store", "lease_owner_id"]

log = logging.getLogger(__name__)

WriteOp = Callable[[AsyncConnection], Awaitable[None]]
T = TypeVar("T")


@cache
def _text(query: Query) -> sa.TextClause:
    """A query of :mod:`fleetops.store.queries` as SQLAlchemy runs it (lists expanded)."""
    text = sa.text(query.sql)
    if query.lists:
        text = text.bindparams(*(sa.bindparam(name, expanding=True) for name in query.lists))
    return text


def current_user() -> str | None:
    """The OS user running fleetops (None when the system cannot tell)."""
    try:
        return getpass.getuser()
    except (OSError, KeyError, ImportError):
        return None


def lease_owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def job_row(job: NewJob, now: float, status: JobStatus = JobStatus.PLANNED) -> dict[str, Any]:
    """The ``jobs`` row of a new job (created now, ``status``; who started it: this process's
    user and host unless the job says)."""
    return dict(
        job.row(status, now),
        started_by=job.started_by if job.started_by is not None else current_user(),
        started_host=job.started_host if job.started_host is not None else socket.gethostname(),
        caller_arn=job.caller_arn,
        # SQL NULL (not JSON null) for "none given"
        accounts=list(job.accounts) if job.accounts is not None else sa.null(),
        assume=dict(job.assume) if job.assume is not None else sa.null(),
        require_approval=job.require_approval,
    )


def _owner_is_dead(owner: str) -> bool:
    """A lease held by a process of this host that no longer exists is stale at once."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class Store:
    """The repository: one per database file."""

    def __init__(self, engine: AsyncEngine, where: str) -> None:
        self.engine = engine
        self.where = where

    @classmethod
    async def open(cls, target: str | os.PathLike[str], *, create: bool = True) -> Store:
        """Open (creating and migrating as needed) the database at ``target``: a path, or a
        ``sqlite:///`` or ``postgresql://`` URL. With ``create=False`` (commands that only read)
        a missing SQLite file or a PostgreSQL database without the schema is refused instead."""
        parsed = parse_target(target)
        engine = create_engine(parsed, create=create)
        store = cls(engine, parsed.where)
        try:
            await migrate(engine, store.where, create=create)
        except BaseException:
            await engine.dispose()
            raise
        return store

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return str(self.engine.dialect.name)

    async def close(self) -> None:
        await self.engine.dispose()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A connection in a transaction, committed at the end; errors made one line."""
        try:
            async with self.engine.begin() as conn:
                yield conn
        except (DBAPIError, sqlite3.Error) as exc:
            raise explain_db_error(exc, self.where) from exc

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncConnection]:
        """A connection for queries; errors made one line."""
        try:
            async with self.engine.connect() as conn:
                yield conn
        except (DBAPIError, sqlite3.Error) as exc:
            raise explain_db_error(exc, self.where) from exc

    # -- jobs --------------------------------------------------------------------------------

    async def create_job(self, job: NewJob) -> JobRecord:
        async with self.transaction() as conn:
            await conn.execute(jobs.insert().values(**job_row(job, time.time())))
        return await self.get_job(job.id)

    async def read(self, read: Read[T]) -> T:
        """Run one of the history's reads (:mod:`fleetops.store.reads`) on one connection."""
        async with self.reading() as conn:
            try:
                query, params = next(read)
                while True:
                    result = await conn.execute(_text(query), params)
                    query, params = read.send([dict(row) for row in result.mappings()])
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]

    async def get_job(self, job_id: str) -> JobRecord:
        """A job by id, or by a unique prefix of its id."""
        return await self.read(reads.get_job(job_id, self.where))

    async def list_jobs(
        self,
        *,
        status: str | None = None,
        action: str | None = None,
        since: float | None = None,
        limit: int = 20,
        started_by: str | None = None,
    ) -> list[JobRecord]:
        """The newest jobs first, filtered by status, action, age and who started them."""
        return await self.read(
            reads.list_jobs(
                status=status, action=action, since=since, limit=limit, started_by=started_by
            )
        )

    async def update_job(self, job_id: str, **values: Any) -> None:
        if "status" in values and isinstance(values["status"], JobStatus):
            values["status"] = values["status"].value
        async with self.transaction() as conn:
            await conn.execute(jobs.update().where(jobs.c.id == job_id).values(**values))

    async def counts(self, job_id: str, *, region: str | None = None) -> dict[str, int]:
        """Items by state (every state present, zeros included), of one region or all."""
        return (await self.read(reads.counts_for([job_id], region=region)))[job_id]

    async def counts_for(self, job_ids: Sequence[str]) -> dict[str, dict[str, int]]:
        """Items by state (zeros included) of each job."""
        return await self.read(reads.counts_for(job_ids))

    # -- leases ------------------------------------------------------------------------------

    async def acquire_lease(self, job_id: str, owner: str, ttl: float) -> str | None:
        """Take the job's lease. Returns None on success, else the live holder's id."""
        now = time.time()
        lease = sa.select(jobs.c.lease_owner, jobs.c.lease_expires_at).where(jobs.c.id == job_id)
        async with self.transaction() as conn:
            # PostgreSQL: lock the job's row, or learn at once that another runner is taking
            # it right now (SQLite has no row locks: it serialises writers per file, and the
            # UPDATE below only succeeds if the holder is still the one read here).
            row = (await conn.execute(lease.with_for_update(skip_locked=True))).first()
            if row is None:
                row = (await conn.execute(lease)).first()
                if row is None:
                    raise NotFoundError(f"no job {job_id!r} in {self.where}")
                if self.dialect == "postgresql":
                    return str(row[0] or "another runner taking the job")
            holder, expires = row
            if (
                holder is not None
                and holder != owner
                and expires is not None
                and expires > now
                and not _owner_is_dead(holder)
            ):
                return str(holder)
            result = await conn.execute(
                jobs.update()
                .where(jobs.c.id == job_id)
                .where(
                    sa.or_(
                        jobs.c.lease_owner.is_(None),
                        jobs.c.lease_owner == holder,
                    )
                )
                .values(lease_owner=owner, lease_expires_at=now + ttl)
            )
            if result.rowcount != 1:
                return str(holder)
        return None

    async def renew_lease(self, job_id: str, owner: str, ttl: float) -> bool:
        async with self.transaction() as conn:
            result = await conn.execute(
                jobs.update()
                .where(jobs.c.id == job_id, jobs.c.lease_owner == owner)
                .values(lease_expires_at=time.time() + ttl)
            )
        return bool(result.rowcount == 1)

    async def release_lease(self, job_id: str, owner: str) -> None:
        async with self.transaction() as conn:
            await conn.execute(
                jobs.update()
                .where(jobs.c.id == job_id, jobs.c.lease_owner == owner)
                .values(lease_owner=None, lease_expires_at=None)
            )

    async def busy_workspaces(
        self, job_id: str, region: str, workspace_ids: Sequence[str]
    ) -> dict[str, str]:
        """WorkSpaces busy in other live jobs (see :mod:`fleetops.store.coord`)."""
        from fleetops.store.coord import busy_workspaces

        return await busy_workspaces(self, job_id, region, workspace_ids)

    async def renew_quota_holder(self, scope: str, holder: str, ttl: float) -> int:
        """Hold ``scope``'s quota for ``ttl`` seconds more; how many live holders share it."""
        from fleetops.store.coord import renew_quota_holder

        return await renew_quota_holder(self, scope, holder, ttl)

    async def release_quota_holder(self, scope: str, holder: str) -> None:
        from fleetops.store.coord import release_quota_holder

        await release_quota_holder(self, scope, holder)

    # -- items -------------------------------------------------------------------------------

    async def add_items(self, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        async with self.transaction() as conn:
            await conn.execute(items.insert(), [dict(row) for row in rows])

    async def delete_items(self, job_id: str, *, region: str | None = None) -> None:
        query = items.delete().where(items.c.job_id == job_id)
        if region is not None:
            query = query.where(items.c.region == region)
        async with self.transaction() as conn:
            await conn.execute(query)

    async def items_page(
        self,
        job_id: str,
        *,
        states: Iterable[ItemState] | None = None,
        after_id: int = 0,
        limit: int = 1000,
        region: str | None = None,
    ) -> list[ItemRecord]:
        """One page of a job's items in id order (keyset pagination: stream big jobs)."""
        return await self.read(
            reads.items_page(job_id, states=states, after_id=after_id, limit=limit, region=region)
        )

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
        query = events.select().where(events.c.job_id == job_id).order_by(events.c.id).limit(limit)
        async with self.reading() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [dict(row) for row in rows]

    def writer(self) -> GroupWriter:
        return GroupWriter(self)

    async def approve_job(self, job_id: str, by: str, comment: str | None = None) -> bool:
        """Record ``by``'s approval of the stored plan ``job_id``: one conditional UPDATE, so of
        two approvers at once only one is recorded. False: the job is no longer a plan that
        awaits an approval (approved meanwhile, started, cancelled)."""
        async with self.transaction() as conn:
            result = await conn.execute(
                jobs.update()
                .where(
                    jobs.c.id == job_id,
                    jobs.c.status == JobStatus.PLANNED.value,
                    jobs.c.require_approval.is_(True),
                    jobs.c.approved_by.is_(None),
                )
                .values(approved_by=by, approved_at=time.time(), approval_comment=comment)
            )
        return bool(result.rowcount == 1)

    # -- the steps of a recipe's items (fleetops.store.steps) -------------------------------

    async def write_steps(self, changes: Sequence[StepChange]) -> None:
        """Close, open and reset steps and their items, in one transaction."""
        from fleetops.store.steps import write_changes

        if changes:
            async with self.transaction() as conn:
                await write_changes(conn, changes)

    async def item_steps(
        self, job_id: str, item_ids: Iterable[int] | None = None
    ) -> list[StepRecord]:
        """A job's steps (of ``item_ids`` only, when given), by item and rung."""
        from fleetops.store.steps import read_steps

        async with self.reading() as conn:
            return await read_steps(conn, job_id, item_ids)

    async def step_counts(self, job_id: str) -> dict[str, dict[str, int]]:
        """A recipe's job: action of a step → outcome (open: its item's state) → items."""
        from fleetops.store.steps import count_steps

        async with self.reading() as conn:
            return await count_steps(conn, job_id)


#: The columns an :class:`ItemUpdate` may set besides ``state`` and ``updated_at``, each with
#: the test that says whether this update sets it.
_OPTIONAL_COLUMNS: tuple[tuple[str, Callable[[ItemUpdate], bool]], ...] = (
    ("attempts", lambda u: bool(u.attempts_inc)),
    ("last_state", lambda u: u.last_state is not None),
    ("error_code", lambda u: u.clear_error or u.error_code is not None),
    ("error_message", lambda u: u.clear_error or u.error_code is not None),
    ("reason", lambda u: u.reason is not None),
    ("result", lambda u: u.result is not None),
    ("submitted_at", lambda u: u.submitted),
)

_update_statements: dict[tuple[str, ...], Any] = {}
#: Item ids per UPDATE (well under SQLite's and PostgreSQL's limits on bound parameters).
_IDS_PER_STATEMENT = 500


def _shape(update: ItemUpdate) -> tuple[str, ...]:
    """The columns ``update`` sets: updates of one shape share one compiled statement."""
    return tuple(name for name, sets in _OPTIONAL_COLUMNS if sets(update))


def _update_statement(shape: tuple[str, ...]) -> Any:
    """``UPDATE items SET state=?, updated_at=?, <shape> WHERE id IN (…)``, every value bound
    (``attempts`` as an increment), built once per shape: SQLAlchemy compiles it once, and each
    run sets any number of items to the same values in one statement."""
    statement = _update_statements.get(shape)
    if statement is None:
        values: dict[str, Any] = {
            "state": sa.bindparam("p_state"),
            "updated_at": sa.bindparam("p_now"),
        }
        for name in shape:
            if name == "attempts":
                values[name] = items.c.attempts + sa.bindparam("p_attempts_inc")
            else:
                values[name] = sa.bindparam(f"p_{name}")
        statement = (
            items.update()
            .where(items.c.id.in_(sa.bindparam("p_ids", expanding=True)))
            .values(**values)
        )
        _update_statements[shape] = statement
    return statement


def _update_row(update: ItemUpdate, shape: tuple[str, ...], now: float) -> dict[str, Any]:
    """The bound values of ``update`` (the ids are bound apart)."""
    row: dict[str, Any] = {"p_state": str(update.state), "p_now": now}
    for name in shape:
        if name == "attempts":
            row["p_attempts_inc"] = update.attempts_inc
        elif name == "error_code":
            row["p_error_code"] = update.error_code  # None when clear_error alone
        elif name == "error_message":
            row["p_error_message"] = update.error_message if update.error_code is not None else None
        elif name == "submitted_at":
            row["p_submitted_at"] = now
        else:
            row[f"p_{name}"] = getattr(update, name)
    return row


def _event_row(row: EventRow) -> dict[str, Any]:
    return {
        "job_id": row.job_id,
        "at": row.at,
        "region": row.region,
        "operation": row.operation,
        "workspace_ids": " ".join(row.workspace_ids),
        "outcome": row.outcome,
        "error_code": row.error_code,
        "request_id": row.request_id,
        "attempts": row.attempts,
        "duration_ms": row.duration_ms,
    }


async def apply_updates(
    conn: AsyncConnection, updates: Sequence[ItemUpdate], event_rows: Sequence[EventRow]
) -> None:
    """Apply item updates and append events on an open transaction.

    Updates that set the same values (whoever sent them: the group writer merges many callers'
    writes) are one ``UPDATE … WHERE id IN (…)`` of all their items, the values bound once: a
    commit of a thousand verdicts is a handful of statements and no per-item parameters. An item
    updated twice in one call is updated in order (the groups collected so far are written
    before its second update joins a group).
    """
    now = time.time()
    groups: dict[tuple[Any, ...], tuple[tuple[str, ...], dict[str, Any], list[int]]] = {}
    touched: set[int] = set()

    async def flush() -> None:
        for shape, values, ids in groups.values():
            statement = _update_statement(shape)
            for start in range(0, len(ids), _IDS_PER_STATEMENT):
                chunk = ids[start : start + _IDS_PER_STATEMENT]
                await conn.execute(statement, {**values, "p_ids": chunk})
        groups.clear()
        touched.clear()

    for update in updates:
        if not update.ids:
            continue
        if not touched.isdisjoint(update.ids):
            await flush()
        shape = _shape(update)
        values = _update_row(update, shape, now)
        key = (shape, *values.values())
        group = groups.get(key)
        if group is None:
            groups[key] = (shape, values, list(update.ids))
        else:
            group[2].extend(update.ids)
        touched.update(update.ids)
    await flush()
    if event_rows:
        await conn.execute(events.insert(), [_event_row(row) for row in event_rows])


class GroupWriter:
    """Group commit: every write queued while a transaction is open goes into the next one.

    ``await writer.write(updates, events)`` returns once the write is durable (committed). Callers
    that must not lose an outcome wrap the await in a shielded cancel scope; the writer's own task
    runs until :meth:`close` has drained the queue.

    ``writer.post(events)`` hands over audit rows that nobody waits for: they ride in the next
    transaction (the one of the write that usually follows at once, the call's outcome), or in
    one of their own at most :data:`POST_DELAY` seconds later. The resume rule never depends on
    them: items are its record.
    """

    #: The longest a posted event waits for a write to carry it.
    POST_DELAY = 0.05

    def __init__(self, store: Store) -> None:
        self.store = store
        self._queue: list[tuple[Sequence[ItemUpdate], Sequence[EventRow], anyio.Event]] = []
        self._posted: list[EventRow] = []
        self._errors: dict[int, BaseException] = {}
        self._wakeup = anyio.Event()
        self._closed = False
        self.commits = 0

    async def write(
        self, updates: Sequence[ItemUpdate], event_rows: Sequence[EventRow] = ()
    ) -> None:
        if self._closed:
            async with self.store.transaction() as conn:
                await apply_updates(conn, updates, event_rows)
            return
        done = anyio.Event()
        self._queue.append((updates, event_rows, done))
        self._wakeup.set()
        await done.wait()
        error = self._errors.pop(id(done), None)
        if error is not None:
            raise error

    def post(self, event_rows: Sequence[EventRow]) -> bool:
        """Queue ``event_rows`` for the next transaction without waiting for it; False (nothing
        queued) once the writer is closed: the caller writes them itself."""
        if self._closed:
            return False
        if not self._posted:
            self._wakeup.set()  # an idle writer starts its POST_DELAY
        self._posted.extend(event_rows)
        return True

    async def run(self) -> None:
        """The writer task: loop until closed and drained."""
        while True:
            if not self._queue:
                if self._closed:
                    if not self._posted:
                        return
                elif self._posted:
                    # Events alone: one POST_DELAY for a write to carry them.
                    with anyio.move_on_after(self.POST_DELAY):
                        await self._wakeup.wait()
                    self._wakeup = anyio.Event()
                else:
                    await self._wakeup.wait()
                    self._wakeup = anyio.Event()
                    continue
            batch, self._queue = self._queue, []
            posted, self._posted = self._posted, []
            try:
                with anyio.CancelScope(shield=True):
                    async with self.store.transaction() as conn:
                        await apply_updates(
                            conn,
                            [update for updates, _, _ in batch for update in updates],
                            [*posted, *(row for _, event_rows, _ in batch for row in event_rows)],
                        )
                self.commits += 1
            except BaseException as exc:
                for _, _, done in batch:
                    self._errors[id(done)] = exc
                    done.set()
                if posted and not batch:
                    log.warning("%d audit events could not be written: %s", len(posted), exc)
                if not isinstance(exc, Exception):
                    raise
                continue
            for _, _, done in batch:
                done.set()

    def close(self) -> None:
        self._closed = True
        self._wakeup.set()
