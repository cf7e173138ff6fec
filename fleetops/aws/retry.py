"""Retry policy as data; tenacity is configured here and nowhere else.

Two levels, both decided here:

- a *call*: :class:`RetryPolicy` says how often and how patiently one logical call is retried
  (throttling patiently, a server error only a few times: an operation that is broken answers
  the same way however often it is asked), and which AWS error codes are worth retrying;
  :func:`retrying` turns it into a tenacity controller with full-jitter exponential backoff.
- an *item*: a WorkSpace whose request failed in a retryable way goes back to pending, with a
  backoff, until it has used its attempts (:func:`retry_item`, :func:`item_backoff`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio
import tenacity

from fleetops.errors import TransientAwsError

__all__ = [
    "ITEM_BACKOFF_BASE",
    "ITEM_BACKOFF_CAP",
    "THROTTLING_CODES",
    "RetryPolicy",
    "attempts_spent",
    "is_throttling_code",
    "item_backoff",
    "retry_item",
    "retrying",
]

#: Codes by which AWS says "slow down" (as opposed to "something broke, try again").
THROTTLING_CODES: frozenset[str] = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "RequestThrottledException",
        "RequestThrottled",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "SlowDown",
    }
)


def is_throttling_code(code: str) -> bool:
    """Whether ``code`` means the account's quota was exceeded."""
    return code in THROTTLING_CODES


@dataclass(frozen=True)
class RetryPolicy:
    """How to retry transient failures.

    ``attempts`` counts every try, the first included; a call whose last failure is not throttling
    (a 5xx, a time-out) stops after ``server_error_attempts`` (an API that answers 500 for good
    costs a few requests per call, not ``attempts``). The wait before retry *n* is uniformly
    random in ``[0, min(cap, base * 2**n)]`` (full jitter), so many tasks throttled together do
    not come back together.
    """

    attempts: int = 8
    base: float = 0.25
    cap: float = 20.0
    server_error_attempts: int = 3
    retryable_codes: frozenset[str] = frozenset(
        {
            "ThrottlingException",
            "Throttling",
            "RequestLimitExceeded",
            "TooManyRequestsException",
            "InternalFailure",
            "InternalError",
            "InternalServerError",
            "ServiceUnavailable",
            "ServiceUnavailableException",
            "RequestTimeout",
            "RequestTimeoutException",
        }
    )

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.server_error_attempts < 1:
            raise ValueError(f"attempts must be at least 1, not {self.attempts!r}")
        if self.base < 0 or self.cap < 0:
            raise ValueError("base and cap must not be negative")

    def is_retryable_code(self, code: str) -> bool:
        """Whether an AWS error (or per-item failure) with ``code`` is worth another try."""
        return code in self.retryable_codes

    def attempts_for(self, code: str) -> int:
        """How many attempts a call gets when its failures answer ``code``."""
        if is_throttling_code(code):
            return self.attempts
        return min(self.attempts, self.server_error_attempts)


def attempts_spent(policy: RetryPolicy, code: str, *, retried: bool) -> int:
    """How many attempts a call that failed for good with ``code`` made, by the policy's rule:
    all it was allowed when its failures were retried, else one."""
    return policy.attempts_for(code) if retried else 1


#: An item sent back to pending waits ``min(cap, base * 2**attempts)`` seconds before it is sent
#: again (attempts: those it has made so far, before the one that just failed).
ITEM_BACKOFF_BASE = 0.5
ITEM_BACKOFF_CAP = 30.0


def item_backoff(attempts: int) -> float:
    """Seconds an item waits before it is sent again, after ``attempts`` earlier attempts."""
    return min(ITEM_BACKOFF_CAP, ITEM_BACKOFF_BASE * 2.0**attempts)


def retry_item(retryable: bool, attempts: int, max_attempts: int) -> bool:
    """Whether an item whose request just failed goes back to pending (else it fails).

    ``attempts`` are those made before the one that just failed; ``max_attempts`` counts every
    attempt, the first included.
    """
    return retryable and attempts + 1 < max_attempts


class _StopRule(tenacity.stop.stop_base):
    """Stop after ``attempts``, or ``server_error_attempts`` when the last failure is not
    throttling."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None else None
        code = exc.code if isinstance(exc, TransientAwsError) else "ThrottlingException"
        return retry_state.attempt_number >= self.policy.attempts_for(code)


def retrying(
    policy: RetryPolicy,
    *,
    before_sleep: Callable[[tenacity.RetryCallState], None] | None = None,
    sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    retry_on: Callable[[BaseException], bool] | None = None,
) -> tenacity.AsyncRetrying:
    """A tenacity controller for ``policy``: ``async for attempt in retrying(p): with attempt: …``.

    Retries :class:`TransientAwsError` only; after the last attempt the last error is re-raised
    as is (``reraise=True``), never wrapped in ``tenacity.RetryError``. ``before_sleep`` is called
    before each wait (for counters and logs); ``sleep`` is injectable for tests. ``retry_on``
    narrows further which transient errors are retried (e.g. only those that prove the request
    did nothing, for calls that must not be repeated blindly).
    """
    retry: tenacity.retry_base = tenacity.retry_if_exception_type(TransientAwsError)
    if retry_on is not None:
        retry = retry & tenacity.retry_if_exception(retry_on)
    return tenacity.AsyncRetrying(
        retry=retry,
        wait=tenacity.wait_random_exponential(multiplier=policy.base, max=policy.cap),
        stop=_StopRule(policy),
        reraise=True,
        sleep=sleep,
        before_sleep=before_sleep,
    )


class DeliveryError(Exception):
    """A notification not delivered this time (a refused connection, HTTP 5xx, an SNS error):
    ``reason`` says why in words that carry no URL or secret."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def delivery_retrying(
    *,
    attempts: int = 3,
    base: float = 1.0,
    cap: float = 8.0,
    sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
) -> tenacity.AsyncRetrying:
    """A tenacity controller for one notification: ``attempts`` tries of :class:`DeliveryError`
    with exponential backoff from ``base`` seconds (jittered, at most ``cap``); the last error is
    re-raised as is."""
    return tenacity.AsyncRetrying(
        retry=tenacity.retry_if_exception_type(DeliveryError),
        wait=tenacity.wait_random_exponential(multiplier=base, max=cap),
        stop=tenacity.stop_after_attempt(attempts),
        reraise=True,
        sleep=sleep,
    )
