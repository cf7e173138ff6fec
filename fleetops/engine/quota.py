"""One account-region quota shared by the runners of one database: the glue between the rate
limiter's share registry (:data:`fleetops.aws.ratelimit.SHARES`) and the store's quota holder
rows (:func:`fleetops.store.coord.renew_quota_holder`).

Each live runner keeps a holder row renewed per scope it spends and spends ``1 / holders`` of
the quota. A store that keeps no holder rows (the in-memory one) has nobody to share with, and
a client without a token bucket (an account whose role was refused) spends no quota: both are
left out, and with nothing left the body runs unshared.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import Protocol, runtime_checkable

from fleetops.aws.ratelimit import SHARES, TokenBucket

__all__ = ["HolderStore", "StoreQuotaHolders", "sharing_quota"]


@runtime_checkable
class HolderStore(Protocol):
    """A store that keeps quota holder rows (:class:`fleetops.store.repo.Store`)."""

    async def renew_quota_holder(self, scope: str, holder: str, ttl: float) -> int:
        """Register or renew ``holder`` of ``scope``; how many live holders (itself included)."""
        ...

    async def release_quota_holder(self, scope: str, holder: str) -> None: ...


@runtime_checkable
class _Metered(Protocol):
    """A client that spends a quota (:class:`fleetops.aws.client.WorkSpacesClient`)."""

    @property
    def bucket(self) -> TokenBucket: ...


class StoreQuotaHolders:
    """The quota holders of :class:`fleetops.aws.ratelimit.QuotaShares`, kept in the store."""

    def __init__(self, store: HolderStore) -> None:
        self.store = store

    async def renew(self, scope: str, holder: str, ttl: float) -> int:
        return await self.store.renew_quota_holder(scope, holder, ttl)

    async def release(self, scope: str, holder: str) -> None:
        await self.store.release_quota_holder(scope, holder)


def sharing_quota(
    store: object, clients: Mapping[str, object]
) -> AbstractAsyncContextManager[None]:
    """For the body's duration, this process shares each client's account-region quota with the
    other live runners of the database (scope key → client)."""
    buckets = {
        scope: client.bucket
        for scope, client in clients.items()
        if isinstance(client, _Metered) and isinstance(client.bucket, TokenBucket)
    }
    if not buckets or not isinstance(store, HolderStore):
        return nullcontext()
    return SHARES.sharing(StoreQuotaHolders(store), buckets)
