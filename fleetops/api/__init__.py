"""The one façade: everything the CLI (and the dashboard) does, usable on its own
(``from fleetops import ...``).

    store = await Store.open("fleet.db")
    spec = build_spec(RunRequest("reboot", selectors={"directory_id": "d-0123456789"},
                                 where=Where(region=("us-east-1",))))
    job = await create_job(store, spec)
    job = await plan_job(store, job.id)        # stored, status planned: review it...
    print(await stored_plan(store, job.id))
    job = await start_job(store, job.id)       # ...then run exactly that plan

``run_job`` plans and runs in one go; ``resume_job`` carries on after a kill; ``retry_job``
records a new job over another's failed items; ``cancel_job``, ``get_job``, ``list_jobs`` and
``job_history`` read and manage the history.

Its rooms: :mod:`~fleetops.api.runs` (record, plan, run, start, resume, retry, dry run),
:mod:`~fleetops.api.history` (the store, the history's reads and documents),
:mod:`~fleetops.api.approvals` (the two-person rule), :mod:`~fleetops.api.recipes` (steps and
rollouts) and :mod:`~fleetops.api.recurring` (schedules, notifications, windows). Every name is
imported on first use (PEP 562): the history commands import this package without loading the
engine, botocore or SQLAlchemy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fleetops.api.approvals import approval_error as approval_error
    from fleetops.api.approvals import approve_job as approve_job
    from fleetops.api.approvals import current_user as current_user
    from fleetops.api.approvals import refuse_unapproved as refuse_unapproved
    from fleetops.api.history import History as History
    from fleetops.api.history import copy_database as copy_database
    from fleetops.api.history import database_target as database_target
    from fleetops.api.history import history_of as history_of
    from fleetops.api.history import is_postgresql as is_postgresql
    from fleetops.api.history import item_documents as item_documents
    from fleetops.api.history import job_document as job_document
    from fleetops.api.history import jobs_document as jobs_document
    from fleetops.api.history import open_store as open_store
    from fleetops.api.history import read_history as read_history
    from fleetops.api.history import report_data as report_data
    from fleetops.api.history import require_database as require_database
    from fleetops.api.history import scope_summaries as scope_summaries
    from fleetops.api.history import unverified_count as unverified_count
    from fleetops.api.history import unverified_counts as unverified_counts
    from fleetops.api.history import write_report as write_report
    from fleetops.api.recipes import check_rollout as check_rollout
    from fleetops.api.recipes import rollout_of as rollout_of
    from fleetops.api.recipes import step_counts as step_counts
    from fleetops.api.recipes import steps_reader as steps_reader
    from fleetops.api.recurring import add_schedule as add_schedule
    from fleetops.api.recurring import check_schedule as check_schedule
    from fleetops.api.recurring import claim_due as claim_due
    from fleetops.api.recurring import notify_end as notify_end
    from fleetops.api.recurring import pause_schedule as pause_schedule
    from fleetops.api.recurring import remove_schedule as remove_schedule
    from fleetops.api.recurring import schedule_job as schedule_job
    from fleetops.api.recurring import schedule_json as schedule_json
    from fleetops.api.recurring import schedules_document as schedules_document
    from fleetops.api.recurring import unstarted_scheduled_jobs as unstarted_scheduled_jobs
    from fleetops.api.recurring import until_window as until_window
    from fleetops.api.runs import DEFAULT_MAX_PLAN_AGE as DEFAULT_MAX_PLAN_AGE
    from fleetops.api.runs import cancel_job as cancel_job
    from fleetops.api.runs import check_configuration as check_configuration
    from fleetops.api.runs import create_job as create_job
    from fleetops.api.runs import dry_run as dry_run
    from fleetops.api.runs import failed_workspaces as failed_workspaces
    from fleetops.api.runs import get_job as get_job
    from fleetops.api.runs import list_jobs as list_jobs
    from fleetops.api.runs import plan_age_error as plan_age_error
    from fleetops.api.runs import plan_job as plan_job
    from fleetops.api.runs import resume_job as resume_job
    from fleetops.api.runs import retry_candidates as retry_candidates
    from fleetops.api.runs import retry_job as retry_job
    from fleetops.api.runs import run_job as run_job
    from fleetops.api.runs import start_job as start_job
    from fleetops.api.runs import startable_plan as startable_plan
    from fleetops.api.runs import stored_plan as stored_plan
    from fleetops.aws.client import Connection as Connection
    from fleetops.catalogue.specs import JobSpec as JobSpec
    from fleetops.catalogue.specs import RunRequest as RunRequest
    from fleetops.catalogue.specs import Where as Where
    from fleetops.catalogue.specs import build_spec as build_spec
    from fleetops.engine.planner import PlanSummary as PlanSummary
    from fleetops.engine.runner import JobRunner as JobRunner
    from fleetops.engine.runner import StopSignal as StopSignal
    from fleetops.records import CancelOutcome as CancelOutcome
    from fleetops.records import CancelResult as CancelResult
    from fleetops.records import JobRecord as JobRecord
    from fleetops.store import Store as Store
    from fleetops.store.history import job_history as job_history

__all__ = [
    "DEFAULT_MAX_PLAN_AGE",
    "JobSpec",
    "RunRequest",
    "Where",
    "add_schedule",
    "approval_error",
    "approve_job",
    "build_spec",
    "cancel_job",
    "check_configuration",
    "check_rollout",
    "check_schedule",
    "claim_due",
    "copy_database",
    "create_job",
    "current_user",
    "database_target",
    "dry_run",
    "failed_workspaces",
    "get_job",
    "history_of",
    "is_postgresql",
    "item_documents",
    "job_document",
    "job_history",
    "jobs_document",
    "list_jobs",
    "notify_end",
    "open_store",
    "pause_schedule",
    "plan_age_error",
    "plan_job",
    "read_history",
    "refuse_unapproved",
    "remove_schedule",
    "report_data",
    "require_database",
    "resume_job",
    "retry_candidates",
    "retry_job",
    "rollout_of",
    "run_job",
    "schedule_job",
    "schedule_json",
    "schedules_document",
    "scope_summaries",
    "start_job",
    "startable_plan",
    "step_counts",
    "steps_reader",
    "stored_plan",
    "unstarted_scheduled_jobs",
    "until_window",
    "unverified_count",
    "unverified_counts",
    "write_report",
]

#: Each public name → the module that defines it: this façade's own rooms, and the names it
#: hands on from the rooms below.
_LAZY: dict[str, str] = {
    "CancelOutcome": "fleetops.records",
    "CancelResult": "fleetops.records",
    "Connection": "fleetops.aws.client",
    "JobSpec": "fleetops.catalogue.specs",
    "PlanSummary": "fleetops.engine.planner",
    "RunRequest": "fleetops.catalogue.specs",
    "StopSignal": "fleetops.engine.runner",
    "Store": "fleetops.store",
    "Where": "fleetops.catalogue.specs",
    "build_spec": "fleetops.catalogue.specs",
    "job_history": "fleetops.store.history",
    "DEFAULT_MAX_PLAN_AGE": "fleetops.api.runs",
    "MAX_APPROVAL_COMMENT": "fleetops.api.approvals",
    "add_schedule": "fleetops.api.recurring",
    "approval_error": "fleetops.api.approvals",
    "approve_job": "fleetops.api.approvals",
    "cancel_job": "fleetops.api.runs",
    "check_configuration": "fleetops.api.runs",
    "check_rollout": "fleetops.api.recipes",
    "rollout_of": "fleetops.api.recipes",
    "check_schedule": "fleetops.api.recurring",
    "claim_due": "fleetops.api.recurring",
    "copy_database": "fleetops.api.history",
    "create_job": "fleetops.api.runs",
    "current_user": "fleetops.api.approvals",
    "database_target": "fleetops.api.history",
    "dry_run": "fleetops.api.runs",
    "failed_workspaces": "fleetops.api.runs",
    "get_job": "fleetops.api.runs",
    "history_of": "fleetops.api.history",
    "is_postgresql": "fleetops.api.history",
    "item_documents": "fleetops.api.history",
    "job_connections": "fleetops.api.runs",
    "job_document": "fleetops.api.history",
    "jobs_document": "fleetops.api.history",
    "list_jobs": "fleetops.api.runs",
    "notify_end": "fleetops.api.recurring",
    "open_clients": "fleetops.api.runs",
    "open_store": "fleetops.api.history",
    "pause_schedule": "fleetops.api.recurring",
    "plan_age_error": "fleetops.api.runs",
    "plan_job": "fleetops.api.runs",
    "read_history": "fleetops.api.history",
    "refuse_unapproved": "fleetops.api.approvals",
    "remove_schedule": "fleetops.api.recurring",
    "report_data": "fleetops.api.history",
    "require_database": "fleetops.api.history",
    "resume_job": "fleetops.api.runs",
    "retry_candidates": "fleetops.api.runs",
    "retry_job": "fleetops.api.runs",
    "run_job": "fleetops.api.runs",
    "schedule_job": "fleetops.api.recurring",
    "schedule_json": "fleetops.api.recurring",
    "schedules_document": "fleetops.api.recurring",
    "scope_summaries": "fleetops.api.history",
    "start_job": "fleetops.api.runs",
    "startable_plan": "fleetops.api.runs",
    "step_counts": "fleetops.api.recipes",
    "steps_reader": "fleetops.api.recipes",
    "stored_plan": "fleetops.api.runs",
    "unstarted_scheduled_jobs": "fleetops.api.recurring",
    "until_window": "fleetops.api.recurring",
    "unverified_count": "fleetops.api.history",
    "unverified_counts": "fleetops.api.history",
    "write_report": "fleetops.api.history",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'fleetops.api' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once imported, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
