"""The engine's pure decisions, table by table: item retry and backoff, reconcile, what follows a
transient failure, a refused item, the circuit breaker, the error budget and the final status.

Every boundary is tested on both sides, so flipping any comparison makes a test fail.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleetops.aws.retry import (
    ITEM_BACKOFF_CAP,
    RetryPolicy,
    attempts_spent,
    item_backoff,
    retry_item,
)
from fleetops.catalogue.options import error_budget, over_budget
from fleetops.engine.decide import (
    GONE_SINCE_PLAN,
    STATE_CHANGED,
    AfterTransient,
    CircuitBreaker,
    Refusal,
    after_transient,
    failed_request,
    needs_describe,
    reconcile_verdict,
    refusal,
)
from fleetops.states import (
    ACTED_ON_ITEM_STATES,
    ACTIVE_ITEM_STATES,
    COMPLETE_STATUSES,
    ENDED_STATUSES,
    FINAL_ITEM_STATES,
    OUTCOME_ITEM_STATES,
    QUEUEABLE_STATUSES,
    UNCANCELLABLE_STATUSES,
    UNFINISHED_ITEM_STATES,
    ItemState,
    JobStatus,
    RunEnd,
    exit_code_for,
    final_status,
)

# -- item retry ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("retryable", "attempts", "max_attempts", "again"),
    [
        (True, 0, 5, True),  # first failure of five allowed
        (True, 3, 5, True),  # the fourth attempt failed: one left
        (True, 4, 5, False),  # the fifth failed: none left
        (True, 5, 5, False),
        (True, 0, 1, False),  # one attempt allowed, used
        (True, 0, 2, True),
        (False, 0, 5, False),  # not retryable: fails at once
    ],
)
def test_retry_item(retryable: bool, attempts: int, max_attempts: int, again: bool) -> None:
    assert retry_item(retryable, attempts, max_attempts) is again


@given(st.integers(0, 50), st.integers(1, 50))
def test_an_item_is_sent_at_most_max_attempts_times(attempts: int, max_attempts: int) -> None:
    # Sent once more only while the attempts made (this one included) stay below the maximum.
    assert retry_item(True, attempts, max_attempts) is (attempts + 1 < max_attempts)


@pytest.mark.parametrize(
    ("attempts", "wait"), [(0, 0.5), (1, 1.0), (2, 2.0), (5, 16.0), (6, 30.0), (20, 30.0)]
)
def test_item_backoff_doubles_up_to_the_cap(attempts: int, wait: float) -> None:
    assert item_backoff(attempts) == wait


@given(st.integers(0, 200))
def test_item_backoff_is_bounded_and_monotonic(attempts: int) -> None:
    assert 0 < item_backoff(attempts) <= ITEM_BACKOFF_CAP
    assert item_backoff(attempts) <= item_backoff(attempts + 1)


# -- call retry: attempts per code ---------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "retried", "spent"),
    [
        ("ThrottlingException", True, 8),  # the quota: patiently
        ("InternalFailure", True, 3),  # a broken operation: a few times only
        ("ServiceUnavailable", True, 3),
        ("InternalFailure", False, 1),  # not retried (a non-idempotent call's 5xx)
    ],
)
def test_attempts_per_failure(code: str, retried: bool, spent: int) -> None:
    assert attempts_spent(RetryPolicy(), code, retried=retried) == spent


def test_server_error_attempts_never_exceed_attempts() -> None:
    policy = RetryPolicy(attempts=2, server_error_attempts=3)
    assert policy.attempts_for("InternalFailure") == 2
    assert RetryPolicy(attempts=8, server_error_attempts=4).attempts_for("InternalFailure") == 4


# -- reconcile -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("evidence", "destructive", "retry_safe", "verdict"),
    [
        (True, False, True, ItemState.SUBMITTED),  # reboot seen REBOOTING
        (True, True, False, ItemState.SUBMITTED),  # rebuild seen REBUILDING
        (False, False, True, ItemState.PENDING),  # reboot, no sign: send again
        (False, False, False, ItemState.PENDING),  # non-destructive: harmless to resend
        (False, True, True, ItemState.PENDING),  # terminate: idempotent in effect
        (False, True, False, ItemState.IN_DOUBT),  # rebuild, no sign: held for the operator
    ],
)
def test_reconcile_verdict(
    evidence: bool, destructive: bool, retry_safe: bool, verdict: ItemState
) -> None:
    assert (
        reconcile_verdict(evidence=evidence, destructive=destructive, retry_safe=retry_safe)
        is verdict
    )


@pytest.mark.parametrize(
    ("not_executed", "retry_safe", "verdict"),
    [
        (True, False, AfterTransient.REQUEUE),  # throttled rebuild: nothing happened
        (False, True, AfterTransient.REQUEUE),  # 5xx reboot: safe to send again
        (True, True, AfterTransient.REQUEUE),
        (False, False, AfterTransient.RECONCILE),  # 5xx rebuild: describe before anything
    ],
)
def test_after_transient(not_executed: bool, retry_safe: bool, verdict: AfterTransient) -> None:
    assert after_transient(not_executed=not_executed, retry_safe=retry_safe) is verdict


# -- a refused item (FailedRequests) ---------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "message", "retryable", "attempts", "state", "reason"),
    [
        (
            "InvalidResourceStateException",
            "The state of the resource is not valid for this operation.",
            False,
            0,
            ItemState.SKIPPED,
            STATE_CHANGED,
        ),
        (
            "InvalidResourceStateException",
            "The WorkSpace is in state STOPPED.",
            False,
            0,
            ItemState.SKIPPED,
            f"{STATE_CHANGED} (now STOPPED)",
        ),
        ("InternalFailure", "boom", True, 0, ItemState.PENDING, None),
        ("InternalFailure", "boom", True, 3, ItemState.PENDING, None),
        ("InternalFailure", "boom", True, 4, ItemState.FAILED, None),  # fifth of five
        ("ResourceNotFoundException", "gone", False, 0, ItemState.SKIPPED, GONE_SINCE_PLAN),
        ("ResourceNotFound.Workspace", "", False, 0, ItemState.SKIPPED, GONE_SINCE_PLAN),
        ("ResourceNotFound.Bundle", "no bundle", False, 0, ItemState.FAILED, None),
        ("InvalidResourceState.Workspace", "", False, 0, ItemState.SKIPPED, STATE_CHANGED),
        ("OperationInProgressException", "busy", False, 0, ItemState.PENDING, None),
        ("OperationInProgress.Workspace", "busy", False, 3, ItemState.PENDING, None),
        ("OperationInProgressException", "busy", False, 4, ItemState.FAILED, None),
        ("InvalidUserConfiguration.Workspace", "", False, 0, ItemState.FAILED, None),
        ("OperationNotSupportedException", "no", False, 0, ItemState.FAILED, None),
    ],
)
def test_failed_request(
    code: str,
    message: str,
    retryable: bool,
    attempts: int,
    state: ItemState,
    reason: str | None,
) -> None:
    outcome = failed_request(code, message, retryable=retryable, attempts=attempts, max_attempts=5)
    assert (outcome.state, outcome.reason) == (state, reason)


@pytest.mark.parametrize(
    ("code", "found", "now_state", "state", "reason"),
    [
        ("InvalidResourceState.Workspace", True, "STOPPED", ItemState.SKIPPED,
         f"{STATE_CHANGED} (now STOPPED)"),
        ("InvalidResourceState.Workspace", False, None, ItemState.SKIPPED, GONE_SINCE_PLAN),
        # a one-WorkSpace call's bare not-found while the WorkSpace is there: something else
        ("ResourceNotFoundException", True, "AVAILABLE", ItemState.FAILED, None),
        ("ResourceNotFoundException", False, None, ItemState.SKIPPED, GONE_SINCE_PLAN),
    ],
)  # fmt: skip
def test_failed_request_judged_on_a_describe(
    code: str, found: bool, now_state: str | None, state: ItemState, reason: str | None
) -> None:
    outcome = failed_request(
        code, "", retryable=False, attempts=0, max_attempts=5, found=found, now_state=now_state
    )
    assert (outcome.state, outcome.reason) == (state, reason)


@pytest.mark.parametrize(
    ("code", "family"),
    [
        ("InvalidResourceStateException", Refusal.STATE),
        ("InvalidResourceState.Workspace", Refusal.STATE),
        ("InvalidResourceState", Refusal.STATE),
        ("ResourceNotFound.Workspace", Refusal.GONE),
        ("ResourceNotFoundException", Refusal.GONE),
        ("ResourceNotFound.Directory", Refusal.OTHER),
        ("OperationInProgressException", Refusal.IN_PROGRESS),
        ("InvalidUserConfiguration.Workspace", Refusal.OTHER),
        ("", Refusal.OTHER),
    ],
)
def test_refusal_family(code: str, family: Refusal) -> None:
    assert refusal(code) is family


@pytest.mark.parametrize(
    ("code", "message", "needed"),
    [
        ("InvalidResourceState.Workspace", "The state is not valid.", True),
        ("InvalidResourceState.Workspace", "The WorkSpace is in state STOPPED.", False),
        ("ResourceNotFoundException", "could not be found", True),
        ("ResourceNotFound.Workspace", "could not be found", False),
        ("InternalFailure", "boom", False),
    ],
)
def test_needs_describe(code: str, message: str, needed: bool) -> None:
    assert needs_describe(code, message) is needed


def test_breaker_ignores_one_workspace_refusals() -> None:
    breaker = CircuitBreaker(threshold=2)
    for code in ("OperationInProgressException", "InvalidResourceStateException") * 3:
        assert not breaker.record_failure("ModifyWorkspaceProperties", code, "busy")
    assert not breaker.is_open


# -- circuit breaker -----------------------------------------------------------------------


def test_breaker_opens_on_the_nth_failure_in_a_row() -> None:
    breaker = CircuitBreaker(threshold=3)
    assert not breaker.record_failure("RebootWorkspaces", "InternalFailure", "boom")
    assert not breaker.record_failure("RebootWorkspaces", "InternalFailure", "boom")
    assert not breaker.is_open
    assert breaker.record_failure("RebootWorkspaces", "InternalFailure", "boom")
    assert breaker.is_open
    reason = breaker.reason() or ""
    assert "RebootWorkspaces" in reason and "InternalFailure" in reason and "3 times" in reason


@pytest.mark.parametrize(
    "interruption",
    [
        ("success", "RebootWorkspaces", ""),
        ("failure", "RebootWorkspaces", "ServiceUnavailable"),  # failing another way
    ],
)
def test_breaker_counts_only_an_unbroken_run(interruption: tuple[str, str, str]) -> None:
    kind, operation, code = interruption
    breaker = CircuitBreaker(threshold=3)
    breaker.record_failure("RebootWorkspaces", "InternalFailure", "boom")
    breaker.record_failure("RebootWorkspaces", "InternalFailure", "boom")
    if kind == "success":
        breaker.record_success(operation)
    else:
        breaker.record_failure(operation, code, "other")
    assert not breaker.record_failure("RebootWorkspaces", "InternalFailure", "boom")
    assert not breaker.is_open


def test_breaker_keeps_operations_apart_and_ignores_throttling() -> None:
    breaker = CircuitBreaker(threshold=2)
    breaker.record_failure("RebootWorkspaces", "InternalFailure", "boom")
    assert not breaker.record_failure("DescribeWorkspaces", "InternalFailure", "boom")
    for _ in range(10):
        assert not breaker.record_failure("StartWorkspaces", "ThrottlingException", "slow")
    assert not breaker.is_open
    assert breaker.record_failure("DescribeWorkspaces", "InternalFailure", "boom")


# -- error budget --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("max_errors", "acted_on", "budget"),
    [
        (None, 100, None),
        ("0", 100, 0),
        ("10", 100, 10),
        ("10%", 50, 5),
        ("10%", 59, 5),  # rounded down
        ("0%", 50, 0),
        ("100%", 7, 7),
    ],
)
def test_error_budget(max_errors: str | None, acted_on: int, budget: int | None) -> None:
    assert error_budget(max_errors, acted_on) == budget


@pytest.mark.parametrize(
    ("failed", "budget", "over"),
    [
        (0, None, False),
        (10**6, None, False),
        (5, 5, False),
        (6, 5, True),
        (0, 0, False),
        (1, 0, True),
    ],
)
def test_over_budget(failed: int, budget: int | None, over: bool) -> None:
    assert over_budget(failed, budget) is over


# -- final status --------------------------------------------------------------------------


def counts(**given: int) -> dict[str, int]:
    out = {state.value: 0 for state in ItemState}
    out.update(given)
    return out


@pytest.mark.parametrize(
    ("end", "status", "words"),
    [
        (RunEnd("j1", counts(succeeded=3, skipped=1)), JobStatus.SUCCEEDED, None),
        (RunEnd("j1", counts(succeeded=3, failed=1)), JobStatus.FAILED, "1 items failed"),
        (
            RunEnd("j1", counts(pending=4), failure="DescribeWorkspaces failed with X"),
            JobStatus.FAILED,
            "DescribeWorkspaces",
        ),
        (
            RunEnd("j1", counts(failed=6), aborted=True, max_errors="5"),
            JobStatus.ABORTED,
            "--max-errors 5",
        ),
        (
            RunEnd("j1", counts(pending=2), stop_reason="interrupted"),
            JobStatus.INTERRUPTED,
            "jobs resume j1",
        ),
        (RunEnd("j1", counts(in_doubt=2)), JobStatus.INTERRUPTED, "--redo-in-doubt"),
        (RunEnd("j1", counts(submitted=2)), JobStatus.INTERRUPTED, "2 items unfinished"),
        (RunEnd("j1", counts(submitted=2), waits=False), JobStatus.SUCCEEDED, None),
        (RunEnd("j1", counts(in_flight=1)), JobStatus.INTERRUPTED, "1 items unfinished"),
        # precedence: a broken API over the budget over a stop
        (
            RunEnd("j1", counts(failed=9), failure="broken", aborted=True, stop_reason="x"),
            JobStatus.FAILED,
            "broken",
        ),
        (
            RunEnd("j1", counts(failed=9), aborted=True, max_errors="1", stop_reason="x"),
            JobStatus.ABORTED,
            "aborted",
        ),
    ],
)
def test_final_status(end: RunEnd, status: JobStatus, words: str | None) -> None:
    got, message = final_status(end)
    assert got is status
    if words is None:
        assert message is None
    else:
        assert words in (message or "")


def test_credentials_stop_says_to_renew_them() -> None:
    _, message = final_status(RunEnd("j1", counts(pending=1), stop_reason="credentials rejected"))
    assert "renew them first" in (message or "")


@pytest.mark.parametrize(
    ("status", "given", "code"),
    [
        (JobStatus.SUCCEEDED, counts(succeeded=1), 0),
        (JobStatus.FAILED, counts(failed=1), 1),
        (JobStatus.FAILED, counts(pending=3), 1),  # the API failed: no item failed
        (JobStatus.ABORTED, counts(failed=1), 3),
        (JobStatus.INTERRUPTED, counts(in_doubt=1), 4),
        (JobStatus.INTERRUPTED, counts(pending=1), 130),
        (JobStatus.CANCELLED, counts(), 0),
        (JobStatus.CANCELLED, counts(failed=1), 1),
    ],
)
def test_exit_code(status: JobStatus, given: dict[str, int], code: int) -> None:
    assert exit_code_for(status, given) == code


def test_the_named_item_sets() -> None:
    assert UNFINISHED_ITEM_STATES == {
        ItemState.PENDING,
        ItemState.IN_FLIGHT,
        ItemState.SUBMITTED,
        ItemState.IN_DOUBT,
    }
    assert UNFINISHED_ITEM_STATES.isdisjoint(FINAL_ITEM_STATES)
    assert ACTED_ON_ITEM_STATES == set(ItemState) - {ItemState.SKIPPED, ItemState.CANCELLED}
    assert ACTIVE_ITEM_STATES == {ItemState.IN_FLIGHT, ItemState.SUBMITTED}
    assert ACTIVE_ITEM_STATES <= UNFINISHED_ITEM_STATES & ACTED_ON_ITEM_STATES
    assert OUTCOME_ITEM_STATES == {ItemState.SUCCEEDED, ItemState.FAILED, ItemState.IN_DOUBT}


def test_the_named_job_sets() -> None:
    """An interrupted job has not ended (a worker resumes it); an aborted one still has items
    to cancel; only a job that has not ended may be queued."""
    assert ENDED_STATUSES == {
        JobStatus.SUCCEEDED,
        JobStatus.FAILED,
        JobStatus.ABORTED,
        JobStatus.CANCELLED,
    }
    assert COMPLETE_STATUSES == {JobStatus.SUCCEEDED, JobStatus.CANCELLED}
    assert COMPLETE_STATUSES < UNCANCELLABLE_STATUSES < ENDED_STATUSES
    assert JobStatus.ABORTED not in UNCANCELLABLE_STATUSES
    assert QUEUEABLE_STATUSES == {JobStatus.PLANNED, JobStatus.QUEUED, JobStatus.INTERRUPTED}
    assert QUEUEABLE_STATUSES.isdisjoint(ENDED_STATUSES)


# -- the ledger: figures derived from the updates committed --------------------------------


def test_ledger_moves_items_between_counts_and_ignores_stale_reads() -> None:
    from fleetops.engine.commit import Ledger
    from fleetops.engine.types import RunStats
    from fleetops.records import ItemRecord, ItemUpdate

    def record(item_id: int, state: ItemState) -> ItemRecord:
        return ItemRecord(
            id=item_id,
            job_id="j",
            workspace_id=f"ws-{item_id}",
            region="us-east-1",
            state=state,
            attempts=0,
            seen_state=None,
            last_state=None,
            user_name=None,
            directory_id=None,
            bundle_id=None,
            reason=None,
            error_code=None,
            error_message=None,
            result=None,
            submitted_at=None,
            updated_at=0.0,
        )

    stats = RunStats()
    stats.reset_counts({"pending": 3, "skipped": 1})
    ledger = Ledger(stats)
    ledger.note([record(1, ItemState.PENDING), record(2, ItemState.PENDING)])
    ledger.apply([ItemUpdate(ids=[1, 2], state=ItemState.IN_FLIGHT, attempts_inc=1)])
    assert (stats.pending, stats.in_flight) == (1, 2)
    ledger.apply(
        [
            ItemUpdate(ids=[1], state=ItemState.PENDING, error_code="InternalFailure"),
            ItemUpdate(ids=[2], state=ItemState.FAILED, error_code="ResourceNotFound"),
        ]
    )
    assert (stats.pending, stats.in_flight, stats.failed, stats.retried_items) == (2, 0, 1, 1)
    ledger.note([record(2, ItemState.IN_FLIGHT)])  # a read begun before the last commit
    ledger.apply([ItemUpdate(ids=[2], state=ItemState.PENDING)])
    assert (stats.pending, stats.in_flight, stats.failed) == (3, 0, 0)
    assert stats.total == 4 and stats.eligible == 3


@given(
    st.lists(
        st.tuples(
            st.sampled_from(
                [
                    *range(1000, 1040),  # a job's consecutive ids
                    1,  # below the first id seen
                    1000 + (1 << 21),  # far past the range
                ]
            ),
            st.sampled_from([s.value for s in ItemState]),
            st.booleans(),
        ),
        max_size=60,
    )
)
def test_the_state_table_answers_as_a_dict_would(ops: list[tuple[int, str, bool]]) -> None:
    """One byte per item over the run's range of ids, a dict beyond it: the same answers."""
    from fleetops.engine.commit import StateTable

    table, model = StateTable(), {}
    for item_id, state, only_if_new in ops:
        if only_if_new:
            table.setdefault(item_id, state)
            model.setdefault(item_id, state)
        else:
            table.set(item_id, state)
            model[item_id] = state
        assert table.get(item_id) == model[item_id]
    for item_id in {i for i, _, _ in ops} | {999, 1040, 2}:
        assert table.get(item_id) == model.get(item_id)


def test_the_state_table_keeps_a_state_set_before_its_id_came_into_range() -> None:
    from fleetops.engine.commit import _SPAN, StateTable

    table = StateTable()
    table.set(1000, "pending")
    far = 1000 + _SPAN + 10  # beyond what the table grows by at once: kept in the dict
    table.set(far, "succeeded")
    table.set(far - 20, "pending")  # the table grows, not yet to ``far``
    table.set(far + 1, "pending")  # now past ``far``: its byte is 0, its state in the dict
    assert table.get(far) == "succeeded"
    table.set(far, "failed")
    assert table.get(far) == "failed"
