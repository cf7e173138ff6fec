"""The façade's side of the recipes: the steps of a recipe's items as the history shows them,
and a rollout's image and bundle checked before anything is written."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from fleetops.api.runs import open_clients
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


async def check_rollout(spec: JobSpec, *, credentials: tuple[str, str] | None = None) -> None:
    """A rollout's new image exists and is AVAILABLE (DescribeWorkspaceImages) and its bundle
    exists (DescribeWorkspaceBundles), in the job's one scope; else a :class:`UsageError`
    (exit 2, nothing written). Any other job passes."""
    if spec.action != "rollout":
        return
    if spec.more_regions or spec.accounts:
        raise UsageError("rollout takes one account and region (a bundle is one region's)")
    image, bundle = str(spec.params["image"]), str(spec.params["bundle"])
    async with open_clients(
        list(spec.connections), spec.options, credentials=credentials, job_id="preflight"
    ) as clients:
        client = next(iter(clients.values()))
        found = (await client.call("DescribeWorkspaceImages", ImageIds=[image])).response
        images = found.get("Images") or []
        if not images:
            raise UsageError(f"image {image} not found in {spec.connection.region}")
        state = images[0].get("State")
        if state != "AVAILABLE":
            raise UsageError(f"image {image} is {state}, not AVAILABLE: nothing was rolled out")
        found = (await client.call("DescribeWorkspaceBundles", BundleIds=[bundle])).response
        if not found.get("Bundles"):
            raise UsageError(f"bundle {bundle} not found in {spec.connection.region}")
