"""TokenBucket and QuotaRegistry: quota spent exactly, FIFO fairness, adaptive back-off."""

from __future__ import annotations

import logging
import time

import anyio
import pytest

from fleetops.aws.ratelimit import QUOTAS, QuotaRegistry, QuotaShares, TokenBucket


class FakeTime:
    """A clock that only moves when a task sleeps on it; sleeps are recorded."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await anyio.sleep(0)

    def bucket(self, rate: float | None, burst: int, **kwargs: bool) -> TokenBucket:
        return TokenBucket(rate, burst, clock=self.clock, sleep=self.sleep, **kwargs)


async def test_starts_full_and_spends_exactly_the_quota() -> None:
    fake = FakeTime()
    bucket = fake.bucket(20, 50)
    start = fake.now
    for _ in range(500):
        await bucket.acquire()
    assert fake.now - start == pytest.approx((500 - 50) / 20)
    # The first 50 came from the burst without any sleep; then one sleep per token.
    assert len(fake.sleeps) == 450


async def test_burst_is_free_then_refills_at_rate() -> None:
    fake = FakeTime()
    bucket = fake.bucket(2, 5)
    for _ in range(5):
        await bucket.acquire()
    assert fake.sleeps == []
    fake.now += 1.0  # one idle second refills two tokens
    await bucket.acquire()
    await bucket.acquire()
    assert fake.sleeps == []
    await bucket.acquire()
    assert fake.sleeps == [pytest.approx(0.5)]


async def test_refill_never_exceeds_burst() -> None:
    fake = FakeTime()
    bucket = fake.bucket(10, 3)
    fake.now += 3600
    assert bucket.tokens == 3


async def test_unlimited_returns_at_once() -> None:
    fake = FakeTime()
    bucket = fake.bucket(None, 1)
    for _ in range(10_000):
        await bucket.acquire()
    assert fake.sleeps == []
    assert bucket.effective_rate is None


async def test_concurrent_waiters_are_served_in_order_with_one_sleep_per_token() -> None:
    fake = FakeTime()
    bucket = fake.bucket(10, 1)
    await bucket.acquire()  # empty the bucket
    order: list[int] = []

    async def worker(index: int) -> None:
        await bucket.acquire()
        order.append(index)

    async with anyio.create_task_group() as tg:
        for index in range(300):
            tg.start_soon(worker, index)
            await anyio.sleep(0)  # make the arrival order the index order
    assert order == list(range(300))
    assert len(fake.sleeps) == 300  # no herd: only the head of the queue sleeps
    assert fake.now - 1000.0 == pytest.approx(300 / 10)
    assert bucket.waiting == 0


async def test_cancelled_waiter_leaves_the_queue_and_hands_on_its_turn() -> None:
    fake = FakeTime()
    proceed = anyio.Event()

    async def gated_sleep(seconds: float) -> None:
        fake.sleeps.append(seconds)
        await proceed.wait()
        fake.now += seconds

    bucket = TokenBucket(1, 1, clock=fake.clock, sleep=gated_sleep)
    await bucket.acquire()
    served: list[str] = []

    async def waiter(name: str, scope: anyio.CancelScope) -> None:
        with scope:
            await bucket.acquire()
            served.append(name)

    first, second = anyio.CancelScope(), anyio.CancelScope()
    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter, "first", first)
        await anyio.sleep(0)
        tg.start_soon(waiter, "second", second)
        while len(fake.sleeps) < 1 or bucket.waiting < 2:
            await anyio.sleep(0)
        first.cancel()  # the head, asleep for its token
        while len(fake.sleeps) < 2:  # the second becomes head and sleeps in turn
            await anyio.sleep(0)
        proceed.set()
    assert served == ["second"]
    assert bucket.waiting == 0
    assert len(fake.sleeps) == 2


async def test_a_lone_throttle_empties_the_bucket_but_keeps_the_rate() -> None:
    fake = FakeTime()
    bucket = fake.bucket(20, 50)
    bucket.on_throttle()
    assert bucket.effective_rate == 20  # jitter of arrivals, not congestion
    assert bucket.tokens == 0
    fake.now += 30.0  # a quiet spell: the next lone throttle keeps the rate too
    bucket.on_throttle()
    assert bucket.effective_rate == 20
    assert bucket.throttles == 2


def _throttled_twice(fake: FakeTime, bucket: TokenBucket) -> None:
    bucket.on_throttle()
    fake.now += 2.0
    bucket.on_throttle()


async def test_repeated_throttles_halve_the_rate_empty_the_bucket_and_floor() -> None:
    fake = FakeTime()
    bucket = fake.bucket(20, 50)
    _throttled_twice(fake, bucket)
    assert bucket.effective_rate == 10
    assert bucket.tokens == 0
    assert bucket.throttles == 2
    for _ in range(20):
        fake.now += 2.0  # separate congestion events
        bucket.on_throttle()
    assert bucket.effective_rate == pytest.approx(20 / 20)  # the floor
    assert bucket.throttles == 22


async def test_rate_changes_are_logged_one_line_each(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeTime()
    bucket = fake.bucket(10, 5)
    with caplog.at_level(logging.INFO, logger="fleetops.aws.ratelimit"):
        bucket.on_throttle()  # a lone throttle: no change of rate, nothing to say
        assert not caplog.records
        fake.now += 0.5
        bucket.on_throttle()
        for _ in range(1000):
            bucket.on_success()
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["throttled again within 10 s: rate lowered to 5.00 calls/s (quota 10)",
                     "rate back to the quota: 10 calls/s"]  # fmt: skip


async def test_throttles_answered_together_count_as_one_decrease() -> None:
    fake = FakeTime()
    bucket = fake.bucket(8, 5)
    for _ in range(5):
        bucket.on_throttle()
    assert bucket.effective_rate == 4
    assert bucket.throttles == 5


async def test_after_throttles_the_next_token_waits_at_the_reduced_rate() -> None:
    fake = FakeTime()
    bucket = fake.bucket(4, 5)
    _throttled_twice(fake, bucket)
    await bucket.acquire()
    assert fake.sleeps == [pytest.approx(1 / 2)]


async def test_success_recovers_additively_to_the_configured_rate() -> None:
    fake = FakeTime()
    bucket = fake.bucket(10, 5)
    _throttled_twice(fake, bucket)
    assert bucket.effective_rate == 5
    bucket.on_success()
    assert bucket.effective_rate is not None and 5 < bucket.effective_rate <= 5.5
    for _ in range(1000):
        bucket.on_success()
    assert bucket.effective_rate == 10


async def test_not_adaptive_keeps_rate_but_still_empties() -> None:
    fake = FakeTime()
    bucket = fake.bucket(10, 5, adaptive=False)
    bucket.on_throttle()
    assert bucket.effective_rate == 10
    assert bucket.tokens == 0
    assert bucket.throttles == 1


async def test_reconfigure_changes_rate_and_caps_tokens() -> None:
    fake = FakeTime()
    bucket = fake.bucket(2, 5)
    bucket.on_throttle()
    bucket.reconfigure(50, 3)
    assert (bucket.rate, bucket.burst, bucket.effective_rate) == (50, 3, 50)
    fake.now += 10
    assert bucket.tokens == 3
    bucket.reconfigure(None, 3)
    await bucket.acquire()
    assert fake.sleeps == []


@pytest.mark.parametrize(("rate", "burst"), [(0, 5), (-1, 5), (2, 0)])
def test_rejects_nonsense(rate: float, burst: int) -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate, burst)


def test_registry_shares_one_bucket_per_key_and_reconfigures() -> None:
    registry = QuotaRegistry()
    a = registry.bucket(("default", "us-east-1", ""), 2, 5)
    assert registry.bucket(("default", "us-east-1", ""), 2, 5) is a
    assert registry.bucket(("default", "eu-west-1", ""), 2, 5) is not a
    assert registry.bucket(("default", "us-east-1", ""), 10, 20) is a
    assert (a.rate, a.burst) == (10, 20)
    assert isinstance(QUOTAS, QuotaRegistry)


async def test_real_time_rate_is_respected() -> None:
    bucket = TokenBucket(50, 5)
    started = time.monotonic()

    async def worker() -> None:
        for _ in range(5):
            await bucket.acquire()

    async with anyio.create_task_group() as tg:
        for _ in range(5):
            tg.start_soon(worker)
    elapsed = time.monotonic() - started
    # 25 tokens, 5 from the burst, 20 at 50/s: 0.4 s.
    assert 0.38 <= elapsed < 0.8


# -- one quota shared by several runners ---------------------------------------------------------


async def test_a_share_spends_its_part_of_the_rate_and_burst() -> None:
    fake = FakeTime()
    bucket = fake.bucket(4, 6)
    bucket.set_share(2)  # two runners: 1.9 calls/s here (95 % of half) and a burst of 2.85
    start = fake.now
    for _ in range(2 + 19):
        await bucket.acquire()
    assert fake.now - start == pytest.approx((19 - 0.85) / 1.9)
    bucket.set_share(1)  # the other runner left: the whole quota again
    start = fake.now
    for _ in range(20):
        await bucket.acquire()
    assert fake.now - start == pytest.approx(20 / 4)


async def test_a_share_keeps_the_adaptive_back_off() -> None:
    fake = FakeTime()
    bucket = fake.bucket(4, 4)
    bucket.on_throttle()
    fake.now += 1.0
    bucket.on_throttle()  # a second throttle soon after: the effective rate halves
    assert bucket.effective_rate == pytest.approx(2)
    bucket.set_share(2)
    assert bucket.effective_rate == pytest.approx(2)  # kept across the re-balance
    start = fake.now
    for _ in range(10):
        await bucket.acquire()
    assert fake.now - start == pytest.approx(10 / (2 * 0.475), abs=1.0)


class FakeHolders:
    """Holder rows in a dict: scope → holder → renewals."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, int]] = {}
        self.released: list[tuple[str, str]] = []

    async def renew(self, scope: str, holder: str, ttl: float) -> int:
        held = self.rows.setdefault(scope, {})
        held[holder] = held.get(holder, 0) + 1
        return len(held)

    async def release(self, scope: str, holder: str) -> None:
        self.rows.get(scope, {}).pop(holder, None)
        self.released.append((scope, holder))


async def test_runners_of_one_scope_split_its_quota_and_rebalance() -> None:
    holders = FakeHolders()
    holders.rows["us-east-1"] = {"other-host:1:aa": 1}  # another runner already holds it
    mine = TokenBucket(2, 5)
    shares = QuotaShares("this-host:2:bb")
    async with shares.sharing(holders, {"us-east-1": mine}, interval=0.01):
        assert mine.share == pytest.approx(0.475)  # registered (and halved) before any call
        assert "this-host:2:bb" in holders.rows["us-east-1"]
        del holders.rows["us-east-1"]["other-host:1:aa"]  # the other runner's row expired
        with anyio.fail_after(5):
            while mine.share != 1.0:
                await anyio.sleep(0.01)
    assert holders.released == [("us-east-1", "this-host:2:bb")]
    assert holders.rows["us-east-1"] == {}


async def test_a_runner_joining_others_starts_without_a_burst() -> None:
    fake = FakeTime()
    holders = FakeHolders()
    holders.rows["us-east-1"] = {"other-host:1:aa": 1}
    bucket = fake.bucket(2, 5)
    async with QuotaShares("this-host:2:bb").sharing(holders, {"us-east-1": bucket}, interval=0.5):
        # No burst (the other runner may just have spent it), and no call before the other
        # runner's next renewal has shown it this one: a second at 0.95 call/s here.
        assert bucket.tokens == pytest.approx(-0.95)
        start = fake.now
        await bucket.acquire()
        assert fake.now - start == pytest.approx(1.95 / 0.95)
    alone = fake.bucket(2, 5)
    async with QuotaShares("h:3:cc").sharing(FakeHolders(), {"us-east-1": alone}):
        assert alone.tokens == 5


async def test_jobs_of_one_process_are_one_holder() -> None:
    holders = FakeHolders()
    bucket = TokenBucket(2, 5)
    shares = QuotaShares("this-host:2:bb")
    async with shares.sharing(holders, {"eu-west-1": bucket}, interval=0.01):
        async with shares.sharing(holders, {"eu-west-1": bucket}, interval=0.01):
            assert list(holders.rows["eu-west-1"]) == ["this-host:2:bb"]
            assert bucket.share == 1.0
        assert holders.released == []  # the first job still runs
    assert holders.released == [("eu-west-1", "this-host:2:bb")]


async def test_unlimited_buckets_register_nothing() -> None:
    holders = FakeHolders()
    async with QuotaShares("h").sharing(holders, {"us-east-1": TokenBucket(None, 1)}):
        pass
    assert holders.rows == {}


async def test_the_bodys_error_comes_out_unwrapped() -> None:
    with pytest.raises(KeyError):
        async with QuotaShares("h").sharing(FakeHolders(), {"us-east-1": TokenBucket(2, 5)}):
            raise KeyError("the job's own error")


class _ServerQuota:
    """The account's own bucket on the server side, on the fake clock."""

    def __init__(self, fake: FakeTime, rate: float, burst: int) -> None:
        self.fake, self.rate, self.burst = fake, rate, burst
        self.tokens, self.last = float(burst), fake.now

    def admit(self) -> bool:
        now = self.fake.now
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


async def _send_for(
    fake: FakeTime, bucket: TokenBucket, server: _ServerQuota, seconds: float
) -> list[tuple[float, bool]]:
    """One sender spending the client bucket for ``seconds``: (time, admitted) per request."""
    log: list[tuple[float, bool]] = []
    end = fake.now + seconds
    while fake.now < end:
        await bucket.acquire()
        admitted = server.admit()
        log.append((fake.now, admitted))
        if admitted:
            bucket.on_success()
        else:
            bucket.on_throttle()
    return log


@pytest.mark.parametrize("configured", [10.0, 5.0, 20.0])
async def test_a_rate_above_the_real_quota_is_learned(configured: float) -> None:
    fake = FakeTime()
    bucket = fake.bucket(configured, 5)
    server = _ServerQuota(fake, 2.0, 5)
    start = fake.now
    log = await _send_for(fake, bucket, server, 120.0)
    later = [ok for at, ok in log if at >= start + 10]
    throttled = later.count(False) / len(later)
    assert throttled <= 0.02, f"{throttled:.1%} throttled after the first 10 s"
    assert bucket.learned_rate is not None and 1.7 <= bucket.learned_rate <= 2.0
    # what the account allows is still spent: at least 90 % of its 2 calls/s
    assert later.count(True) / 110 >= 0.9 * 2.0


async def test_the_right_rate_learns_nothing_and_a_raised_quota_is_found_again() -> None:
    fake = FakeTime()
    bucket = fake.bucket(2.0, 5)
    server = _ServerQuota(fake, 2.0, 5)
    log = await _send_for(fake, bucket, server, 60.0)
    assert all(ok for _, ok in log)
    assert bucket.learned_rate is None
    fast = fake.bucket(10.0, 5)
    server = _ServerQuota(fake, 2.0, 5)
    await _send_for(fake, fast, server, 30.0)
    learned = fast.learned_rate
    assert learned is not None and learned < 2.0
    server.rate = 6.0  # the quota was raised: probes above the learned rate succeed
    await _send_for(fake, fast, server, 120.0)
    assert fast.learned_rate is not None and fast.learned_rate > learned * 1.1


async def test_an_urgent_call_takes_the_next_token_ahead_of_the_queue() -> None:
    from fleetops.aws.ratelimit import urgent

    fake = FakeTime()
    bucket = fake.bucket(2, 1)
    await bucket.acquire()  # empty now
    order: list[str] = []

    async def normal(name: str) -> None:
        await bucket.acquire()
        order.append(name)

    async def look() -> None:
        with urgent():
            await bucket.acquire()
        order.append("look")

    async with anyio.create_task_group() as tg:
        for name in ("a", "b", "c"):
            tg.start_soon(normal, name)
        await anyio.sleep(0)
        tg.start_soon(look)
    # ahead of everyone but the head already asleep for its token; the quota is still exact
    assert order.index("look") <= 1 and [n for n in order if n != "look"] == ["a", "b", "c"]
    assert fake.now - 1000.0 == pytest.approx(4 * 0.5)


async def test_a_call_made_ahead_comes_after_the_urgent_ones_before_the_others() -> None:
    from fleetops.aws.ratelimit import ahead, urgent

    fake = FakeTime()
    bucket = fake.bucket(2, 1)
    await bucket.acquire()  # empty now
    order: list[str] = []

    async def call(name: str, priority: object = None) -> None:
        if priority is None:
            await bucket.acquire()
        else:
            with priority():  # type: ignore[operator]
                await bucket.acquire()
        order.append(name)

    async with anyio.create_task_group() as tg:
        tg.start_soon(call, "head")
        await anyio.sleep(0)  # asleep for the next token
        for name in ("a", "b"):
            tg.start_soon(call, name)
        await anyio.sleep(0)
        tg.start_soon(call, "later look", ahead)
        tg.start_soon(call, "first look", urgent)
    # (the head of the plain queue may already be asleep for its token: it keeps it)
    assert order.index("first look") < order.index("later look") < order.index("b")
    assert [n for n in order if "look" not in n] == ["head", "a", "b"]
    assert fake.now - 1000.0 == pytest.approx(5 * 0.5)  # the quota is still exact
