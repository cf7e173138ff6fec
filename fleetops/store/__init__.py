"""Persistence: the only package that imports SQLAlchemy.

The repository's names are imported on first use, so that ``fleetops.records`` and
``fleetops.store.readonly`` (the standard-library reader of the history commands) load without
SQLAlchemy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from fleetops.records import ItemRecord, JobRecord, iso

if TYPE_CHECKING:
    from fleetops.store.repo import (
        EventRow,
        GroupWriter,
        ItemUpdate,
        NewJob,
        Store,
        lease_owner_id,
        new_job_id,
    )

_FROM_REPO = frozenset(
    {"EventRow", "GroupWriter", "ItemUpdate", "NewJob", "Store", "lease_owner_id", "new_job_id"}
)


def __getattr__(name: str) -> Any:
    if name in _FROM_REPO:
        return getattr(importlib.import_module("fleetops.store.repo"), name)
    raise AttributeError(f"module 'fleetops.store' has no attribute {name!r}")

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
