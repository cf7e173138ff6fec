"""fleetops: an async fleet operations engine for Amazon WorkSpaces.

The public API, in one place::

    from fleetops import RunRequest, Store, Where, build_spec, create_job, plan_job, start_job

Everything named in ``__all__`` is imported on first use (PEP 562), so ``import fleetops`` costs
almost nothing and a command that reads the history never loads the engine.
"""

import importlib
import typing

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

if typing.TYPE_CHECKING:
    from fleetops.api import (
        DEFAULT_MAX_PLAN_AGE,
        cancel_job,
        create_job,
        dry_run,
        failed_workspaces,
        get_job,
        job_history,
        list_jobs,
        plan_job,
        resume_job,
        retry_job,
        run_job,
        start_job,
        stored_plan,
    )
    from fleetops.aws.client import Connection
    from fleetops.catalogue.actions import ActionSpec, get_action
    from fleetops.catalogue.options import JobOptions
    from fleetops.catalogue.specs import JobSpec, RunRequest, Where, build_spec
    from fleetops.catalogue.targets import Targets
    from fleetops.engine.planner import PlanSummary
    from fleetops.engine.runner import StopSignal
    from fleetops.states import ItemState, JobStatus, exit_code_for
    from fleetops.store import ItemRecord, JobRecord, Store

__version__ = "0.1.0"

#: Public name → the module that defines it (imported when the name is first used).
_LAZY: dict[str, str] = {
    "ActionSpec": "fleetops.catalogue.actions",
    "Connection": "fleetops.aws.client",
    "DEFAULT_MAX_PLAN_AGE": "fleetops.api",
    "ItemRecord": "fleetops.store",
    "ItemState": "fleetops.states",
    "JobOptions": "fleetops.catalogue.options",
    "JobRecord": "fleetops.store",
    "JobSpec": "fleetops.catalogue.specs",
    "JobStatus": "fleetops.states",
    "PlanSummary": "fleetops.engine.planner",
    "RunRequest": "fleetops.catalogue.specs",
    "StopSignal": "fleetops.engine.runner",
    "Store": "fleetops.store",
    "Targets": "fleetops.catalogue.targets",
    "Where": "fleetops.catalogue.specs",
    "build_spec": "fleetops.catalogue.specs",
    "cancel_job": "fleetops.api",
    "create_job": "fleetops.api",
    "dry_run": "fleetops.api",
    "exit_code_for": "fleetops.states",
    "failed_workspaces": "fleetops.api",
    "get_action": "fleetops.catalogue.actions",
    "get_job": "fleetops.api",
    "job_history": "fleetops.api",
    "list_jobs": "fleetops.api",
    "plan_job": "fleetops.api",
    "resume_job": "fleetops.api",
    "retry_job": "fleetops.api",
    "run_job": "fleetops.api",
    "start_job": "fleetops.api",
    "stored_plan": "fleetops.api",
}

__all__ = [
    "DEFAULT_MAX_PLAN_AGE",
    "ActionSpec",
    "AwsError",
    "Connection",
    "CredentialsError",
    "FleetOpsError",
    "Interrupted",
    "ItemRecord",
    "ItemState",
    "JobFileError",
    "JobOptions",
    "JobRecord",
    "JobSpec",
    "JobStatus",
    "LeaseHeldError",
    "NotFoundError",
    "PlanSummary",
    "RunRequest",
    "StopSignal",
    "Store",
    "StoreError",
    "Targets",
    "TransientAwsError",
    "UsageError",
    "Where",
    "__version__",
    "build_spec",
    "cancel_job",
    "create_job",
    "dry_run",
    "exit_code_for",
    "failed_workspaces",
    "get_action",
    "get_job",
    "job_history",
    "list_jobs",
    "plan_job",
    "resume_job",
    "retry_job",
    "run_job",
    "start_job",
    "stored_plan",
]


def __getattr__(name: str) -> typing.Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'fleetops' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once imported, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
