"""Persistence: the only package that imports SQLAlchemy."""

from __future__ import annotations

from fleetops.store.records import ItemRecord, JobRecord, iso
from fleetops.store.repo import (
    EventRow,
    GroupWriter,
    ItemUpdate,
    NewJob,
    Store,
    lease_owner_id,
    new_job_id,
)

__all__ = [
    "EventRow",
    "GroupWriter",
    "ItemRecord",
    "ItemUpdate",
    "JobRecord",
    "NewJob",
    "Store",
    "iso",
    "lease_owner_id",
    "new_job_id",
]
