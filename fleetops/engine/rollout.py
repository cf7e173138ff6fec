"""Rolling out a new image over a bundle's WorkSpaces, in every scope of the job (an account in
a region: each with its own bundle and image, :func:`~fleetops.catalogue.recipes.rollout_scopes`).

UpdateWorkspaceBundle does not update existing WorkSpaces: they are rebuilt. So, in each scope,
a rollout is (1) the image checked (DescribeWorkspaceImages: there, AVAILABLE) and the bundle's
current image recorded (DescribeWorkspaceBundles), (2) the bundle pointed at the new image
(UpdateWorkspaceBundle), (3) the bundle's WorkSpaces rebuilt as a rebuild job would
(:class:`ScopeRun`: waves, each started only once the previous one is verified within the
error budget; the connected and snapshot guards of the plan). The scopes run side by side and
meet twice (:class:`RolloutLedger`): no bundle is updated until every scope has checked its
image and bundle (a scope that finds a problem fails the job, and no bundle anywhere is
touched); and a rollback waits for every scope to stop rebuilding. The error budget is the
job's: once it is exceeded no scope starts another batch and, with ``rollback_on_abort``, (4)
every scope whose bundle was updated points it at its own recorded image again.

What was done is kept in the job's params (``rollout``: ``scopes`` → each scope's
``old_image_id``, ``bundle_updated``, ``rolled_back``; ``rolling_back`` for the job), each fact
written before the call it allows, so a run killed at any instant never updates a bundle twice:
on resume, a scope with a recorded old image and no ``bundle_updated`` checks the bundle
(DescribeWorkspaceBundles) before UpdateWorkspaceBundle is sent; a job whose rollback began
rebuilds nothing more and finishes the rollback. (A rollout recorded with one scope's facts at
the top of ``rollout`` reads them as its one scope's.)
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import anyio

from fleetops.catalogue.recipes import (
    bundle_problem,
    image_problem,
    rollout_scopes,
    scope_keys,
    scoped_value,
)
from fleetops.engine.calls import AuditedCall
from fleetops.engine.context import RunContext
from fleetops.engine.scope import ScopeRun
from fleetops.errors import AwsError, UsageError
from fleetops.records import ROLLOUT_RECORD

__all__ = ["RolloutLedger", "RolloutRun", "rollout_state"]

log = logging.getLogger(__name__)

#: The per-scope facts a rollout records.
_FACTS = ("old_image_id", "bundle_updated", "rolled_back")


def _scope_facts(state: Mapping[str, Any], scope: str, only: bool) -> dict[str, Any]:
    """One scope's recorded facts (``only``: the job has one scope, which may have kept them at
    the top of ``rollout``)."""
    scopes = state.get("scopes") or {}
    if scope in scopes:
        return dict(scopes[scope])
    if only and not scopes:
        return {key: state[key] for key in _FACTS if key in state}
    return {}


def rollout_state(
    params: Mapping[str, Any], regions: Sequence[str], accounts: Sequence[str] | None = None
) -> dict[str, Any]:
    """What ``jobs show --json`` says of a rollout job (``{}`` for any other job):
    ``bundle_id``, ``old_image_id``, ``new_image_id``, ``rolled_back``; over several scopes,
    also ``scopes`` (each one's ``account``, ``region`` and the same four), the four at the top
    then being the value every scope shares (else null), and ``rolled_back`` true if any scope
    was rolled back."""
    if "bundle" not in params:
        return {}
    state = dict(params.get(ROLLOUT_RECORD) or {})
    keys = scope_keys(regions, accounts)
    rows = []
    for key in keys:
        facts = _scope_facts(state, key, len(keys) == 1)
        account, _, region = key.rpartition("/")
        rows.append(
            {
                "account": account or None,
                "region": region,
                "bundle_id": scoped_value(params.get("bundle"), key),
                "old_image_id": facts.get("old_image_id"),
                "new_image_id": scoped_value(params.get("image"), key),
                "rolled_back": bool(facts.get("rolled_back")),
            }
        )
    if len(rows) == 1:
        return {k: v for k, v in rows[0].items() if k not in ("account", "region")}

    def shared(field: str) -> Any:
        values = {row[field] for row in rows}
        return values.pop() if len(values) == 1 else None

    return {
        "bundle_id": shared("bundle_id"),
        "old_image_id": shared("old_image_id"),
        "new_image_id": shared("new_image_id"),
        "rolled_back": any(row["rolled_back"] for row in rows),
        "scopes": rows,
    }


class _Meeting:
    """Where the scopes of one run wait for each other: open once every one has arrived (a
    scope that fails on its way arrives all the same)."""

    def __init__(self, parties: int) -> None:
        self._left = parties
        self._open = anyio.Event()
        if parties <= 0:
            self._open.set()

    def arrive(self) -> None:
        self._left -= 1
        if self._left <= 0:
            self._open.set()

    async def wait(self) -> None:
        await self._open.wait()


class RolloutLedger:
    """What the scopes of one rollout run share: the facts in the job's params (each written
    under one lock: read, merged and written back while the other scopes wait), and the two
    meetings (every scope checked before any bundle is updated; every scope stopped before any
    rollback)."""

    def __init__(self, ctx: RunContext, scopes: Sequence[str]) -> None:
        self.ctx = ctx
        self.scopes = list(scopes)
        self._lock = anyio.Lock()
        self.checked = _Meeting(len(self.scopes))
        self.stopped = _Meeting(len(self.scopes))
        #: each scope's (bundle, image); a job recorded without them says why (``problem``)
        self.ids: dict[str, tuple[str, str]] = {}
        self.problem: str | None = None
        try:
            self.ids = rollout_scopes(ctx.params, self.scopes)
        except UsageError as exc:
            self.problem = str(exc)

    def _state(self) -> dict[str, Any]:
        return dict(self.ctx.job.params.get(ROLLOUT_RECORD) or {})

    def facts(self, scope: str) -> dict[str, Any]:
        return _scope_facts(self._state(), scope, len(self.scopes) == 1)

    @property
    def rolling_back(self) -> bool:
        """Did the job's rollback begin (an earlier run's included)?"""
        state = self._state()
        return bool(state.get("rolling_back") or state.get("rolled_back"))

    async def record(self, scope: str | None, **facts: Any) -> None:
        """Write facts of ``scope`` (None: of the job) into the job's params, durably."""
        async with self._lock:
            store = self.ctx.store
            job = await store.get_job(self.ctx.job.id)
            params = dict(job.params)
            state = dict(params.get(ROLLOUT_RECORD) or {})
            if scope is None:
                state.update(facts)
            else:
                scopes = dict(state.get("scopes") or {})
                mine = _scope_facts(state, scope, len(self.scopes) == 1)
                scopes[scope] = {**mine, **facts}
                state["scopes"] = scopes
                for key in _FACTS:  # one scope's facts at the top: now under its scope
                    state.pop(key, None)
            params[ROLLOUT_RECORD] = state
            await store.update_job(job.id, params=params)
            self.ctx.job = await store.get_job(job.id)


class RolloutRun:
    """The image check, the bundle update, the rebuilds and the rollback of one scope."""

    def __init__(
        self, ctx: RunContext, scope_run: ScopeRun, call: AuditedCall, ledger: RolloutLedger
    ) -> None:
        self.ctx = ctx
        self.scope_run = scope_run
        self.call = call
        self.ledger = ledger
        self.scope = scope_run.scope.key
        self.bundle, self.image = ledger.ids.get(self.scope, ("", ""))

    async def _bundle_image(self) -> str:
        answer = await self.call("DescribeWorkspaceBundles", [], BundleIds=[self.bundle])
        problem = bundle_problem(answer, self.bundle, self.scope)
        if problem is not None:
            error = AwsError("ResourceNotFoundException", problem)
            error.operation = "DescribeWorkspaceBundles"
            raise error
        bundle = next(b for b in answer["Bundles"] if b.get("BundleId") == self.bundle)
        return str(bundle.get("ImageId") or "")

    async def _point(self, image: str) -> None:
        await self.call(
            "UpdateWorkspaceBundle", [], BundleId=self.bundle, ImageId=image, idempotent=True
        )

    async def _check(self) -> str | None:
        """Before the bundle is updated: the image there and AVAILABLE, the bundle's current
        image read (and recorded the first time). Returns it (None: already updated)."""
        if self.ledger.problem is not None:
            self.ctx.fail(self.ledger.problem)
            return None
        facts = self.ledger.facts(self.scope)
        if facts.get("bundle_updated") or self.ledger.rolling_back:
            return None
        answer = await self.call("DescribeWorkspaceImages", [], ImageIds=[self.image])
        problem = image_problem(answer, self.image, self.scope)
        if problem is not None:
            self.ctx.fail(f"in {self.scope}: {problem}")
            return None
        current = await self._bundle_image()
        if "old_image_id" not in facts:
            await self.ledger.record(self.scope, old_image_id=current)
        return current

    async def _update(self, current: str) -> None:
        if current != self.image:
            log.info("bundle %s in %s: %s -> %s", self.bundle, self.scope, current, self.image)
            await self._point(self.image)
        await self.ledger.record(self.scope, bundle_updated=True)

    async def run(self, *, redo_in_doubt: bool) -> None:
        checked = stopped = False
        try:
            current = await self._check()
            checked = True
            self.ledger.checked.arrive()
            await self.ledger.checked.wait()  # no bundle is updated before every scope checked
            if self.ledger.rolling_back:
                log.info("rollout in %s was rolled back: nothing more is rebuilt", self.scope)
                self.ctx.aborted = True  # it stays the aborted job it was
            elif not self.ctx.halted():
                if current is not None:
                    await self._update(current)
                if self.ledger.facts(self.scope).get("bundle_updated"):
                    await self.scope_run.reconcile(redo_in_doubt=redo_in_doubt)
                    await self.scope_run.execute()
            stopped = True
            self.ledger.stopped.arrive()
            await self.ledger.stopped.wait()  # a rollback once every scope stopped rebuilding
            if self.ctx.aborted and self.ctx.params.get("rollback_on_abort"):
                await self._roll_back()
        finally:
            if not checked:
                self.ledger.checked.arrive()
            if not stopped:
                self.ledger.stopped.arrive()

    async def _roll_back(self) -> None:
        """The job's budget was exceeded: this scope's bundle, if it was updated, points at
        its recorded image again (the job's rollback recorded first)."""
        if not self.ledger.rolling_back:
            await self.ledger.record(None, rolling_back=True)
        facts = self.ledger.facts(self.scope)
        if not facts.get("bundle_updated") or facts.get("rolled_back"):
            return
        old = str(facts.get("old_image_id") or "")
        if old and old != self.image:
            log.info("rollout aborted: bundle %s in %s back to %s", self.bundle, self.scope, old)
            await self._point(old)
        await self.ledger.record(self.scope, rolled_back=True)
