"""Verification: watching submitted WorkSpaces until the evidence says they reached their end state.

Describe calls are eventually consistent: right after an accepted call DescribeWorkspaces may
show the old state for seconds, and a new WorkSpace may be "not found". So a watch remembers
whether evidence of the action was ever seen (the transitional state, a changed state, the new
properties, the new WorkSpace; see ``ActionSpec.judge_observed``), and the end state without it
means "not started yet": polled again, early, until the evidence comes or waiting longer cannot
help (``ActionSpec.judge_in_time``: succeeded but ``Unverified``, or failed).

DescribeWorkspaces takes 25 ids a call; the quota spent on polling is quota not spent on work,
so polls are timed by :class:`SettleModel` — learned from the real transitions of this job only —
and filled with every item due at about the same time, as long as waiting for them cannot make a
poll miss a transition. A poll that carries WorkSpaces not yet seen in transition is urgent
(:func:`fleetops.aws.ratelimit.urgent`): it takes the next call slot and the next token of the
quota ahead of the submissions waiting, so the first look lands inside the transition even when
the quota is AWS's 2 calls/s and every token is wanted; a later look goes next
(:func:`fleetops.aws.ratelimit.ahead`), still ahead of the submissions: submission spends every
token verification does not need, and the last batches' looks are not held back behind it.
"""

from __future__ import annotations

import heapq
import logging
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio

from fleetops.aws.model import list_member_max
from fleetops.aws.ratelimit import ahead as ahead_calls
from fleetops.aws.ratelimit import last_grant
from fleetops.aws.ratelimit import urgent as urgent_calls
from fleetops.catalogue.actions import GONE, ActionSpec, Verdict
from fleetops.engine.calls import CallSlots
from fleetops.engine.types import CallFn
from fleetops.errors import AwsError, CredentialsError
from fleetops.records import ItemRecord, ItemUpdate
from fleetops.states import UNVERIFIED, ItemState

__all__ = ["DESCRIBE_MAX", "CommitFn", "SettleModel", "Verifier", "Watch"]

log = logging.getLogger(__name__)

DESCRIBE_MAX = list_member_max("DescribeWorkspaces", "WorkspaceIds")

#: Applies item updates durably (one shielded transaction) and counts them.
CommitFn = Callable[[Sequence[ItemUpdate]], Awaitable[None]]

#: Seconds after which a WorkSpace still in its pre-call failure state is judged (see
#: ``Verifier._stuck_reason``).
STUCK_AFTER = 60.0
#: Before any evidence was learned, a batch's first poll comes this soon after its call: soon
#: enough to see a transition that starts at once and lasts a tenth of a second.
FIRST_POLL = 0.05
#: The end state shown with no evidence of the action is accepted (as ``Unverified``) only after
#: this long while no evidence at all has been seen in this job (a lagging Describe can hide a
#: transition for seconds); once some has, after four times the longest delay to evidence seen,
#: and at least :data:`MIN_EVIDENCE_WAIT`.
EVIDENCE_WAIT = 10.0
MIN_EVIDENCE_WAIT = 2.0
#: A new WorkSpace (create, migrate) not found is looked for this long, or four times the
#: longest delay to evidence, before the item fails.
APPEAR_WAIT = 120.0
#: Back-pressure on submission: at most this many DescribeWorkspaces polls' worth of submitted
#: WorkSpaces per poll slot may wait for their first evidence, while evidence shows within
#: :data:`EVIDENCE_REFERENCE` of a call. Beyond it the submitter waits: sending faster than
#: verification can look makes transitions come and go unseen (Unverified).
UNPROVEN_POLLS_PER_SLOT = 1
#: When evidence is learned to show later (a lagging Describe), the limit grows in proportion
#: (Little's law: items awaiting evidence = pace × delay), so that a lag slows verification's
#: verdicts but not submission.
EVIDENCE_REFERENCE = 0.25
#: A call's grant older than this when its answer is read is not this call's (the task made
#: it somewhere else): the watch then counts from when the answer was read.
CALL_AGE_MAX = 60.0
_EPSILON = 1e-6
#: A probing batch whose answer has not come in this long (no settle time known yet) gives
#: its turn to the next.
PROBE_STALE = 30.0
#: The settle time's bounds are close enough when they are this fraction of it apart: the
#: later looks then aim at the upper one.
SETTLE_PRECISION = 0.1


@dataclass(order=True)
class Watch:
    """A submitted item the verifier is waiting on."""

    due: float
    item_id: int = field(compare=False)
    ids: tuple[str, ...] = field(compare=False)  # described to verify it; the first is judged
    seen_state: str | None = field(compare=False)
    submitted_at: float = field(compare=False)  # when the watch began (the verify timeout's start)
    polls: int = field(default=0, compare=False)
    #: When the call was accepted (earlier than ``submitted_at`` for an item submitted by an
    #: earlier run): the evidence and appearance waits count from it.
    called_at: float | None = field(default=None, compare=False)
    #: Evidence of the action was observed since the call (once seen, it stays proven).
    seen: bool = field(default=False, compare=False)
    seen_at: float | None = field(default=None, compare=False)
    #: How long the watch may wait past ``due`` for other ids to fill its poll.
    grace: float = field(default=0.0, compare=False)


class SettleModel:
    """When to poll, learned only from the real transitions observed in this job.

    Two delays after a call are learned: when its first evidence shows (``evidence``: a lagging
    Describe shows a transition late) and when the item is done (``estimate``). Until an item's
    evidence is seen its polls come early and geometrically — the first at ``0.8 × evidence``
    (:data:`FIRST_POLL` before anything is learned), each next one 25 % of the time waited so far
    later — so a transition that stays visible a quarter of the time it took to show is caught;
    once seen, the next poll aims at the learned settle time (50 % steps while none is
    known), then backs off by 25 % of the time waited. An item done without evidence teaches
    nothing: learning from "done at the first poll" without evidence would pull the polls ever
    earlier, for nothing.

    The settle time is learned from bounds, one lesson per batch (the WorkSpaces of one call)
    and look: a look that finds the batch done says it settled *by then* (``settle_hi``, the
    least of those), one that still finds a transition going says it settles *later*
    (``settle_lo``, the greatest). The next batches' later look aims at the upper bound — or,
    while the bounds are far apart, one batch at a time looks half-way between them: that look
    either lowers the upper bound or raises the lower one (a binary search, one extra look per
    step that falls short). Learning the time of a look that found the batch done as its
    settle time instead would raise the estimate at every batch by the time the look waited
    past its due time (for the quota, behind the others), and the last batches' looks, the
    job's end with them, would come seconds late.
    """

    def __init__(
        self, initial: float = FIRST_POLL, floor: float = 0.05, cap: float = 120.0
    ) -> None:
        self.estimate: float | None = None  # seconds from the call to done, evidence seen
        self.evidence: float | None = None  # seconds from the call to the first evidence
        self.evidence_max = 0.0  # the longest of those
        self.window: float | None = None  # seconds from the first evidence to done
        self.initial = initial
        self.floor = floor
        self.cap = cap
        #: Bounds of the settle time (seconds from the call): the shortest seen done, the
        #: longest seen still going.
        self.settle_hi: float | None = None
        self.settle_lo: float | None = None
        self._probe: float | None = None  # the call time of the batch probing between them
        self._probe_at: float | None = None  # the delay its look aims at (None: geometric)

    def first_delay(self) -> float:
        if self.evidence is None:
            return self.initial
        return max(self.floor, 0.8 * self.evidence)

    def next_delay(self, watch: Watch, now: float) -> float:
        waited = now - watch.submitted_at
        aim = self._aim(watch, now) if watch.seen else None
        if aim is not None and waited < aim:
            return max(self.floor, aim - waited)
        # Geometric: 25 % of what it has taken so far; 50 % while the first items of the job,
        # proven already, head for a settle time nobody knows yet (fewer polls, a later end) —
        # one batch at a time: the others wait for its answer, and are aimed at the settle
        # time once it is learned (Verifier.reaim).
        step = 0.25
        if watch.seen and self.estimate is None:
            if not self._probing(watch, now):
                return PROBE_STALE
            step = 0.5
        return min(self.cap, max(self.floor, waited * step))

    def grace(self, delay: float) -> float:
        """How long a poll due ``delay`` seconds after the last look may wait for other ids: a
        quarter of that delay, and at most half the time a transition was seen to stay visible."""
        grace = 0.25 * delay
        if self.window is not None:
            grace = min(grace, 0.5 * self.window)
        return grace

    def saw_evidence(self, watch: Watch, now: float) -> None:
        """The first evidence of ``watch``'s action, seen by the poll sent at ``now``."""
        watch.seen, watch.seen_at = True, now
        if watch.called_at is not None:
            return  # called by an earlier run: its delays say nothing of this job's pace
        took = now - watch.submitted_at
        # Seen at the first look: it may have shown much earlier (the look itself may have
        # waited for the quota). Halving keeps the first polls early: learning 0.9x of it would
        # settle, with polls at 0.8x the estimate, at about three times the quota wait, past the
        # end of short transitions.
        target = took * 0.5 if watch.polls <= 1 else took
        self.evidence = target if self.evidence is None else 0.8 * self.evidence + 0.2 * target
        self.evidence_max = max(self.evidence_max, took)

    def _aim(self, watch: Watch, now: float) -> float | None:
        """Seconds after its call at which a proven watch's next look should go: the settle
        estimate; while its bounds are far apart, one batch at a time (the probe) looks
        half-way between them instead (a look that falls short costs that batch one look)."""
        lo, hi = self.settle_lo, self.settle_hi
        if hi is None or lo is None or hi - lo <= SETTLE_PRECISION * hi:
            return self.estimate
        if self._probing(watch, now):
            self._probe_at = max(self.floor, 0.5 * (lo + hi))
            return self._probe_at
        return self.estimate

    def _probing(self, watch: Watch, now: float) -> bool:
        """Whether ``watch``'s batch is the one that probes (the first to ask, until its answer
        is in, or for a while if it never comes)."""
        probe = self._probe
        stale = 2 * self.settle_hi if self.settle_hi is not None else PROBE_STALE
        if probe is None or probe == watch.submitted_at or now - probe > stale:
            if probe != watch.submitted_at:
                self._probe, self._probe_at = watch.submitted_at, None
            return True
        return False

    def _learned(self, watch: Watch, took: float, done: bool) -> None:
        self.estimate = self.settle_hi
        if self._probe != watch.submitted_at:
            return
        # The probe's answer is in (its batch done, or its look half-way answered; not an
        # earlier look of that batch): the next batch may probe.
        aim = self._probe_at
        if done or (aim is not None and took >= aim - _EPSILON):
            self._probe, self._probe_at = None, None

    def observe(self, watch: Watch, now: float) -> None:
        """``watch``'s batch is done (by the look sent at ``now``: the last of its WorkSpaces
        the look saw): learn from its settle time, if its evidence was seen."""
        if not watch.seen or watch.called_at is not None:
            return
        took = now - watch.submitted_at  # settled by then: an upper bound
        if self.settle_hi is None or took < self.settle_hi:
            self.settle_hi = max(self.floor, took)
        if self.settle_lo is not None and took <= self.settle_lo:
            # Shorter than one seen going (transitions vary, or jitter): just under it.
            self.settle_lo = took * (1 - SETTLE_PRECISION)
        self._learned(watch, took, done=True)
        self.note_window(watch, now)

    def note_window(self, watch: Watch, now: float) -> None:
        """``watch`` is done (by the look sent at ``now``): learn how long its transition
        stayed visible."""
        if watch.seen_at is not None and watch.seen_at < now and watch.called_at is None:
            span = now - watch.seen_at
            self.window = span if self.window is None else 0.8 * self.window + 0.2 * span

    def still_going(self, watch: Watch, now: float) -> None:
        """The look sent at ``now`` shows a transition of ``watch``'s batch still going: the
        batch settles later than that (a lower bound)."""
        if watch.called_at is not None:
            return
        took = now - watch.submitted_at
        if self.settle_hi is not None and took >= self.settle_hi:
            # Longer than one seen done (transitions vary, or jitter): aim past it from now on.
            self.settle_hi = took * (1 + SETTLE_PRECISION)
        if self.settle_lo is None or took > self.settle_lo:
            self.settle_lo = took
        self._learned(watch, took, done=False)

    def missed(self) -> None:
        """An item ended Unverified: its transition came and went between polls, or never came.
        The first polls come earlier from now on (they are cheap; a missed transition is not)."""
        if self.evidence is not None:
            self.evidence = max(self.floor, 0.7 * self.evidence)

    def evidence_wait(self) -> float:
        if not self.evidence_max:
            return EVIDENCE_WAIT
        return max(MIN_EVIDENCE_WAIT, 4 * self.evidence_max)

    def appear_wait(self) -> float:
        return max(APPEAR_WAIT, 4 * self.evidence_max)


class Verifier:
    """The verification loop of one scope of one run.

    ``call`` makes one logical API call; ``commit`` applies the verdicts (the run's commit path:
    durable, shielded, counted). The verdict itself is the action's (``judge_observed``).
    """

    def __init__(
        self,
        *,
        action: ActionSpec,
        params: Mapping[str, Any],
        verify_timeout: float,
        call: CallFn,
        commit: CommitFn,
        concurrency: int,
        on_credentials: Callable[[CredentialsError], None],
    ) -> None:
        self.action = action
        self.params = params
        self.verify_timeout = verify_timeout
        self._call = call
        self._commit = commit
        self._on_credentials = on_credentials
        self.settle = SettleModel()
        self._watches: list[Watch] = []  # a heap by due time
        self._ready: deque[Watch] = deque()  # due, gathering into the next poll
        self._added = anyio.Event()
        self._slots = CallSlots(concurrency)  # first looks ahead of later ones
        #: Watched items with no evidence seen yet, and how many may be before submission waits.
        self.unproven = 0
        self.unproven_base = UNPROVEN_POLLS_PER_SLOT * DESCRIBE_MAX * concurrency
        self.polls_in_flight = 0
        self.feeding = True  # items may still arrive (the submitter is running)

    @property
    def unproven_limit(self) -> int:
        """How many items may await their first evidence before submission waits."""
        delay = self.settle.evidence or 0.0
        return round(self.unproven_base * max(1.0, delay / EVIDENCE_REFERENCE))

    @property
    def busy(self) -> bool:
        return bool(self._watches) or bool(self._ready) or self.polls_in_flight > 0

    def watch(
        self, item: ItemRecord, submitted_at: float, due: float, result: str | None = None
    ) -> None:
        ids = self.action.watch_ids(item.workspace_id, result or item.result)
        watch = Watch(due, item.id, ids, item.seen_state, submitted_at)
        if item.submitted_at is not None:  # submitted by an earlier run: the call is older
            watch.called_at = submitted_at - max(0.0, time.time() - item.submitted_at)
        # Evidence seen before (by an earlier run) is kept in last_state while submitted.
        if item.last_state:
            watch.seen = self.action.judge(item.last_state, item.seen_state, seen=False).evidence
        watch.grace = self.settle.grace(max(0.0, due - time.monotonic()))
        if not watch.seen:
            self.unproven += 1
        heapq.heappush(self._watches, watch)
        self._added.set()

    def watch_new(self, items: Sequence[ItemRecord], results: Mapping[str, str]) -> None:
        """Items just accepted by the API (by the call this task just made): first poll when the
        model says they should settle. Their delays count from when the call went out (its
        token's grant), not from when its answer was read and stored."""
        now = time.monotonic()
        granted = last_grant()
        if granted is not None and now - CALL_AGE_MAX <= granted <= now:
            now = granted
        due = now + self.settle.first_delay()
        for item in items:
            self.watch(item, now, due, results.get(item.workspace_id))

    async def room(self, halted: Callable[[], bool]) -> None:
        """Wait until verification can take more submitted items (see
        :data:`UNPROVEN_POLLS_PER_SLOT`), or the run is halted."""
        while self.unproven >= self.unproven_limit and not halted():
            await anyio.sleep(0.02)

    def done_feeding(self) -> None:
        self.feeding = False
        self._added.set()

    async def _wait(self, timeout: float) -> None:
        self._added = anyio.Event()
        with anyio.move_on_after(timeout):
            await self._added.wait()

    async def run(self) -> None:
        """Poll until nothing is watched and nothing more can arrive.

        Due items gather in ``ready``; a poll goes out when 25 ids are ready, or when the oldest
        ready item has waited its ``grace`` (a quarter of its delay, at most half the time a
        transition stays visible: see :meth:`SettleModel.grace`), or when nothing else can
        arrive: a DescribeWorkspaces carries 25 ids whenever the pace of submissions allows,
        instead of one per batch of a one-per-call action.
        """
        ready = self._ready
        ready_ids = 0
        async with anyio.create_task_group() as polls:
            while True:
                now = time.monotonic()
                while self._watches and self._watches[0].due <= now:
                    watch = heapq.heappop(self._watches)
                    ready.append(watch)
                    ready_ids += len(watch.ids)
                if not ready:
                    if not self._watches:
                        if not self.feeding and self.polls_in_flight == 0:
                            return
                        await self._wait(0.2)
                    else:
                        await self._wait(self._watches[0].due - now)
                    continue
                grace = ready[0].grace
                overdue = now - ready[0].due >= grace
                last = not self.feeding and not self._watches
                if ready_ids < DESCRIBE_MAX and not overdue and not last:
                    wake = ready[0].due + grace
                    if self._watches:
                        wake = min(wake, self._watches[0].due)
                    await self._wait(max(0.0, wake - now))
                    continue
                # The slot first, then the chunk: it is chosen at the last moment, from every
                # watch due by then. A first look takes no slot of the verifier's (later looks
                # queued for the quota must not hold it back; the scope's call slots bound it).
                first_look = any(not w.seen for w in ready)
                if not first_look:
                    await self._slots.acquire(False)
                now = time.monotonic()
                while self._watches and self._watches[0].due <= now:
                    watch = heapq.heappop(self._watches)
                    ready.append(watch)
                    ready_ids += len(watch.ids)
                chunk = _take_chunk(ready)
                ready_ids -= sum(len(w.ids) for w in chunk)
                self.polls_in_flight += 1
                polls.start_soon(self._poll, chunk, not first_look)

    async def _poll(self, chunk: list[Watch], slot: bool = True) -> None:
        try:
            ids = list(dict.fromkeys(i for w in chunk for i in w.ids))
            sent = time.monotonic()  # what it shows was true at some point after this
            try:
                # A first look is urgent (a transition missed is missed for good); a later one
                # goes ahead of the submissions (it is due: waiting behind them ends the job
                # later, and would teach a settle time inflated by the wait).
                priority = urgent_calls if any(not w.seen for w in chunk) else ahead_calls
                with priority():
                    response = await self._call("DescribeWorkspaces", ids, WorkspaceIds=ids)
                # Learn from when the look went out, not from how long it queued for the quota.
                granted = last_grant()
                queued = 0.0
                if granted is not None and sent < granted <= time.monotonic():
                    queued, sent = granted - sent, granted
                if log.isEnabledFor(logging.DEBUG):
                    log.debug(
                        "look at %d ids: %.2f s after their call, %.2f s past due, %.2f s queued",
                        len(ids),
                        sent - chunk[0].submitted_at,
                        sent - chunk[0].due,
                        queued,
                    )
            except CredentialsError as exc:
                self._on_credentials(exc)
                return
            except AwsError as exc:
                # Could not look: try again later (the timeout still applies).
                now = time.monotonic()
                log.warning("verification describe failed: %s", exc)
                for w in chunk:
                    self._reschedule(w, now, at_least=1.0)
                return
            await self._judge(chunk, response, sent)
        finally:
            if slot:
                self._slots.release()
            self.polls_in_flight -= 1
            self._added.set()

    def _stuck_reason(self, w: Watch, state: str, now: float) -> str | None:
        """A WorkSpace still in the failure state it had before the call (UNHEALTHY before a
        reboot, say) may not have started its transition yet; but when it still shows no sign
        of one long after the others settled, the call did not take: fail it now rather than at
        the verify timeout."""
        if state != w.seen_state or state not in self.action.failure_states:
            return None
        waited = now - w.submitted_at
        if waited < max(STUCK_AFTER, 3 * self.settle.first_delay()):
            return None
        return f"still {state} {int(waited)} s after the call, with no transition seen"

    def _reschedule(self, w: Watch, now: float, at_least: float = 0.0) -> None:
        delay = max(at_least, self.settle.next_delay(w, now))
        w.due = now + delay
        w.grace = self.settle.grace(delay)
        heapq.heappush(self._watches, w)

    def _verdict(self, w: Watch, observed: tuple[Any, ...], now: float, sent: float) -> Verdict:
        """The action's verdict on this look (sent at ``sent``), evidence remembered and learned
        from, and the waiting verdicts that ran out of time resolved."""
        # Only a look sent after the evidence was seen is a look after it: answers of polls in
        # flight together may be judged out of order, and a failure state "after evidence" is
        # the action's failure (an earlier look's failure state may be the one before the call).
        after_evidence = w.seen and (w.seen_at is None or sent >= w.seen_at)
        verdict = self.action.judge_observed(observed, w.seen_state, self.params, after_evidence)
        if verdict.evidence and not w.seen:
            self.settle.saw_evidence(w, sent)
        called_at = w.submitted_at if w.called_at is None else w.called_at
        return self.action.judge_in_time(
            verdict,
            observed,
            waited=now - called_at,
            # at the verify timeout an end state without evidence is Unverified, not a timeout
            evidence_wait=min(self.verify_timeout, self.settle.evidence_wait()),
            appear_wait=self.settle.appear_wait(),
        )

    def _judge_one(
        self,
        w: Watch,
        by_id: Mapping[str, Any],
        now: float,
        sent: float,
        ok: dict[str, list[int]],
        proven: dict[str, list[int]],
        decided: list[ItemUpdate],
    ) -> bool:
        """Judge one watch on this look: its verdict goes into ``ok``, ``proven`` or
        ``decided``, or it is polled again. True when the watch ended."""

        def record(state: str, code: str, message: str | None, final: ItemState) -> bool:
            decided.append(
                ItemUpdate(
                    ids=[w.item_id],
                    state=final,
                    last_state=state,
                    error_code=code,
                    error_message=message,
                )
            )
            return True

        w.polls += 1
        was_seen = w.seen
        observed = tuple(by_id.get(i) for i in w.ids)
        first = observed[0]
        state = str(first.get("State", "")) if first is not None else GONE
        verdict = self._verdict(w, observed, now, sent)
        waited = now - w.submitted_at
        if verdict.done:
            self.settle.note_window(w, sent)
            if verdict.unverified:
                self.settle.missed()
                return record(state, UNVERIFIED, verdict.reason, ItemState.SUCCEEDED)
            if verdict.succeeded:
                ok.setdefault(state, []).append(w.item_id)
                return True
            return record(state, "VerificationFailed", verdict.reason, ItemState.FAILED)
        if waited >= self.verify_timeout:
            reason = self.action.timeout_reason(observed, waited)
            message = f"{reason} (--verify-timeout {self.verify_timeout:g} s)"
            return record(state, "VerifyTimeout", message, ItemState.FAILED)
        stuck = self._stuck_reason(w, state, now)
        if stuck is not None:
            return record(state, "VerificationFailed", stuck, ItemState.FAILED)
        if w.seen and not was_seen and first is not None:
            proven.setdefault(state, []).append(w.item_id)
        self._reschedule(w, now)
        return False

    def reaim(self, now: float) -> None:
        """The settle time was just learned: every proven watch's next look aims at it (they
        were doubling their waits while the first batch probed)."""
        estimate = self.settle.estimate
        if estimate is None:
            return
        for w in self._watches:
            if w.seen and w.called_at is None:
                w.due = max(now, w.submitted_at + estimate)
                w.grace = self.settle.grace(w.due - now)
        heapq.heapify(self._watches)

    def _learn(self, batches: Mapping[float, tuple[Watch, bool]], sent: float) -> None:
        """One lesson per batch (the WorkSpaces of one call) in this look: all of it done is an
        upper bound of its settle time; some of it still going, a lower one."""
        for w, going in batches.values():
            if going:
                self.settle.still_going(w, sent)
            else:
                self.settle.observe(w, sent)

    async def _judge(self, chunk: list[Watch], response: Mapping[str, Any], sent: float) -> None:
        now = time.monotonic()
        known = self.settle.estimate is not None
        by_id = {ws["WorkspaceId"]: ws for ws in response.get("Workspaces", [])}
        ok: dict[str, list[int]] = {}
        proven: dict[str, list[int]] = {}  # evidence seen for the first time, not done yet
        decided: list[ItemUpdate] = []  # failed and unverified items
        batches: dict[float, tuple[Watch, bool]] = {}  # a seen watch of each, and "going"
        for w in chunk:
            was_seen = w.seen
            ended = True
            try:
                ended = self._judge_one(w, by_id, now, sent, ok, proven, decided)
            finally:
                if not was_seen and (w.seen or ended):
                    self.unproven -= 1
            if w.seen:
                _, going = batches.get(w.submitted_at, (w, False))
                batches[w.submitted_at] = (w, going or not ended)
        self._learn(batches, sent)
        if not known and self.settle.estimate is not None:
            self.reaim(now)
        unverified = sum(1 for u in decided if u.error_code == UNVERIFIED)
        failed = len(decided) - unverified
        updates = [
            ItemUpdate(ids=ids, state=ItemState.SUCCEEDED, last_state=state)
            for state, ids in ok.items()
        ]
        updates.extend(decided)
        # The evidence is kept (last_state) so that a resumed run knows the action was seen.
        updates.extend(
            ItemUpdate(ids=ids, state=ItemState.SUBMITTED, last_state=state)
            for state, ids in proven.items()
        )
        if ok or decided:
            succeeded = sum(len(ids) for ids in ok.values())
            log.info(
                "verification of %d items: %d succeeded, %d unverified, %d failed, %d waiting "
                "(first poll %.2f s, settle %s s, evidence %s s after the call)",
                len(chunk),
                succeeded,
                unverified,
                failed,
                len(chunk) - succeeded - unverified - failed,
                self.settle.first_delay(),
                _seconds(self.settle.estimate),
                _seconds(self.settle.evidence),
            )
        if updates:
            await self._commit(updates)


def _take_chunk(ready: deque[Watch]) -> list[Watch]:
    """The watches of the next poll, up to 25 ids: those still waiting for their first evidence
    first (a transition not looked at in time is missed for good; a proven watch's poll only
    ends a little later), each kind in the order it fell due. The WorkSpaces of one call (one
    batch: they settle together) go whole into a poll that has room for them: split between
    two polls, each part would need looks of its own from then on."""
    chunk: list[Watch] = []
    described = 0
    for urgent in (True, False):
        if described >= DESCRIBE_MAX:
            break
        sizes: Counter[float] = Counter()
        for watch in ready:
            if (not watch.seen) is urgent:
                sizes[watch.submitted_at] += len(watch.ids)
        started: set[float] = set()
        rest: deque[Watch] = deque()
        while ready:
            watch = ready.popleft()
            fits = described + len(watch.ids) <= DESCRIBE_MAX
            batch = watch.submitted_at
            if fits and batch not in started and described:
                # whole, or in a poll of its own (unless it cannot be whole in any)
                fits = described + sizes[batch] <= DESCRIBE_MAX or sizes[batch] > DESCRIBE_MAX
            if (not watch.seen) is urgent and fits:
                started.add(batch)
                chunk.append(watch)
                described += len(watch.ids)
                if described >= DESCRIBE_MAX:
                    break
            else:
                rest.append(watch)
        rest.extend(ready)
        ready.clear()
        ready.extend(rest)
    return chunk


def _seconds(value: float | None) -> str:
    return "?" if value is None else f"{value:.2f}"
