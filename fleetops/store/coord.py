"""Coordination between runners sharing one database: WorkSpace locks and quota holders.

Two questions several runners (CLI runs, workers on several hosts) answer through the store:

* **Which of these WorkSpaces are busy in another live job?** A WorkSpace is busy while an item
  of it is ``in_flight`` or ``submitted`` in another job that is ``running`` under a live lease.
  Between the check and the ``in_flight`` commit a short *claim* (a ``quota_holders`` row with
  scope ``workspace:REGION:ID`` held by the job) covers the gap, and the check runs serialised
  (an advisory transaction lock on PostgreSQL, SQLite's write lock), so two jobs checking the
  same WorkSpace at the same instant cannot both see it free. A dead job's locks expire with its
  lease, its claims a few seconds later.
* **How many runners share this account-region's quota?** Each live runner renews a
  ``quota_holders`` row (scope ``"region"`` or ``"account/region"``) and spends ``1 / holders``
  of the quota (:mod:`fleetops.engine.quota` ties these rows to :mod:`fleetops.aws.ratelimit`).

Times are epoch seconds from each host's clock (kept in step by NTP, as leases already assume).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from fleetops.states import ACTIVE_ITEM_STATES, JobStatus
from fleetops.store.tables import items, jobs, quota_holders


class Store(Protocol):
    """What these queries need of a store (fleetops.store.repo.Store): its connections."""

    def transaction(self) -> AbstractAsyncContextManager[AsyncConnection]: ...

    def reading(self) -> AbstractAsyncContextManager[AsyncConnection]: ...

__all__ = [
    "CLAIM_TTL",
    "busy_workspaces",
    "claim_scope",
    "release_quota_holder",
    "renew_quota_holder",
]

#: How long a claim taken just before an ``in_flight`` commit keeps a WorkSpace locked; the
#: committed item takes over from it (the commit normally lands within milliseconds).
CLAIM_TTL = 10.0
#: Arbitrary constant key of the PostgreSQL advisory lock that serialises WorkSpace checks.
_CLAIM_LOCK_KEY = 0x6F70735F6C6F636B  # "ops_lock"
_BUSY_STATES = tuple(sorted(state.value for state in ACTIVE_ITEM_STATES))
_CHUNK = 500


def claim_scope(region: str, workspace_id: str) -> str:
    """The ``quota_holders`` scope of a WorkSpace claim."""
    return f"workspace:{region}:{workspace_id}"


async def _serialise(conn: AsyncConnection) -> None:
    """Make the rest of this transaction exclusive among WorkSpace checks."""
    if conn.dialect.name == "postgresql":
        await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_CLAIM_LOCK_KEY)))
    # SQLite: the first write of the transaction (the DELETE that follows) takes the database's
    # write lock, held until commit; other writers wait (busy timeout).


async def busy_workspaces(
    store: Store,
    job_id: str,
    region: str,
    workspace_ids: Sequence[str],
    *,
    claim: bool = True,
    now: float | None = None,
) -> dict[str, str]:
    """WorkSpace id → the other live job it is busy in, for those of ``workspace_ids`` that are.

    With ``claim`` the free ones are claimed for ``job_id`` (for :data:`CLAIM_TTL` seconds) in
    the same transaction, so a concurrent check by another job sees them busy.
    """
    if not workspace_ids:
        return {}
    now = time.time() if now is None else now
    if not await _others_live(store, job_id, now):
        # Alone (the common case): one indexed read, nothing written. A job that becomes live
        # now sees this one's items once their in_flight commit lands, milliseconds from now.
        return {}
    busy: dict[str, str] = {}
    async with store.transaction() as conn:
        await _serialise(conn)
        for start in range(0, len(workspace_ids), _CHUNK):
            chunk = list(workspace_ids[start : start + _CHUNK])
            scopes = {claim_scope(region, ws): ws for ws in chunk}
            await conn.execute(
                quota_holders.delete().where(
                    quota_holders.c.scope.in_(list(scopes)), quota_holders.c.expires_at <= now
                )
            )
            busy.update(await _busy_items(conn, job_id, region, chunk, now))
            claims = await conn.execute(
                sa.select(quota_holders.c.scope, quota_holders.c.holder).where(
                    quota_holders.c.scope.in_(list(scopes)), quota_holders.c.holder != job_id
                )
            )
            for scope, holder in claims:
                busy.setdefault(scopes[scope], str(holder))
            if claim:
                free = [scope for scope, ws in scopes.items() if ws not in busy]
                await _claim(conn, job_id, free, now + CLAIM_TTL)
    return busy


def _live_jobs(job_id: str, now: float) -> sa.Select[tuple[str]]:
    return sa.select(jobs.c.id).where(
        jobs.c.status == JobStatus.RUNNING.value,
        jobs.c.lease_expires_at > now,
        jobs.c.id != job_id,
    )


#: ``_live_jobs(…).limit(1)``, asked before every batch: one statement built once (SQLAlchemy
#: then finds its compiled form without working out a cache key from a new query each time).
_ANY_OTHER_LIVE = (
    sa.select(jobs.c.id)
    .where(
        jobs.c.status == JobStatus.RUNNING.value,
        jobs.c.lease_expires_at > sa.bindparam("now"),
        jobs.c.id != sa.bindparam("job_id"),
    )
    .limit(1)
)


async def _others_live(store: Store, job_id: str, now: float) -> bool:
    async with store.reading() as conn:
        row = (await conn.execute(_ANY_OTHER_LIVE, {"now": now, "job_id": job_id})).first()
    return row is not None


async def _busy_items(
    conn: AsyncConnection, job_id: str, region: str, chunk: list[str], now: float
) -> dict[str, str]:
    live = _live_jobs(job_id, now).scalar_subquery()
    rows = await conn.execute(
        sa.select(items.c.workspace_id, items.c.job_id).where(
            items.c.job_id.in_(live),
            items.c.region == region,
            items.c.workspace_id.in_(chunk),
            items.c.state.in_(_BUSY_STATES),
        )
    )
    return {str(ws): str(other) for ws, other in rows}


async def _claim(conn: AsyncConnection, holder: str, scopes: list[str], expires: float) -> None:
    if not scopes:
        return
    await conn.execute(
        quota_holders.update()
        .where(quota_holders.c.scope.in_(scopes), quota_holders.c.holder == holder)
        .values(expires_at=expires)
    )
    held = await conn.execute(
        sa.select(quota_holders.c.scope).where(
            quota_holders.c.scope.in_(scopes), quota_holders.c.holder == holder
        )
    )
    have = {str(scope) for (scope,) in held}
    new = [{"scope": s, "holder": holder, "expires_at": expires} for s in scopes if s not in have]
    if new:
        await conn.execute(quota_holders.insert(), new)


async def renew_quota_holder(
    store: Store, scope: str, holder: str, ttl: float, *, now: float | None = None
) -> int:
    """Register (or renew) ``holder`` of ``scope`` until ``now + ttl``; the live holders' count.

    Rows long expired (runners that died) are swept on the way.
    """
    now = time.time() if now is None else now
    async with store.transaction() as conn:
        if conn.dialect.name == "postgresql":
            # Runners registering at the same instant see each other (SQLite: the DELETE below
            # takes the write lock first).
            await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(scope))))
        await conn.execute(
            quota_holders.delete().where(
                quota_holders.c.scope == scope, quota_holders.c.expires_at <= now
            )
        )
        renewed = await conn.execute(
            quota_holders.update()
            .where(quota_holders.c.scope == scope, quota_holders.c.holder == holder)
            .values(expires_at=now + ttl)
        )
        if renewed.rowcount != 1:
            await conn.execute(
                quota_holders.insert().values(scope=scope, holder=holder, expires_at=now + ttl)
            )
        count = await conn.execute(
            sa.select(sa.func.count())
            .select_from(quota_holders)
            .where(quota_holders.c.scope == scope, quota_holders.c.expires_at > now)
        )
        return int(count.scalar_one())


async def release_quota_holder(store: Store, scope: str, holder: str) -> None:
    """``holder`` no longer spends ``scope``'s quota: the others take its share at once."""
    async with store.transaction() as conn:
        await conn.execute(
            quota_holders.delete().where(
                quota_holders.c.scope == scope, quota_holders.c.holder == holder
            )
        )
