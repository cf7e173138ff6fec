"""Persistence: the only package that imports SQLAlchemy, psycopg and sqlite3.

Importing ``fleetops.store`` loads no database library: the record types it names are the
base's (:mod:`fleetops.records`), and the repository's names (:class:`Store`,
:class:`GroupWriter`, ...) are imported on first use (PEP 562), so that
``fleetops.store.readonly`` (the standard-library reader of the history commands), the
protocol and the in-memory store load without SQLAlchemy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from fleetops.records import EventRow, ItemRecord, ItemUpdate, JobRecord, NewJob, iso, new_job_id

if TYPE_CHECKING:
    from fleetops.store.repo import GroupWriter, Store, lease_owner_id

_FROM_REPO = frozenset({"GroupWriter", "Store", "lease_owner_id"})


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
