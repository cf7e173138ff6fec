"""The exception tree of fleetops.

Every error fleetops raises on purpose derives from :class:`FleetOpsError`; the CLI catches the
root once and prints one line. Errors of the layers below (botocore, SQLAlchemy, YAML, pydantic)
are translated at the edge with ``raise ... from exc``.

    FleetOpsError
    ├── UsageError            bad input from the operator (exit 2, nothing written)
    │   ├── JobFileError      a job file that does not parse or validate
    │   ├── ConfigurationError  no region, no credentials, an unknown profile
    │   └── AwaitsApprovalError a stored plan of the two-person rule, not approved yet
    ├── NotFoundError         a job id that does not exist (exit 2)
    ├── StoreError            the database cannot be used (locked, read-only, full, foreign, newer)
    │   ├── StoreConfigError  the --db given cannot be used: bad URL, unreachable server, unknown
    │   │                     database, schema missing or newer (also a UsageError: exit 2)
    │   └── LeaseHeldError    another runner holds the job
    ├── AwsError              an API call failed for good (code, message, request id)
    │   ├── CredentialsError  credentials missing, expired or rejected: the job pauses, resumable
    │   ├── AssumeRoleError   an account's role cannot be assumed: that account's items fail
    │   └── TransientAwsError throttling, 5xx, timeouts, connection errors: retried
    ├── Interrupted           Ctrl-C / SIGTERM before anything was recorded (exit 130)
    └── WindowClosed          the maintenance window closed before a request went out
"""

from __future__ import annotations

__all__ = [
    "AssumeRoleError",
    "AwaitsApprovalError",
    "AwsError",
    "ConfigurationError",
    "CredentialsError",
    "FleetOpsError",
    "Interrupted",
    "JobFileError",
    "LeaseHeldError",
    "NotFoundError",
    "StoreConfigError",
    "StoreError",
    "TransientAwsError",
    "UsageError",
    "WindowClosed",
]


class FleetOpsError(Exception):
    """Root of every error fleetops raises on purpose."""

    exit_code: int = 1


class UsageError(FleetOpsError):
    """Bad input: a flag, a selector, an ids file, a job file. Nothing was written."""

    exit_code = 2


class JobFileError(UsageError):
    """A job file that cannot be read, parsed or validated."""


class ConfigurationError(UsageError):
    """The AWS configuration cannot be used: no region, no credentials, an unknown profile."""


class AwaitsApprovalError(UsageError):
    """A stored plan that needs an approval by someone other than its planner, and has none:
    nothing of it runs (exit 2)."""


class NotFoundError(FleetOpsError):
    """A job (or item) that does not exist."""

    exit_code = 2


class StoreError(FleetOpsError):
    """The database cannot be used as asked."""

    exit_code = 1


class StoreConfigError(UsageError, StoreError):
    """The database named by ``--db`` / ``FLEETOPS_DB`` cannot be used as given: a malformed or
    unsupported URL, a server that does not answer, a database that does not exist, a database
    without the fleetops schema where a command only reads, or a schema newer than this fleetops.
    Nothing was written."""

    exit_code = 2


class LeaseHeldError(StoreError):
    """Another live runner holds the job's lease."""

    exit_code = 1


class AwsError(FleetOpsError):
    """An API call that failed for good."""

    def __init__(self, code: str, message: str, request_id: str | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.request_id = request_id
        self.operation: str | None = None  # the API operation that failed, once known


class TransientAwsError(AwsError):
    """Throttling, 5xx, time-outs and connection errors: worth retrying."""


class CredentialsError(AwsError):
    """Credentials missing, expired or rejected: the job pauses as interrupted."""


class AssumeRoleError(AwsError):
    """A role that cannot be assumed (AccessDenied, no such role): its account's items fail,
    the other accounts go on."""


class Interrupted(FleetOpsError):
    """Asked to stop (Ctrl-C, SIGTERM) before there was anything to record: a plan-only run
    stopped half-way (a run that stops is recorded ``interrupted`` instead)."""

    exit_code = 130


class WindowClosed(FleetOpsError):
    """The job's maintenance window closed before the request went out: nothing was sent (the
    items go back to pending for the next opening)."""
