"""A scope's API calls as the engine makes them: bounded, recorded, and watched by the breaker.

:class:`AuditedCall` turns a client's ``call`` into the engine's ``call(operation, ids, **params)``:
at most ``--concurrency`` at a time, each logical call one row of the job's event log (outcome,
code, request id, the attempts it took) committed through the run's commit path, and each
failure shown to the scope's :class:`~fleetops.engine.decide.CircuitBreaker`, which stops the job
when one operation keeps failing the same way. An urgent call (verification's first look, inside
:func:`fleetops.aws.ratelimit.urgent`) takes the next free call slot ahead of the calls waiting
for one, as it takes the next token of the quota.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

import anyio

from fleetops.aws.client import not_executed
from fleetops.aws.ratelimit import PLAIN, URGENT, call_priority
from fleetops.aws.retry import RetryPolicy, attempts_spent
from fleetops.engine.context import RunContext
from fleetops.engine.decide import CircuitBreaker
from fleetops.engine.types import ApiCall, Scope
from fleetops.errors import AssumeRoleError, AwsError, CredentialsError, TransientAwsError
from fleetops.records import EventRow

__all__ = ["AuditedCall", "CallSlots"]

log = logging.getLogger(__name__)


class CallSlots:
    """At most ``total`` calls at a time; a free slot goes to an urgent waiter first, then to
    one made ahead (:func:`fleetops.aws.ratelimit.ahead`), then to the others, each in FIFO
    order."""

    def __init__(self, total: int) -> None:
        self.free = total
        self._urgent: deque[anyio.Event] = deque()
        self._ahead: deque[anyio.Event] = deque()
        self._others: deque[anyio.Event] = deque()
        self._queues = (self._urgent, self._ahead, self._others)  # by priority

    async def acquire(self, urgent: bool | int) -> None:
        """A slot; ``urgent`` is a priority (True: urgent, False: plain)."""
        if self.free > 0 and not any(self._queues):
            self.free -= 1
            return
        event = anyio.Event()
        level = (URGENT if urgent else PLAIN) if isinstance(urgent, bool) else urgent
        queue = self._queues[level]
        queue.append(event)
        try:
            await event.wait()  # set by release(), which handed this task its slot
        except BaseException:
            if event in queue:
                queue.remove(event)
            else:
                self.release()  # handed a slot while being cancelled: pass it on
            raise

    def release(self) -> None:
        for queue in self._queues:
            if queue:
                queue.popleft().set()
                return
        self.free += 1


class AuditedCall:
    """The engine's call function of one scope."""

    def __init__(self, ctx: RunContext, scope: Scope, api: ApiCall, policy: RetryPolicy) -> None:
        self.ctx = ctx
        self.scope = scope
        self.api = api
        self.policy = policy
        self.breaker = CircuitBreaker(threshold=ctx.options.breaker)
        self.slots = CallSlots(ctx.options.concurrency)

    async def __call__(
        self, operation: str, ids: Sequence[str], /, **params: Any
    ) -> dict[str, Any]:
        """One logical call (retries inside), recorded in the event log and by the breaker."""
        idempotent = bool(params.pop("idempotent", True))
        await self.slots.acquire(call_priority())
        try:
            started = time.monotonic()
            try:
                result = await self.api(operation, idempotent=idempotent, **params)
            except AwsError as exc:
                await self._failed(operation, ids, exc, idempotent, started)
                raise
        finally:
            self.slots.release()
        self.breaker.record_success(operation)
        failed = result.response.get("FailedRequests") or []
        outcome = "partial" if failed else "ok"
        await self._event(
            operation, ids, outcome, None, result.request_id, result.attempts, started
        )
        return result.response

    async def _failed(
        self, operation: str, ids: Sequence[str], exc: AwsError, idempotent: bool, started: float
    ) -> None:
        if exc.operation is None:
            exc.operation = operation
        retried = isinstance(exc, TransientAwsError) and (idempotent or not_executed(exc))
        spent = getattr(exc, "attempts", None) or attempts_spent(
            self.policy, exc.code, retried=retried
        )
        await self._event(operation, ids, "error", exc.code, exc.request_id, spent, started)
        if isinstance(exc, CredentialsError | AssumeRoleError):
            return  # not the operation's fault: the job pauses, or the account fails alone
        if self.breaker.record_failure(operation, exc.code, exc.message):
            log.info("circuit breaker open in %s: %s", self.scope, self.breaker.reason())
            self.ctx.fail(f"{self.breaker.reason()} in {self.scope}")

    async def _event(
        self,
        operation: str,
        ids: Sequence[str],
        outcome: str,
        code: str | None,
        request_id: str | None,
        attempts: int,
        started: float,
    ) -> None:
        row = EventRow(
            job_id=self.ctx.job.id,
            region=self.scope.key,
            operation=operation,
            workspace_ids=list(ids),
            outcome=outcome,
            error_code=code,
            request_id=request_id,
            attempts=attempts,
            duration_ms=int((time.monotonic() - started) * 1000),
        )
        await self.ctx.commit((), (row,))
