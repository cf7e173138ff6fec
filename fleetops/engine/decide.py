"""The engine's decisions about items and calls, as pure functions of what was observed.

The orchestrators (runner, scope runs, verifier) gather observations, ask these, and commit the
answer; nothing here does I/O. The verification verdict is the action catalogue's
(``ActionSpec.judge_observed``), the retry of an item is :mod:`fleetops.aws.retry`'s, the error
budget is :mod:`fleetops.catalogue.options`'s and the job's final status is
:mod:`fleetops.states`'s.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

from fleetops.aws.codes import Refusal, refusal, split_code
from fleetops.aws.retry import is_throttling_code, retry_item
from fleetops.states import ItemState

__all__ = [
    "BREAKER_THRESHOLD",
    "GONE_SINCE_PLAN",
    "STATE_CHANGED",
    "AfterTransient",
    "CircuitBreaker",
    "Outcome",
    "Refusal",
    "after_transient",
    "failed_request",
    "needs_describe",
    "reconcile_verdict",
    "refusal",
]

STATE_CHANGED = "state changed since the plan"
GONE_SINCE_PLAN = "gone since the plan"
BREAKER_THRESHOLD = 5

_STATE_IN_MESSAGE = re.compile(r"\b(?:state|status)\b[^A-Z]*\b([A-Z][A-Z_]{2,})\b")


def reconcile_verdict(*, evidence: bool, destructive: bool, retry_safe: bool) -> ItemState:
    """An item found ``in_flight`` (its call may or may not have happened).

    Evidence of the call → ``submitted`` (verify it); none → ``pending`` (send again) when that is
    harmless (a non-destructive action, or one idempotent in effect), else ``in_doubt`` (held for
    the operator).
    """
    if evidence:
        return ItemState.SUBMITTED
    if not destructive or retry_safe:
        return ItemState.PENDING
    return ItemState.IN_DOUBT


class AfterTransient(StrEnum):
    """What to do with a batch whose call failed transiently after its retries."""

    REQUEUE = "requeue"  # send again later (or fail the items that used their attempts)
    RECONCILE = "reconcile"  # the call may have happened: describe the items first


def after_transient(*, not_executed: bool, retry_safe: bool) -> AfterTransient:
    """A call that certainly did nothing, or an action safe to repeat, is sent again; otherwise
    the WorkSpaces are described before anything is re-sent."""
    if not_executed or retry_safe:
        return AfterTransient.REQUEUE
    return AfterTransient.RECONCILE


def needs_describe(code: str, message: str) -> bool:
    """Whether the WorkSpace must be described to know what a refusal means: a state refusal
    that does not say the state now, or a not-found that does not say what was not found (a
    one-WorkSpace call's ``ResourceNotFoundException`` may be about its bundle)."""
    kind = refusal(code)
    if kind is Refusal.STATE:
        return _STATE_IN_MESSAGE.search(message or "") is None
    return kind is Refusal.GONE and split_code(code)[1] == ""


@dataclass(frozen=True)
class Outcome:
    """The fate of one item after its request was answered with an error."""

    state: ItemState  # pending (retry), failed, or skipped
    reason: str | None = None  # skipped: why


def failed_request(
    code: str,
    message: str,
    *,
    retryable: bool,
    attempts: int,
    max_attempts: int,
    found: bool | None = None,
    now_state: str | None = None,
) -> Outcome:
    """One entry of a ``FailedRequests`` answer (or a one-WorkSpace call's error), by family.

    ``found``/``now_state`` are what a Describe after the refusal showed (None: not described).
    A state refusal → ``skipped: state changed since the plan (now X)``, X from the message or
    the Describe (gone by then: ``gone since the plan``); the WorkSpace not found →
    ``skipped: gone since the plan`` (unless a Describe still finds it: then something else
    was not found, and the item fails); an operation in progress, or a retryable code, with
    attempts left → back to ``pending``. Anything else → ``failed`` with the code as given.
    """
    kind = refusal(code)
    if kind is Refusal.STATE:
        if found is False:
            return Outcome(ItemState.SKIPPED, GONE_SINCE_PLAN)
        match = _STATE_IN_MESSAGE.search(message or "")
        state = match.group(1) if match is not None else now_state
        reason = STATE_CHANGED if state is None else f"{STATE_CHANGED} (now {state})"
        return Outcome(ItemState.SKIPPED, reason)
    if kind is Refusal.GONE and found is not True:
        return Outcome(ItemState.SKIPPED, GONE_SINCE_PLAN)
    if kind is Refusal.IN_PROGRESS:
        retryable = True
    if retry_item(retryable, attempts, max_attempts):
        return Outcome(ItemState.PENDING)
    return Outcome(ItemState.FAILED)


@dataclass
class CircuitBreaker:
    """Stops calling an operation that keeps failing the same way.

    ``threshold`` failures in a row of one operation with one error code (not throttling: that
    is the quota's business) open the breaker; a success of the operation, or a failure with
    another code, starts the count again.
    """

    threshold: int = BREAKER_THRESHOLD
    _streak: dict[str, tuple[str, int]] = field(default_factory=dict)
    opened: tuple[str, str, str] | None = None  # operation, code, message

    def record_success(self, operation: str) -> None:
        self._streak.pop(operation, None)

    def record_failure(self, operation: str, code: str, message: str) -> bool:
        """Count a failure; True when it opens the breaker."""
        if is_throttling_code(code) or self.opened is not None:
            return False
        if refusal(code) is not Refusal.OTHER:
            return False  # one WorkSpace's answer (its state, gone, busy): not the operation's

        last_code, count = self._streak.get(operation, (code, 0))
        count = count + 1 if last_code == code else 1
        self._streak[operation] = (code, count)
        if count >= self.threshold:
            self.opened = (operation, code, message)
            return True
        return False

    @property
    def is_open(self) -> bool:
        return self.opened is not None

    def reason(self) -> str | None:
        if self.opened is None:
            return None
        operation, code, message = self.opened
        return (
            f"{operation} failed {self.threshold} times in a row with {code} "
            f"({message.strip()[:200]}): stopped calling it"
        )
