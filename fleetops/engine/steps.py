"""The step model: a job whose items each take several actions in a row (a recipe), one scope.

A recipe (:class:`~fleetops.catalogue.actions.RecipeSpec`) is a ladder of actions of the
catalogue. Every rung runs as a one-action job would, through :class:`ScopeRun` (batches,
quota, retries, verification on evidence, the in-doubt rule of its own action), over the items
that stand on that rung; between rungs, :meth:`StepRun._advance` closes each item's step with
the outcome its item reached and, where :func:`~fleetops.catalogue.recipes.climbs` says so,
opens the next step and puts the item back to ``pending`` for it — in one transaction
(:meth:`EngineStore.write_steps`). A one-action job is the one-step case and never comes here.

Invariants, across kills and resumes:

- a step is opened before anything of it is sent, and an item's open step is the rung its row
  (state, attempts, in_flight) is about: a resume reconciles an ``in_flight`` item with the
  evidence rule of *that* rung's action (a destructive rung without evidence is in doubt,
  never sent again), so no rung is sent twice to one WorkSpace;
- the unfinished items of a scope all stand on one rung: a rung's items move on only once none
  of them is unfinished, so a WorkSpace is never acted on by two rungs at once;
- a step in doubt stays open (its item held ``in_doubt``): ``--redo-in-doubt`` sends that rung
  again, nothing else climbs past it;
- the snapshot-age guard of a destructive rung is checked when a WorkSpace reaches it: too old,
  the step is ``skipped`` with the reason (error code ``SnapshotGuard``) and, once the rung
  ends, the WorkSpace goes on to the next rung (each rung reads its own snapshot list), or ends
  skipped.

The error budget (``--max-errors``) counts the WorkSpaces that end ``failed``: a failure that
climbs (the rung did not heal it and a rung is left) is the ladder's business, not an error; a
failure that ends the climb (on the last rung, or a rung's call refused or not made) is. The
scopes of a run share one :class:`StepBudget`, judged as each failure is committed on any rung,
so the job aborts as soon as the budget is exceeded: no scope starts another batch.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace

from fleetops.aws.retry import RetryPolicy
from fleetops.catalogue.actions import ActionSpec, RecipeSpec
from fleetops.catalogue.options import over_budget
from fleetops.catalogue.recipes import SNAPSHOT_GUARD, climbs, settle_of
from fleetops.engine.calls import AuditedCall
from fleetops.engine.context import RunContext
from fleetops.engine.planner import snapshot_reason
from fleetops.engine.scope import ScopeRun
from fleetops.engine.types import ApiCall, Scope
from fleetops.errors import AwsError, CredentialsError
from fleetops.records import EventRow, ItemRecord, ItemUpdate, StepChange, StepRecord
from fleetops.states import UNFINISHED_ITEM_STATES, ItemState

__all__ = ["StepBudget", "StepRun", "is_recipe"]

log = logging.getLogger(__name__)

#: Item states a step ends in and that move the item on (closed; the next step opened or not).
#: In doubt is not among them: the step stays open for the operator.
_ENDED = frozenset({ItemState.SUCCEEDED, ItemState.FAILED, ItemState.SKIPPED, ItemState.CANCELLED})
#: Item states of a step under way on its rung (in doubt aside: held, not worked on).
_WORKING = UNFINISHED_ITEM_STATES - {ItemState.IN_DOUBT}


def is_recipe(action: ActionSpec) -> bool:
    return isinstance(action, RecipeSpec)


class StepBudget:
    """The error budget of a recipe's run, shared by its scopes: the run's failed items less
    those whose failure climbs (committed failed on a rung that leaves them a higher one, not
    yet moved on). Over ``--max-errors``, the run is aborted."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.climbing: set[int] = set()

    @property
    def ended_failed(self) -> int:
        return max(0, self.ctx.stats.failed - len(self.climbing))

    def check(self) -> None:
        ctx = self.ctx
        if not ctx.aborted and over_budget(self.ended_failed, ctx.budget):
            log.info(
                "job %s: %d WorkSpaces ended failed, over --max-errors %s: aborting",
                ctx.job.id,
                self.ended_failed,
                ctx.options.max_errors,
            )
            ctx.aborted = True


@dataclass
class _RungContext(RunContext):
    """The run's context for one rung of one scope: its action and verification budget, its
    failures judged by the shared :class:`StepBudget` as they are committed, and halted as soon
    as the run is (another scope's abort, the window's close)."""

    parent: RunContext | None = None
    budget_of_steps: StepBudget | None = None
    last: bool = False

    async def commit(self, updates: Sequence[ItemUpdate], events: Sequence[EventRow] = ()) -> None:
        await self.committer.commit(updates, events)
        steps = self.budget_of_steps
        if steps is None:
            return
        for update in updates:
            if update.state is ItemState.FAILED and not self.last:
                if climbs(update.state, update.error_code):
                    steps.climbing.update(update.ids)
        if any(u.ids for u in updates):
            self.check_budget()

    def check_budget(self) -> None:
        if self.budget_of_steps is not None:
            self.budget_of_steps.check()

    def halted(self) -> bool:
        return super().halted() or (self.parent is not None and self.parent.halted())


class StepRun:
    """Runs the steps of a recipe's items in one scope, rung after rung."""

    def __init__(
        self,
        ctx: RunContext,
        scope: Scope,
        call: ApiCall,
        policy: RetryPolicy | None,
        budget: StepBudget | None = None,
    ) -> None:
        if not isinstance(ctx.action, RecipeSpec):
            raise TypeError(f"{ctx.action.name} is not a recipe")
        self.ctx = ctx
        self.scope = scope
        self.call = call
        self.policy = policy
        self.recipe = ctx.action
        self.rungs = ctx.action.rungs(ctx.params)
        self.settle = settle_of(ctx.params)
        self.budget = budget or StepBudget(ctx)
        self._audited = AuditedCall(ctx, scope, call, policy or RetryPolicy())

    # -- reading ---------------------------------------------------------------------------

    async def _view(self) -> tuple[list[ItemRecord], dict[int, StepRecord], set[int]]:
        """This scope's items, their open step, and the items that have any step."""
        store = self.ctx.store
        items: list[ItemRecord] = []
        async for page in store.iter_items(self.ctx.job.id, region=self.scope.region):
            items.extend(item for item in page if item.account == self.scope.account)
        self.ctx.committer.note(items)
        steps = await store.item_steps(self.ctx.job.id, [item.id for item in items])
        mine = {item.id for item in items}
        open_steps = {s.item_id: s for s in steps if s.outcome is None and s.item_id in mine}
        stepped = {s.item_id for s in steps if s.item_id in mine}
        return items, open_steps, stepped

    # -- the run ---------------------------------------------------------------------------

    async def run(self, *, redo_in_doubt: bool) -> None:
        """Climb every item of this scope as far as it needs, or until the run is halted."""
        ran: dict[int, frozenset[int]] = {}
        while not self.ctx.halted():
            items, open_steps, stepped = await self._view()
            self._note_climbing(items, open_steps)
            fresh = [i for i in items if i.state is ItemState.PENDING and i.id not in stepped]
            if fresh:
                await self._open_first(fresh)
                continue
            working = [i for i in items if i.state in _WORKING and i.id in open_steps]
            ended = [i for i in items if i.state in _ENDED and i.id in open_steps]
            if not working:
                if ended:
                    await self._advance(ended, open_steps)
                    continue
                # Only once nothing else works on any rung (a held step is sent again on its
                # own rung, never alongside another rung's items).
                if redo_in_doubt:
                    redo_in_doubt = False
                    if await self._redo_in_doubt(items, open_steps):
                        continue
                return
            rung = min(open_steps[i.id].rung for i in working)
            behind = [i for i in ended if open_steps[i.id].rung < rung]
            if behind:  # a move to the next rung cut short by a kill: finish it first
                await self._advance(behind, open_steps)
                continue
            on_rung = frozenset(i.id for i in working if open_steps[i.id].rung == rung)
            if ran.get(rung) == on_rung:
                log.warning(
                    "%d items of %s still unfinished on %s: stopping this scope",
                    len(on_rung),
                    self.scope,
                    self.rungs[rung].name,
                )
                return
            ran[rung] = on_rung
            await self._run_rung(rung, [i for i in working if i.id in on_rung])
        if self.ctx.aborted and not self.ctx.stop.is_set:
            # Over budget: the steps that ended are closed (a failure that climbs leaves its
            # WorkSpace pending on its next rung, not failed), and no rung runs.
            items, open_steps, _ = await self._view()
            ended = [i for i in items if i.state in _ENDED and i.id in open_steps]
            if ended:
                await self._advance(ended, open_steps)

    def _note_climbing(
        self, items: Sequence[ItemRecord], open_steps: dict[int, StepRecord]
    ) -> None:
        """Items failed on a rung that leaves them a higher one (their step not closed yet, as
        after a kill) are no errors of the budget: they climb once the rung ends."""
        last = len(self.rungs) - 1
        for item in items:
            step = open_steps.get(item.id)
            if item.state is not ItemState.FAILED or step is None or step.rung >= last:
                continue
            if climbs(item.state, item.error_code):
                self.budget.climbing.add(item.id)

    async def _redo_in_doubt(
        self, items: Sequence[ItemRecord], open_steps: dict[int, StepRecord]
    ) -> bool:
        """``--redo-in-doubt``: the step in doubt of each held item is sent again (True: some
        were)."""
        doubt = [i.id for i in items if i.state is ItemState.IN_DOUBT and i.id in open_steps]
        if doubt:
            log.info("%d steps in doubt sent again in %s (--redo-in-doubt)", len(doubt), self.scope)
            await self.ctx.committer.commit(
                [ItemUpdate(ids=doubt, state=ItemState.PENDING, clear_error=True)]
            )
        return bool(doubt)

    async def _open_first(self, items: Sequence[ItemRecord]) -> None:
        """The first step of items that have none yet (nothing of theirs was sent)."""
        now = time.time()
        first = self.rungs[0].name
        await self.ctx.store.write_steps(
            [
                StepChange(
                    item_id=item.id,
                    open=StepRecord(item.id, self.ctx.job.id, 0, first, started_at=now),
                    seen_state=item.seen_state,
                )
                for item in items
            ]
        )

    def _rung_context(self, rung: int) -> RunContext:
        """The run's context for one rung: its action, the settle time as its verification
        budget, its failures judged by the run's :class:`StepBudget` (a failure that climbs is
        no error)."""
        options = replace(self.ctx.options, verify_timeout=self.settle, waves=(), no_wait=False)
        values = {f.name: getattr(self.ctx, f.name) for f in fields(RunContext)}
        values.update(action=self.rungs[rung], options=options, budget=None)
        return _RungContext(
            **values,
            parent=self.ctx,
            budget_of_steps=self.budget,
            last=rung == len(self.rungs) - 1,
        )

    async def _run_rung(self, rung: int, items: Sequence[ItemRecord]) -> None:
        spec = self.rungs[rung]
        self.ctx.stats.step = f"{spec.name} ({rung + 1}/{len(self.rungs)})"
        log.info(
            "step %d/%d of %s in %s: %s over %d WorkSpaces",
            rung + 1,
            len(self.rungs),
            self.recipe.name,
            self.scope,
            spec.name,
            len(items),
        )
        if spec.needs_snapshot and not self.ctx.options.ignore_snapshot_age:
            await self._guard_snapshots(spec, [i for i in items if i.state is ItemState.PENDING])
        ctx = self._rung_context(rung)
        run = ScopeRun(ctx, self.scope, self.call, policy=self.policy)
        try:
            await run.reconcile(redo_in_doubt=False)
            await run.execute()
        finally:
            if ctx.aborted:
                self.ctx.aborted = True
            if ctx.failure is not None:
                self.ctx.fail(ctx.failure)

    async def _guard_snapshots(self, spec: ActionSpec, items: Sequence[ItemRecord]) -> None:
        """The snapshot-age guard of a destructive rung (DescribeWorkspaceSnapshots, one per
        WorkSpace, within the quota): a WorkSpace whose last snapshot is too old is skipped on
        this rung (:data:`SNAPSHOT_GUARD`), and climbs on with the others once the rung ends."""
        now = time.time()
        stale: dict[str, list[int]] = {}
        for item in items:
            if self.ctx.halted():
                break
            try:
                response = await self._audited(
                    "DescribeWorkspaceSnapshots", [item.workspace_id], WorkspaceId=item.workspace_id
                )
            except CredentialsError:
                raise
            except AwsError as exc:
                reason: str | None = f"snapshots could not be read ({exc.code})"
            else:
                reason = snapshot_reason(spec, response, self.ctx.options, now)
            if reason is not None:
                stale.setdefault(f"{spec.name} skipped: {reason}", []).append(item.id)
        if stale:
            await self.ctx.committer.commit(
                [
                    ItemUpdate(
                        ids=ids, state=ItemState.SKIPPED, reason=reason, error_code=SNAPSHOT_GUARD
                    )
                    for reason, ids in stale.items()
                ]
            )
            skipped = sum(len(ids) for ids in stale.values())
            log.info("%d WorkSpaces skip %s in %s (snapshot guard)", skipped, spec.name, self.scope)

    # -- between rungs ---------------------------------------------------------------------

    def _move_on(self, item: ItemRecord, closed: StepRecord, *, climb: bool) -> StepChange:
        """The change that closes ``closed`` and, with ``climb`` and a rung left, opens the
        next; the last step's outcome (and reason) is the item's own."""
        nxt = closed.rung + 1
        if climb and nxt < len(self.rungs):
            return StepChange(
                item_id=item.id,
                close=closed,
                open=StepRecord(
                    item.id, self.ctx.job.id, nxt, self.rungs[nxt].name, started_at=time.time()
                ),
                seen_state=item.last_state or item.seen_state,
            )
        return StepChange(
            item_id=item.id,
            close=closed,
            item_state=ItemState(closed.outcome or item.state),
            reason=closed.reason,
        )

    async def _advance(
        self, items: Sequence[ItemRecord], open_steps: dict[int, StepRecord]
    ) -> None:
        """Close the open step of each ended item with its outcome; climb those that failed."""
        now = time.time()
        changes = []
        for item in items:
            step = open_steps[item.id]
            closed = replace(
                step,
                outcome=item.state.value,
                attempts=item.attempts,
                finished_at=now,
                error_code=item.error_code,
                error_message=item.error_message,
                reason=item.reason,
                last_state=item.last_state,
            )
            climb = climbs(item.state, item.error_code)
            changes.append(self._move_on(item, closed, climb=climb))
        await self._write(changes, {item.id: item for item in items})
        climbed = sum(1 for c in changes if c.open is not None)
        log.info(
            "%d steps ended in %s: %d WorkSpaces climb a rung, %d are done",
            len(changes),
            self.scope,
            climbed,
            len(changes) - climbed,
        )

    async def _write(self, changes: Sequence[StepChange], by_id: dict[int, ItemRecord]) -> None:
        """Write the changes (one transaction), then tell the run's figures the items' new
        states (the commit path's ledger learns them as if committed through it)."""
        await self.ctx.store.write_steps(changes)
        updates: list[ItemUpdate] = []
        for change in changes:
            if change.open is not None:
                updates.append(ItemUpdate(ids=[change.item_id], state=ItemState.PENDING))
            elif (
                change.item_state is not None
                and change.item_state is not by_id[change.item_id].state
            ):
                updates.append(ItemUpdate(ids=[change.item_id], state=change.item_state))
        self.ctx.committer.ledger.apply(updates)
        self.budget.climbing.difference_update(change.item_id for change in changes)
        self.budget.check()
