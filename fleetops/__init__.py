"""fleetops: an async fleet operations engine for Amazon WorkSpaces."""

from __future__ import annotations

from fleetops.errors import (
    AwsError,
    CredentialsError,
    FleetOpsError,
    Interrupted,
    JobFileError,
    LeaseHeldError,
    NotFoundError,
    StoreError,
    TransientAwsError,
    UsageError,
)

__version__ = "0.1.0"

__all__ = [
    "AwsError",
    "CredentialsError",
    "FleetOpsError",
    "Interrupted",
    "JobFileError",
    "LeaseHeldError",
    "NotFoundError",
    "StoreError",
    "TransientAwsError",
    "UsageError",
    "__version__",
]
