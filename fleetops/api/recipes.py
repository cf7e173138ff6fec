"""The façade's side of the recipes: the steps of a recipe's items as the history shows them,
and a rollout's image and bundle checked before anything is written."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fleetops.api.runs import spec_clients
from fleetops.errors import UsageError

if TYPE_CHECKING:
    from fleetops.catalogue.specs import JobSpec
    from fleetops.records import ItemRecord, JobRecord, StepRecord
    from fleetops.report.documents import StepsOf
    from fleetops.store.pgreader import PostgresReader
    from fleetops.store.readonly import Reader

    #: A reader of the history (sqlite3 or psycopg, no SQLAlchemy): see :func:`read_history`.
    History = Reader | PostgresReader


def step_counts(reader: History, job: JobRecord) -> dict[str, dict[str, int]]:
    """A recipe's job: action of a step → outcome (an open step: its item's state) → items, in
    ladder order; empty for a job of one action (which has no steps to count)."""
    from fleetops.catalogue.recipes import RECIPES

    if job.action not in RECIPES:
        return {}
    from fleetops.store.steps_read import step_counts as counts

    return counts(reader, job.id)


def steps_reader(reader: History, job: JobRecord) -> StepsOf | None:
    """For a recipe's job, what gives the steps of a page of its items (``jobs items``, ``jobs
    export``); None for a job of one action."""
    from fleetops.catalogue.recipes import RECIPES

    if job.action not in RECIPES:
        return None
    from fleetops.store.steps_read import steps_of

    def of(items: Sequence[ItemRecord]) -> dict[int, list[StepRecord]]:
        return steps_of(reader, job.id, [item.id for item in items])

    return of


def rollout_of(job: JobRecord) -> dict[str, Any]:
    """A rollout job's bundle and images, per scope, as ``jobs show --json`` has them under
    ``"rollout"`` (``{}`` for any other job)."""
    if job.action != "rollout":
        return {}
    from fleetops.engine.rollout import rollout_state

    return rollout_state(job.params, job.regions, job.accounts)


async def check_rollout(spec: JobSpec, *, credentials: tuple[str, str] | None = None) -> None:
    """A rollout's bundle and image in each of the job's scopes (an account in a region), as
    its run checks them: every scope has a bundle and an image, no scope given is one the job
    does not target, each image exists and is AVAILABLE (DescribeWorkspaceImages) and each
    bundle exists (DescribeWorkspaceBundles); else a :class:`UsageError` (exit 2, nothing
    written, no action called). A scope whose account cannot be reached is left to the run (it
    fails there, as for any action). Any other job passes."""
    if spec.action != "rollout":
        return
    from fleetops.catalogue.recipes import (
        bundle_problem,
        image_problem,
        rollout_scopes,
        scope_keys,
    )
    from fleetops.errors import AssumeRoleError

    scopes = rollout_scopes(
        spec.params, scope_keys([c.region for c in spec.connections], spec.accounts)
    )
    async with spec_clients(spec, credentials=credentials, job_id="preflight") as clients:
        for scope, (bundle, image) in scopes.items():
            client = clients[scope]
            if isinstance(getattr(client, "error", None), AssumeRoleError):
                continue
            found = await client.call("DescribeWorkspaceImages", ImageIds=[image])
            problem = image_problem(found.response, image, scope)
            if problem is None:
                found = await client.call("DescribeWorkspaceBundles", BundleIds=[bundle])
                problem = bundle_problem(found.response, bundle, scope)
            if problem is not None:
                raise UsageError(problem)
