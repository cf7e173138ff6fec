"""The account's API quota, enforced on the client side.

AWS meters WorkSpaces calls with a token bucket per account and region (documented default: 2
calls/s sustained, burst 5). :class:`TokenBucket` mirrors it: it starts full, refills at the
effective rate, and lets a run spend exactly the quota. When the server still answers
ThrottlingException (another client shares the account, or the quota is lower than configured)
the bucket halves its effective rate and then recovers additively, per success. A lone throttle
after a quiet spell is the jitter of requests arriving closer together than they were sent: it
empties the bucket but keeps the rate (halving for it would cost a small job many seconds).

A quota set above the account's real one (``--rate 10`` where AWS allows 2) is *learned*:
while throttled, the calls the server accepts come at its own rate, so each decrease measures
the accepted rate over the last :data:`SAMPLE_WINDOW` seconds and caps the effective rate (and
its recovery) just under it (:data:`LEARNED_HEADROOM`). The cap is probed upwards only after
:data:`PROBE_QUIET` seconds without a throttle (a raised quota, a neighbour gone), and a
throttle while probing falls back to it at once.

Waiters queue in FIFO order. Only the head of the queue sleeps (once per token); everyone else
waits on their own event and is woken by the one before them, so hundreds of waiting tasks cost
one timer, not a thundering herd. A call made inside :func:`urgent` (verification's first look
at WorkSpaces just called: a transition not looked at in time is missed for good) queues ahead
of every other waiter: it gets the next token, whatever submissions wait. A call made inside
:func:`ahead` (verification's later looks, due when the transition should have ended) comes
next, before the other calls: submission spends every token verification does not need, and a
look is never held back seconds behind the submissions queued before it fell due (the last
batches' looks, and the job's end, would come that much later).

:data:`QUOTAS` is the process-wide registry: one bucket per (profile, region, endpoint), shared
by every operation of every job in the process, verification polls included.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager
from contextvars import ContextVar
from typing import Protocol

import anyio

__all__ = [
    "AHEAD",
    "PLAIN",
    "QUOTAS",
    "SHARES",
    "URGENT",
    "QuotaHolders",
    "QuotaRegistry",
    "QuotaShares",
    "TokenBucket",
    "ahead",
    "call_priority",
    "is_urgent",
    "last_grant",
    "urgent",
]

log = logging.getLogger(__name__)

#: The effective rate never falls below ``rate / FLOOR_DIVISOR`` however often we are throttled.
FLOOR_DIVISOR = 20.0
#: Each success adds ``rate / RECOVERY_STEPS`` to the effective rate (additive increase).
RECOVERY_STEPS = 20.0
#: A throttle with none in the previous ``QUIET_WINDOW`` seconds only empties the bucket.
QUIET_WINDOW = 10.0
#: Throttles answered within this many seconds of a decrease are one congestion event: the
#: calls that were in flight together all come back throttled, and halving once per answer
#: would collapse the rate to the floor for a single overshoot.
DECREASE_COOLDOWN = 1.0
#: Runners sharing a quota spend this fraction of it between them (see ``set_share``).
SHARED_HEADROOM = 0.95
#: Successes of the last this many seconds measure the rate the server accepts when throttled.
SAMPLE_WINDOW = 5.0
#: A measurement needs at least this many successes, over at least this many seconds.
MIN_SAMPLES = 6
MIN_SAMPLE_SPAN = 1.5
#: The learned rate is this fraction of the accepted rate measured (slack for jitter).
LEARNED_HEADROOM = 0.97
#: Seconds without a throttle after which a learned cap is raised by :data:`PROBE_STEP`.
PROBE_QUIET = 30.0
PROBE_STEP = 1.03
# Tolerance for float rounding when the head wakes exactly when its token is due.
_EPSILON = 1e-9


#: A call's priority for the next token: urgent, ahead of the others, or in plain FIFO order.
URGENT, AHEAD, PLAIN = 0, 1, 2
_PRIORITY: ContextVar[int] = ContextVar("fleetops_call_priority", default=PLAIN)


@contextmanager
def _priority(level: int) -> Iterator[None]:
    token = _PRIORITY.set(level)
    try:
        yield
    finally:
        _PRIORITY.reset(token)


def urgent() -> AbstractContextManager[None]:
    """Calls made inside (in this task) take the next token ahead of every other waiter."""
    return _priority(URGENT)


def ahead() -> AbstractContextManager[None]:
    """Calls made inside (in this task) take the next token after the urgent ones, ahead of
    the plain waiters."""
    return _priority(AHEAD)


def call_priority() -> int:
    """The current task's priority for the next token (and call slot): :data:`URGENT`,
    :data:`AHEAD` or :data:`PLAIN`."""
    return _PRIORITY.get()


def is_urgent() -> bool:
    """Whether the current task is inside :func:`urgent` or :func:`ahead` (its calls go before
    the plain ones: for a call slot too)."""
    return _PRIORITY.get() < PLAIN


_GRANTED: ContextVar[float | None] = ContextVar("fleetops_token_granted", default=None)


def last_grant() -> float | None:
    """When (the bucket's clock) the current task was last given a token: the moment its call
    actually went out, however long it queued for the quota."""
    return _GRANTED.get()


class _Waiter:
    __slots__ = ("event",)

    def __init__(self) -> None:
        self.event = anyio.Event()


class TokenBucket:
    """A FIFO-fair, adaptive token bucket.

    ``rate`` is tokens per second (``None``: unlimited, :meth:`acquire` returns at once), ``burst``
    the capacity. ``clock`` and ``sleep`` are injectable so tests can run on fake time.
    """

    def __init__(
        self,
        rate: float | None,
        burst: int,
        *,
        adaptive: bool = True,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        _check(rate, burst)
        self.rate: float | None = rate
        self.burst: int = burst
        self.effective_rate: float | None = rate
        self.adaptive = adaptive
        self.throttles: int = 0
        self._clock = clock
        self._sleep = sleep
        self._tokens: float = float(burst)
        self._updated: float = clock()
        self._last_decrease: float | None = None
        self._last_throttle: float | None = None
        self._waiters: deque[_Waiter] = deque()
        self._urgent: deque[_Waiter] = deque()  # served first
        self._ahead: deque[_Waiter] = deque()  # then these, then ``_waiters``
        self._queues = (self._urgent, self._ahead, self._waiters)  # by priority
        #: The sustainable rate learned from throttles (None: the configured one holds), and
        #: the clock times of recent successes it is measured from.
        self.learned_rate: float | None = None
        self._successes: deque[float] = deque()
        self._started: float | None = None
        #: This process's part of a quota shared with other runners (1.0: all of it). The
        #: refill rate and the capacity are scaled by it; ``rate`` stays the account's quota.
        self.share: float = 1.0

    def __repr__(self) -> str:
        return (
            f"TokenBucket(rate={self.rate}, burst={self.burst}, "
            f"effective_rate={self.effective_rate}, share={self.share:g}, "
            f"throttles={self.throttles})"
        )

    @property
    def tokens(self) -> float:
        """Tokens available now (fractional; for displays and tests)."""
        self._refill()
        return self._tokens

    @property
    def waiting(self) -> int:
        """How many tasks are queued for a token."""
        return sum(len(queue) for queue in self._queues)

    def _head(self) -> _Waiter | None:
        for queue in self._queues:
            if queue:
                return queue[0]
        return None

    async def acquire(self) -> None:
        """Take one token, waiting in FIFO order when the bucket is empty (urgent calls, see
        :func:`urgent`, first; then those made :func:`ahead`; then the others)."""
        if self.rate is None:
            _GRANTED.set(self._clock())
            return
        if self._head() is None:
            self._refill()
            if self._tokens >= 1.0 - _EPSILON:
                self._tokens -= 1.0
                _GRANTED.set(self._clock())
                return
        waiter = _Waiter()
        queue = self._queues[_PRIORITY.get()]
        queue.append(waiter)
        try:
            while self.effective_rate is not None:
                head = self._head()
                if head is not waiter:
                    # Not (or no longer: an urgent call came) the head: the head sleeps.
                    if head is not None:
                        head.event.set()
                    waiter.event = anyio.Event()
                    await waiter.event.wait()
                    continue
                self._refill()
                if self._tokens >= 1.0 - _EPSILON:
                    self._tokens -= 1.0
                    break
                await self._sleep((1.0 - self._tokens) / (self.effective_rate * self.share))
            _GRANTED.set(self._clock())
        finally:
            # Leave the queue (also on cancellation) and hand the head position on.
            queue.remove(waiter)
            head = self._head()
            if head is not None:
                head.event.set()

    def on_throttle(self) -> None:
        """The server answered ThrottlingException: back off (multiplicative decrease)."""
        self.throttles += 1
        if self.rate is None or self.effective_rate is None:
            return
        self._refill()
        self._tokens = 0.0
        if not self.adaptive:
            return
        now = self._clock()
        previous, self._last_throttle = self._last_throttle, now
        if self.learned_rate is not None and self.effective_rate > self.learned_rate:
            self.effective_rate = self.learned_rate  # a probe above the cap failed: back to it
            return
        if previous is None or now - previous >= QUIET_WINDOW:
            return  # a lone overshoot: the bucket is empty now, the rate stays
        if self._last_decrease is not None and now - self._last_decrease < DECREASE_COOLDOWN:
            return
        self._last_decrease = now
        floor = self.rate / FLOOR_DIVISOR
        accepted = self._accepted_rate(now)
        if accepted is not None and accepted * LEARNED_HEADROOM < self.effective_rate:
            self.learned_rate = max(floor, accepted * LEARNED_HEADROOM)
            self.effective_rate = self.learned_rate
            log.info(
                "throttled at %.2f calls/s accepted: rate learned as %.2f calls/s (quota %g)",
                accepted,
                self.learned_rate,
                self.rate,
            )
            return
        self.effective_rate = max(self.effective_rate * 0.5, floor)
        log.info(
            "throttled again within %.0f s: rate lowered to %.2f calls/s (quota %g)",
            QUIET_WINDOW,
            self.effective_rate,
            self.rate,
        )

    def on_success(self) -> None:
        """A call succeeded: recover toward the configured rate (additive increase), never past
        a learned rate until it has gone :data:`PROBE_QUIET` seconds unthrottled."""
        if self.rate is None or self.effective_rate is None:
            return
        now = self._clock()
        self._note_success(now)
        ceiling = self.rate if self.learned_rate is None else min(self.rate, self.learned_rate)
        if self.learned_rate is not None and self.learned_rate < self.rate:
            quiet_since = self._last_throttle if self._last_throttle is not None else now
            if now - quiet_since >= PROBE_QUIET:
                self.learned_rate = min(self.rate, self.learned_rate * PROBE_STEP)
                self._last_throttle = now  # the next probe after another quiet spell
                ceiling = self.learned_rate
        if self.effective_rate >= ceiling:
            return
        self._refill()
        self.effective_rate = min(ceiling, self.effective_rate + self.rate / RECOVERY_STEPS)
        if self.effective_rate >= self.rate:
            log.info("rate back to the quota: %g calls/s", self.rate)

    def _note_success(self, now: float) -> None:
        if self._started is None:
            self._started = now
        self._successes.append(now)
        while self._successes and self._successes[0] < now - SAMPLE_WINDOW:
            self._successes.popleft()

    def _accepted_rate(self, now: float) -> float | None:
        """Successes per second over the last :data:`SAMPLE_WINDOW` seconds, as the quota's
        (this process's share scaled back to the whole); None with too few to tell."""
        while self._successes and self._successes[0] < now - SAMPLE_WINDOW:
            self._successes.popleft()
        if self._started is None or len(self._successes) < MIN_SAMPLES:
            return None
        span = min(SAMPLE_WINDOW, now - self._started)
        if span < MIN_SAMPLE_SPAN:
            return None
        return len(self._successes) / span / self.share

    def reconfigure(self, rate: float | None, burst: int) -> None:
        """Change the configured quota; the effective rate restarts at the new rate.

        A task already asleep at the head of the queue finishes its current sleep first.
        """
        _check(rate, burst)
        self._refill()
        if rate is not None and self.rate is None:
            # Coming from unlimited: start full, as a new bucket would.
            self._tokens = float(burst)
        self.rate = rate
        self.burst = burst
        self.effective_rate = rate
        self._tokens = min(self._tokens, self.capacity)
        self._last_decrease = None
        self.learned_rate = None

    def set_share(self, holders: int) -> None:
        """Spend ``1 / holders`` of the quota (less :data:`SHARED_HEADROOM`): that many runners
        share this account and region. Alone, a bucket keeps step with the server's; runners
        sending independently at exactly the quota would keep the server's bucket empty, and
        the slightest jitter between them would be throttled.

        The adaptive state (effective rate after throttles) is kept; only the part of it this
        process spends changes, so back-off and recovery go on across a re-balance.
        """
        share = 1.0 if holders <= 1 else SHARED_HEADROOM / holders
        if share == self.share:
            return
        self._refill()
        self.share = share
        self._tokens = min(self._tokens, self.capacity)

    def drain(self, seconds: float = 0.0) -> None:
        """Spend what the bucket holds, and ``seconds`` of refill beyond it: a runner joining
        others starts without a burst (they may just have spent it) and waits until they have
        seen it join and slowed down."""
        self._refill()
        fill = (self.effective_rate or 0.0) * self.share
        self._tokens = -seconds * fill

    @property
    def capacity(self) -> float:
        """The burst this process may spend at once: its share of the quota's burst, at least 1."""
        return max(1.0, self.burst * self.share)

    def _refill(self) -> None:
        now = self._clock()
        elapsed = now - self._updated
        self._updated = now
        if self.effective_rate is not None and elapsed > 0:
            self._tokens = min(
                self.capacity, self._tokens + elapsed * self.effective_rate * self.share
            )


def _check(rate: float | None, burst: int) -> None:
    if rate is not None and not rate > 0:
        raise ValueError(f"rate must be positive or None, not {rate!r}")
    if burst < 1:
        raise ValueError(f"burst must be at least 1, not {burst!r}")


class QuotaRegistry:
    """One :class:`TokenBucket` per key, shared by every caller in the process."""

    def __init__(self) -> None:
        self._buckets: dict[tuple[str, ...], TokenBucket] = {}

    def bucket(self, key: tuple[str, ...], rate: float | None, burst: int) -> TokenBucket:
        """The bucket for ``key``, made on first use.

        An existing bucket asked for with a different rate or burst is reconfigured (the most
        recent setting wins), so ``--rate`` on a resumed job takes effect.
        """
        existing = self._buckets.get(key)
        if existing is None:
            existing = self._buckets[key] = TokenBucket(rate, burst)
        elif (existing.rate, existing.burst) != (rate, burst):
            existing.reconfigure(rate, burst)
        return existing

    def clear(self) -> None:
        """Forget every bucket (tests)."""
        self._buckets.clear()


#: The default process-wide registry.
QUOTAS = QuotaRegistry()


class QuotaHolders(Protocol):
    """Where runners sharing a quota register (the database: ``fleetops.engine.quota``)."""

    async def renew(self, scope: str, holder: str, ttl: float) -> int:
        """Register or renew ``holder`` of ``scope``; how many live holders (itself included)."""
        ...

    async def release(self, scope: str, holder: str) -> None: ...


#: How often a runner renews its holder rows (and learns how many share the quota).
SHARE_INTERVAL = 0.5
#: How long a runner tries to release its holder rows on the way out.
LEAVE_TIMEOUT = 2.0
#: How long past the others' next renewal a joining runner waits before its first call.
JOIN_MARGIN = 0.5
#: A holder not renewed for this long is gone (a killed runner): the others take its share.
SHARE_TTL = 3.0


class QuotaShares:
    """One quota per account and region across runners (processes, possibly on other hosts).

    Every process using a scope's quota keeps a holder row renewed in the shared database and
    spends ``1 / live holders`` of the quota (:meth:`TokenBucket.set_share`), re-balanced every
    :data:`SHARE_INTERVAL` seconds as runners come and go. Jobs of one process share its buckets,
    so the process is one holder however many of its jobs use the scope. The adaptive back-off
    on ThrottlingException goes on inside each share.
    """

    def __init__(self, holder: str) -> None:
        self.holder = holder
        self._refs: Counter[str] = Counter()

    @asynccontextmanager
    async def sharing(
        self,
        holders: QuotaHolders,
        buckets: Mapping[str, TokenBucket],
        *,
        interval: float = SHARE_INTERVAL,
        ttl: float = SHARE_TTL,
    ) -> AsyncIterator[None]:
        """Hold each scope of ``buckets`` (scope key → bucket) for the body's duration."""
        buckets = {scope: b for scope, b in buckets.items() if b.rate is not None}
        joining = [scope for scope in buckets if not self._refs[scope]]
        self._refs.update(buckets.keys())
        try:
            await self._renew(holders, buckets, ttl)  # registered before the first call
            for scope in joining:
                if buckets[scope].share < 1.0:
                    # The others may just have spent the burst, and learn of this runner only
                    # at their next renewal: start after it.
                    buckets[scope].drain(interval + JOIN_MARGIN)
            try:
                async with anyio.create_task_group() as tg:

                    async def renew_forever() -> None:
                        while True:
                            await anyio.sleep(interval)
                            # A renewal is never cut mid-statement by the run's end (a database
                            # connection abandoned mid-call is left for the garbage collector to
                            # close): the stop lands on the sleep, a renewal is bounded.
                            with anyio.move_on_after(LEAVE_TIMEOUT, shield=True):
                                await self._renew(holders, buckets, ttl)

                    tg.start_soon(renew_forever)
                    try:
                        yield
                    finally:
                        tg.cancel_scope.cancel()
            except BaseExceptionGroup as group:
                # The body's own error, not wrapped by this helper's task group: callers catch
                # it by its type (a lease held elsewhere, an API error).
                if len(group.exceptions) == 1:
                    raise group.exceptions[0] from None
                raise
        finally:
            # Best effort and bounded: an unreleased row expires by itself within SHARE_TTL.
            with anyio.move_on_after(LEAVE_TIMEOUT, shield=True):
                await self._leave(holders, buckets)

    async def _renew(
        self, holders: QuotaHolders, buckets: Mapping[str, TokenBucket], ttl: float
    ) -> None:
        for scope, bucket in buckets.items():
            try:
                count = await holders.renew(scope, self.holder, ttl)
            except Exception as exc:  # the database is away: keep the share we had
                log.warning("quota %s: cannot renew this runner's share (%s)", scope, exc)
                continue
            before = bucket.share
            bucket.set_share(count)
            if bucket.share != before:
                log.info(
                    "quota %s shared by %d runner(s): %.3g calls/s here",
                    scope,
                    count,
                    (bucket.rate or 0.0) * bucket.share,
                )

    async def _leave(self, holders: QuotaHolders, buckets: Mapping[str, TokenBucket]) -> None:
        gone = []
        for scope, bucket in buckets.items():  # the bookkeeping first: it cannot be cut short
            self._refs[scope] -= 1
            if self._refs[scope] <= 0:
                del self._refs[scope]
                bucket.set_share(1)
                gone.append(scope)
        for scope in gone:
            try:
                await holders.release(scope, self.holder)
            except Exception as exc:  # it expires on its own
                log.warning("quota %s: cannot release this runner's share (%s)", scope, exc)


def _process_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


#: The process-wide share registry (this process is one holder of every scope it uses).
SHARES = QuotaShares(_process_holder())
