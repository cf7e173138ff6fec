"""The verifier's poll timing (pure) and its verdicts against a scripted, lagging DescribeWorkspaces
(a fake call: no HTTP, no database)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import anyio
import pytest

from fleetops.catalogue.actions import get_action
from fleetops.engine.verify import (
    EVIDENCE_WAIT,
    FIRST_POLL,
    MIN_EVIDENCE_WAIT,
    SettleModel,
    Verifier,
    Watch,
)
from fleetops.errors import CredentialsError
from fleetops.records import ItemRecord, ItemUpdate
from fleetops.states import UNVERIFIED, ItemState


def watch(submitted_at: float = 100.0, **kw: Any) -> Watch:
    return Watch(due=submitted_at, item_id=1, ids=("ws-1",), seen_state="AVAILABLE",
                 submitted_at=submitted_at, **kw)  # fmt: skip


def test_nothing_is_learned_from_an_item_done_without_evidence() -> None:
    model = SettleModel()
    w = watch(polls=1)
    model.observe(w, 100.4)  # "done at the first poll", nothing seen: no lesson
    assert model.estimate is None and model.evidence is None
    assert model.first_delay() == FIRST_POLL
    assert model.evidence_wait() == EVIDENCE_WAIT


def test_evidence_and_settle_are_learned_from_real_transitions() -> None:
    model = SettleModel()
    w = watch(polls=2)
    model.saw_evidence(w, 102.0)  # REBOOTING shown 2 s after the call (a lagging Describe)
    assert w.seen and model.evidence == pytest.approx(2.0) and model.evidence_max == 2.0
    assert model.first_delay() == pytest.approx(1.6)  # the next batch looks a little earlier
    assert model.evidence_wait() == pytest.approx(8.0)  # 4x the longest delay seen
    w.polls = 3
    model.observe(w, 103.0)
    assert model.estimate == pytest.approx(3.0) and model.window == pytest.approx(1.0)
    assert model.grace(4.0) == pytest.approx(0.5)  # capped at half the visible window


def test_evidence_wait_has_a_floor_once_evidence_was_seen() -> None:
    model = SettleModel()
    model.saw_evidence(watch(polls=1), 100.1)
    assert model.evidence_wait() == MIN_EVIDENCE_WAIT


def test_a_missed_transition_brings_the_first_polls_earlier() -> None:
    model = SettleModel()
    model.saw_evidence(watch(polls=2), 101.0)
    before = model.first_delay()
    model.missed()
    assert model.first_delay() < before


def test_an_item_called_by_an_earlier_run_teaches_nothing() -> None:
    model = SettleModel()
    w = watch(polls=2, called_at=40.0)
    model.saw_evidence(w, 101.0)
    model.observe(w, 102.0)
    assert w.seen and model.evidence is None and model.estimate is None


@pytest.mark.parametrize(
    ("seen", "estimate", "now", "expected"),
    [
        (False, None, 104.0, 1.0),  # no evidence yet: 25 % of the time waited
        (False, 10.0, 104.0, 1.0),  # ... even when a settle time is known
        (True, None, 104.0, 2.0),  # proven, settle unknown: 50 % steps
        (True, 10.0, 104.0, 6.0),  # proven: aim at the learned settle time
        (True, 3.0, 104.0, 1.0),  # past it: 25 %
        (False, None, 100.01, 0.05),  # never below the floor
    ],
)
def test_next_poll(seen: bool, estimate: float | None, now: float, expected: float) -> None:
    model = SettleModel()
    model.estimate = estimate
    assert model.next_delay(watch(seen=seen), now) == pytest.approx(expected)


# -- the verifier against a scripted describe ---------------------------------------------------


def item(item_id: int, ws_id: str, seen_state: str = "AVAILABLE", **kw: Any) -> ItemRecord:
    fields: dict[str, Any] = {
        "id": item_id,
        "job_id": "j1",
        "workspace_id": ws_id,
        "region": "us-east-1",
        "state": ItemState.SUBMITTED,
        "attempts": 1,
        "seen_state": seen_state,
        "last_state": None,
        "user_name": None,
        "directory_id": None,
        "bundle_id": None,
        "reason": None,
        "error_code": None,
        "error_message": None,
        "result": None,
        "submitted_at": None,
        "updated_at": 0.0,
    }
    fields.update(kw)
    return ItemRecord(**fields)


class LaggingDescribe:
    """Answers DescribeWorkspaces from a script: per WorkSpace, the state shown at its first,
    second, ... look (the last one repeats; None: not found). Deterministic: by looks, not time."""

    def __init__(self, script: dict[str, list[str | None]]) -> None:
        self.script = script
        self.looks: dict[str, int] = dict.fromkeys(script, 0)
        self.polls = 0

    async def __call__(
        self, operation: str, ids: Sequence[str], /, **params: Any
    ) -> dict[str, Any]:
        assert operation == "DescribeWorkspaces" and len(params["WorkspaceIds"]) <= 25
        self.polls += 1
        shown = []
        for ws_id in params["WorkspaceIds"]:
            states = self.script[ws_id]
            state = states[min(self.looks[ws_id], len(states) - 1)]
            self.looks[ws_id] += 1
            if state is not None:
                shown.append({"WorkspaceId": ws_id, "State": state})
        return {"Workspaces": shown}


async def verify(
    action: str, items: list[ItemRecord], script: LaggingDescribe, timeout: float
) -> dict[int, ItemUpdate]:
    committed: dict[int, ItemUpdate] = {}

    async def commit(updates: Sequence[ItemUpdate]) -> None:
        for update in updates:
            for item_id in update.ids:
                committed[item_id] = update

    def on_credentials(exc: CredentialsError) -> None:
        raise AssertionError(exc)

    verifier = Verifier(
        action=get_action(action),
        params={},
        verify_timeout=timeout,
        call=script,
        commit=commit,
        concurrency=2,
        on_credentials=on_credentials,
    )
    verifier.watch_new(items, {})
    verifier.done_feeding()
    with anyio.fail_after(timeout + 5):
        await verifier.run()
    return committed


async def test_reboot_under_lag_waits_for_the_transition_and_flags_the_unproven() -> None:
    script = LaggingDescribe(
        {
            # the old state at the first two looks, then the reboot shows, then its end
            "ws-late": ["AVAILABLE", "AVAILABLE", "REBOOTING", "AVAILABLE"],
            # never shows a transition: nothing proves the reboot happened
            "ws-never": ["AVAILABLE"],
            # went wrong
            "ws-broke": ["AVAILABLE", "REBOOTING", "UNHEALTHY"],
        }
    )
    items = [item(1, "ws-late"), item(2, "ws-never"), item(3, "ws-broke")]
    committed = await verify("reboot", items, script, timeout=1.5)
    late, never, broke = committed[1], committed[2], committed[3]
    assert (late.state, late.error_code, late.last_state) == (
        ItemState.SUCCEEDED,
        None,
        "AVAILABLE",
    )
    assert (never.state, never.error_code) == (ItemState.SUCCEEDED, UNVERIFIED)
    assert never.error_message is not None and "no sign of the reboot" in never.error_message
    assert (broke.state, broke.error_code) == (ItemState.FAILED, "VerificationFailed")
    assert script.looks["ws-late"] == 4  # kept polling past the stale AVAILABLE
    assert script.looks["ws-never"] > 4  # ... until the wait for evidence ran out


async def test_created_workspace_not_found_at_first_is_waited_for() -> None:
    script = LaggingDescribe({"ws-new": [None, None, "PENDING", "AVAILABLE"]})
    rec = item(1, "new:d-1234567890/u1", seen_state=None, result="ws-new")
    committed = await verify("create", [rec], script, timeout=3.0)
    assert (committed[1].state, committed[1].error_code) == (ItemState.SUCCEEDED, None)


async def test_evidence_seen_by_an_earlier_run_counts_on_resume() -> None:
    """An item submitted by a run that stopped after seeing REBOOTING (kept in last_state):
    AVAILABLE now is the end of that reboot, not a sign it has not started."""
    script = LaggingDescribe({"ws-1": ["AVAILABLE"]})
    rec = item(1, "ws-1", last_state="REBOOTING", submitted_at=time.time() - 30)
    committed = await verify("reboot", [rec], script, timeout=2.0)
    assert (committed[1].state, committed[1].error_code) == (ItemState.SUCCEEDED, None)


def reboot_verifier(call: Any, *, concurrency: int) -> Verifier:
    """A reboot's verifier whose verdicts go nowhere (the tests read its counters)."""

    async def commit(updates: Sequence[ItemUpdate]) -> None:
        pass

    def on_credentials(exc: CredentialsError) -> None:
        raise AssertionError(exc)

    return Verifier(
        action=get_action("reboot"),
        params={},
        verify_timeout=30.0,
        call=call,
        commit=commit,
        concurrency=concurrency,
        on_credentials=on_credentials,
    )


async def test_submission_waits_while_too_many_items_await_their_first_evidence() -> None:
    """Back-pressure: with a poll slot's worth of items unproven, room() blocks the submitter;
    once their evidence is seen it lets it go on."""
    n = 25  # UNPROVEN_POLLS_PER_SLOT x DESCRIBE_MAX x one slot
    ids = [f"ws-{i:04d}" for i in range(n)]
    script = LaggingDescribe({ws: ["REBOOTING", "AVAILABLE"] for ws in ids})

    verifier = reboot_verifier(script, concurrency=1)
    assert verifier.unproven_limit == n
    verifier.watch_new([item(i + 1, ws) for i, ws in enumerate(ids[:-1])], {})
    with anyio.fail_after(1):
        await verifier.room(lambda: False)  # one short of the limit: no wait
    verifier.watch_new([item(n, ids[-1])], {})
    assert verifier.unproven == n
    with anyio.move_on_after(0.3) as blocked:
        await verifier.room(lambda: False)
    assert blocked.cancelled_caught  # at the limit: the submitter waits
    with anyio.fail_after(1):
        await verifier.room(lambda: True)  # a halted run never waits
    verifier.done_feeding()
    async with anyio.create_task_group() as tg:
        tg.start_soon(verifier.run)
        with anyio.fail_after(5):
            await verifier.room(lambda: False)  # evidence seen: room again
        assert verifier.unproven < n
    assert verifier.unproven == 0


def test_the_back_pressure_limit_grows_with_the_delay_to_evidence() -> None:
    """A lagging Describe shows evidence late: items await it longer, and the limit grows in
    proportion, so the lag slows verdicts but not submission."""

    async def never(operation: str, ids: Any, /, **params: Any) -> Mapping[str, Any]:
        raise AssertionError("no call")

    verifier = reboot_verifier(never, concurrency=8)
    base = verifier.unproven_limit
    assert base == 200  # a poll's worth a slot, 8 slots
    verifier.settle.evidence = 0.1  # seen at once: the base limit
    assert verifier.unproven_limit == base
    verifier.settle.evidence = 2.0  # seen 2 s after the call
    assert verifier.unproven_limit == 8 * base


def test_a_poll_takes_the_watches_awaiting_evidence_first() -> None:
    """Unproven watches (a transition still to be caught) go before proven ones, each kind in
    the order it fell due, up to 25 ids; what is left keeps its order."""
    from collections import deque

    from fleetops.engine.verify import _take_chunk

    def w(n: int, seen: bool) -> Watch:
        return Watch(due=float(n), item_id=n, ids=(f"ws-{n}",), seen_state="AVAILABLE",
                     submitted_at=0.0, seen=seen)  # fmt: skip

    ready = deque([w(i, seen=i % 2 == 0) for i in range(60)])  # even: proven, odd: not yet
    chunk = _take_chunk(ready)
    assert [x.item_id for x in chunk] == [*range(1, 50, 2)]  # the 25 unproven, in due order
    assert [x.item_id for x in ready] == sorted([*range(0, 60, 2), *range(51, 60, 2)])
    chunk = _take_chunk(ready)
    assert [x.item_id for x in chunk[:5]] == [51, 53, 55, 57, 59]  # unproven still first
    assert [x.item_id for x in chunk[5:]] == [*range(0, 40, 2)]  # then proven, oldest first


def test_a_late_look_does_not_inflate_the_settle_time() -> None:
    """Looks go out after they fall due (later still when queued for the quota): the time of a
    look that finds a batch done bounds its settle time from above; it never raises it."""
    model = SettleModel()
    w = watch(polls=2, seen=True)
    model.observe(w, 102.5)  # the first batch: done by 2.5 s
    assert model.estimate == pytest.approx(2.5)
    for start in range(10):  # later batches: each look 0.7 s past its due time, done
        later = watch(submitted_at=200.0 + start, polls=2, seen=True)
        model.observe(later, later.submitted_at + model.estimate + 0.7)
    assert model.estimate == pytest.approx(2.5)
    model.observe(watch(submitted_at=300.0, polls=2, seen=True), 302.1)  # done sooner: lower
    assert model.estimate == pytest.approx(2.1)


def test_the_settle_time_is_found_between_its_bounds_one_probe_at_a_time() -> None:
    model = SettleModel()
    first = watch(submitted_at=100.0, polls=2, seen=True)
    model.still_going(first, 100.2)  # going at 0.2 s
    model.observe(first, 103.0)  # done by 3.0 s
    assert (model.settle_lo, model.settle_hi) == (pytest.approx(0.2), pytest.approx(3.0))
    probe = watch(submitted_at=110.0, seen=True)
    other = watch(submitted_at=111.0, seen=True)
    # One batch looks half-way; another batch meanwhile aims at the safe upper bound.
    assert model.next_delay(probe, 110.2) == pytest.approx(1.6 - 0.2)
    assert model.next_delay(other, 111.2) == pytest.approx(3.0 - 0.2)
    model.still_going(probe, 111.6)  # still going at 1.6 s: the lower bound rises
    assert model.settle_lo == pytest.approx(1.6)
    third = watch(submitted_at=120.0, seen=True)
    assert model.next_delay(third, 120.2) == pytest.approx(2.3 - 0.2)  # the next probe
    model.observe(third, 122.3)  # done by 2.3 s: the upper bound falls
    assert model.estimate == pytest.approx(2.3)
    model.still_going(watch(submitted_at=130.0, seen=True), 132.2)  # close enough: no probe
    assert model.next_delay(watch(submitted_at=140.0, seen=True), 140.2) == pytest.approx(2.1)


def test_a_transition_longer_than_the_estimate_raises_it() -> None:
    model = SettleModel()
    model.observe(watch(submitted_at=100.0, polls=2, seen=True), 102.0)
    model.still_going(watch(submitted_at=110.0, polls=2, seen=True), 112.5)
    assert model.estimate == pytest.approx(2.75)  # past the look that found it going


def test_while_the_first_batch_learns_the_settle_time_the_others_wait_for_it() -> None:
    model = SettleModel()
    probe = watch(submitted_at=100.0, seen=True)
    other = watch(submitted_at=100.5, seen=True)
    assert model.next_delay(probe, 101.0) == pytest.approx(0.5)  # 50 % steps
    assert model.next_delay(other, 101.0) >= 10.0  # re-aimed once the probe's answer is in


async def test_the_watches_waiting_are_aimed_at_the_settle_time_once_learned() -> None:
    verifier = Verifier(
        action=get_action("reboot"),
        params={},
        verify_timeout=60.0,
        call=None,  # type: ignore[arg-type]
        commit=None,  # type: ignore[arg-type]
        concurrency=2,
        on_credentials=lambda exc: None,
    )
    now = time.monotonic()
    waiting = watch(submitted_at=now - 1.0, seen=True)
    waiting.due = now + 30.0
    verifier._watches.append(waiting)
    verifier.settle.observe(watch(submitted_at=now - 5.0, polls=2, seen=True), now - 3.0)
    verifier.reaim(now)
    assert waiting.due == pytest.approx(now + 1.0)


def test_a_poll_keeps_the_watches_of_one_call_together() -> None:
    from collections import deque

    from fleetops.engine.verify import _take_chunk

    def batch(call: float, n: int, first: int) -> list[Watch]:
        def one(n: int) -> Watch:
            return Watch(due=call, item_id=n, ids=(f"ws-{n}",), seen_state="AVAILABLE",
                         submitted_at=call, seen=True)  # fmt: skip

        return [one(first + i) for i in range(n)]

    ready = deque([*batch(1.0, 20, 0), *batch(2.0, 25, 100), *batch(3.0, 5, 200)])
    chunk = _take_chunk(ready)
    # the 25 of the second call do not fit beside the first 20: the 5 of the third do
    assert [w.item_id for w in chunk] == [*range(20), *range(200, 205)]
    assert [w.item_id for w in _take_chunk(ready)] == [*range(100, 125)]
