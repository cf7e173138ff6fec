"""Rolling out a new image over a bundle's WorkSpaces, in one scope (an account in a region).

UpdateWorkspaceBundle does not update existing WorkSpaces: they are rebuilt. So a rollout is
(1) the bundle's current image recorded (DescribeWorkspaceBundles), (2) the bundle pointed at
the new image (UpdateWorkspaceBundle), (3) the bundle's WorkSpaces rebuilt as a rebuild job
would (:class:`ScopeRun`: waves, each started only once the previous one is verified within the
error budget; the connected and snapshot guards of the plan), and, aborted with
``rollback_on_abort``, (4) the bundle pointed at the recorded image again — nothing further is
rebuilt (the aborted run sends no new batch).

What was done is kept in the job's params (``rollout``: ``old_image_id``, ``bundle_updated``,
``rolled_back``), each fact written before the next call, so a run killed at any instant never
updates the bundle twice: on resume, a recorded old image without ``bundle_updated`` is
checked against the bundle (DescribeWorkspaceBundles) before UpdateWorkspaceBundle is sent.
"""

from __future__ import annotations

import logging
from typing import Any

from fleetops.engine.calls import AuditedCall
from fleetops.engine.context import RunContext
from fleetops.engine.scope import ScopeRun
from fleetops.errors import AwsError

__all__ = ["RolloutRun", "rollout_state"]

log = logging.getLogger(__name__)


def rollout_state(params: dict[str, Any] | Any) -> dict[str, Any]:
    """What ``jobs show --json`` says of a rollout job (``{}`` for any other job)."""
    state = dict(params.get("rollout") or {})
    if "bundle" not in params:
        return {}
    return {
        "bundle_id": params.get("bundle"),
        "old_image_id": state.get("old_image_id"),
        "new_image_id": params.get("image"),
        "rolled_back": bool(state.get("rolled_back")),
    }


class RolloutRun:
    """The bundle update, the rebuilds and the rollback of one scope."""

    def __init__(self, ctx: RunContext, scope_run: ScopeRun, call: AuditedCall) -> None:
        self.ctx = ctx
        self.scope_run = scope_run
        self.call = call
        self.bundle = str(ctx.params["bundle"])
        self.image = str(ctx.params["image"])

    async def _record(self, **facts: Any) -> None:
        job = await self.ctx.store.get_job(self.ctx.job.id)
        params = dict(job.params)
        params["rollout"] = {**dict(params.get("rollout") or {}), **facts}
        await self.ctx.store.update_job(job.id, params=params)
        self.ctx.job = await self.ctx.store.get_job(job.id)

    def _state(self) -> dict[str, Any]:
        return dict(self.ctx.job.params.get("rollout") or {})

    async def _bundle_image(self) -> str:
        answer = await self.call("DescribeWorkspaceBundles", [], BundleIds=[self.bundle])
        bundles = answer.get("Bundles") or []
        if not bundles:
            error = AwsError("ResourceNotFoundException", f"bundle {self.bundle} not found")
            error.operation = "DescribeWorkspaceBundles"
            raise error
        return str(bundles[0].get("ImageId") or "")

    async def _point(self, image: str) -> None:
        await self.call(
            "UpdateWorkspaceBundle", [], BundleId=self.bundle, ImageId=image, idempotent=True
        )

    async def run(self, *, redo_in_doubt: bool) -> None:
        state = self._state()
        if state.get("rolled_back"):
            log.info("rollout of %s was rolled back: nothing more is rebuilt", self.bundle)
            self.ctx.aborted = True  # it stays the aborted job it was
            return
        if not state.get("bundle_updated"):
            current = await self._bundle_image()
            if "old_image_id" not in state:
                await self._record(old_image_id=current)
            if current != self.image:
                log.info("bundle %s: %s -> %s", self.bundle, current, self.image)
                await self._point(self.image)
            await self._record(bundle_updated=True)
        await self.scope_run.reconcile(redo_in_doubt=redo_in_doubt)
        await self.scope_run.execute()
        if self.ctx.aborted and self.ctx.params.get("rollback_on_abort"):
            old = str(self._state().get("old_image_id") or "")
            if old and old != self.image:
                log.info("rollout aborted: bundle %s back to %s", self.bundle, old)
                await self._point(old)
            await self._record(rolled_back=True)
