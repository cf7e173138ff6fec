"""Retry policy as data; tenacity is configured here and nowhere else.

A :class:`RetryPolicy` says how often and how patiently to retry, and which AWS error codes are
worth retrying. :func:`retrying` turns it into a tenacity controller that retries
:class:`~fleetops.errors.TransientAwsError` with full-jitter exponential backoff.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio
import tenacity

from fleetops.errors import TransientAwsError

__all__ = ["THROTTLING_CODES", "RetryPolicy", "is_throttling_code", "retrying"]

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

    ``attempts`` counts every try, the first included. The wait before retry *n* is uniformly
    random in ``[0, min(cap, base * 2**n)]`` (full jitter), so many tasks throttled together do
    not come back together.
    """

    attempts: int = 8
    base: float = 0.25
    cap: float = 20.0
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
        if self.attempts < 1:
            raise ValueError(f"attempts must be at least 1, not {self.attempts!r}")
        if self.base < 0 or self.cap < 0:
            raise ValueError("base and cap must not be negative")

    def is_retryable_code(self, code: str) -> bool:
        """Whether an AWS error (or per-item failure) with ``code`` is worth another try."""
        return code in self.retryable_codes


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
        stop=tenacity.stop_after_attempt(policy.attempts),
        reraise=True,
        sleep=sleep,
        before_sleep=before_sleep,
    )
