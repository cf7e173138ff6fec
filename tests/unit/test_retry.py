"""RetryPolicy and retrying(): what is retried, how often, how long it waits."""

from __future__ import annotations

import pytest
import tenacity

from fleetops.aws.retry import RetryPolicy, is_throttling_code, retrying
from fleetops.errors import AwsError, TransientAwsError


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


async def run(policy: RetryPolicy, failures: list[Exception], sleeps: Sleeps) -> int:
    """Run an operation that raises ``failures`` in turn, then succeeds; return attempts made."""
    attempts = 0
    async for attempt in retrying(policy, sleep=sleeps):
        with attempt:
            attempts += 1
            if failures:
                raise failures.pop(0)
    return attempts


def test_defaults_and_codes() -> None:
    policy = RetryPolicy()
    assert (policy.attempts, policy.base, policy.cap) == (8, 0.25, 20.0)
    assert policy.is_retryable_code("ThrottlingException")
    assert policy.is_retryable_code("InternalFailure")
    assert policy.is_retryable_code("RequestTimeoutException")
    assert not policy.is_retryable_code("ValidationException")
    assert not policy.is_retryable_code("ResourceNotFoundException")
    custom = RetryPolicy(retryable_codes=frozenset({"Flaky"}))
    assert custom.is_retryable_code("Flaky")
    assert not custom.is_retryable_code("ThrottlingException")


def test_throttling_codes() -> None:
    assert is_throttling_code("ThrottlingException")
    assert is_throttling_code("RequestLimitExceeded")
    assert not is_throttling_code("InternalFailure")


@pytest.mark.parametrize("kwargs", [{"attempts": 0}, {"base": -1.0}, {"cap": -1.0}])
def test_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


async def test_transient_errors_are_retried_until_success() -> None:
    sleeps = Sleeps()
    failures: list[Exception] = [TransientAwsError("ThrottlingException", "slow down")] * 3
    assert await run(RetryPolicy(attempts=5, base=1.0, cap=3.0), failures, sleeps) == 4
    assert len(sleeps.waits) == 3
    # Full jitter: each wait is within [0, min(cap, base * 2**n)].
    assert all(0 <= wait <= bound for wait, bound in zip(sleeps.waits, [1, 2, 3], strict=True))


async def test_last_transient_error_is_reraised_as_is() -> None:
    sleeps = Sleeps()
    last = TransientAwsError("InternalFailure", "boom", "req-3")
    failures: list[Exception] = [TransientAwsError("InternalFailure", "boom"), last, last]
    with pytest.raises(TransientAwsError) as info:
        await run(RetryPolicy(attempts=3, base=0.0), failures, sleeps)
    assert info.value is last
    assert len(sleeps.waits) == 2


@pytest.mark.parametrize("error", [AwsError("ValidationException", "no"), RuntimeError("bug")])
async def test_other_errors_are_not_retried(error: Exception) -> None:
    sleeps = Sleeps()
    with pytest.raises(type(error)):
        await run(RetryPolicy(), [error], sleeps)
    assert sleeps.waits == []


async def test_before_sleep_hook_sees_each_retry() -> None:
    seen: list[int] = []

    def hook(state: tenacity.RetryCallState) -> None:
        seen.append(state.attempt_number)

    attempts = 0
    async for attempt in retrying(RetryPolicy(attempts=4, base=0.0), before_sleep=hook):
        with attempt:
            attempts += 1
            if attempts < 3:
                raise TransientAwsError("Throttling", "again")
    assert seen == [1, 2]
