"""Types the engine's orchestrators share (runner, scope runs, verifier), below all of them.

A job's work is split by *scope*: one account (None: the connection's own) in one region. Each
scope has its own client and quota bucket; everything else of a run (the store, the stop signal,
the counters, the error budget) is shared.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import anyio

from fleetops.states import ItemState

__all__ = [
    "ApiCall",
    "ApiClient",
    "CallCounts",
    "CallFn",
    "RunStats",
    "Scope",
    "StopSignal",
]

#: The engine's view of one logical API call: ``call(operation, ids, **params)`` → response.
#: ``ids`` are the WorkSpaces concerned (for the audit trail); retries happen inside.
CallFn = Callable[..., Awaitable[dict[str, Any]]]


class ApiResult(Protocol):
    """What a successful call returns (``fleetops.aws.client.CallResult`` has this shape)."""

    @property
    def response(self) -> dict[str, Any]: ...
    @property
    def request_id(self) -> str | None: ...
    @property
    def attempts(self) -> int: ...


class ApiCall(Protocol):
    """A client's call method: ``await call("RebootWorkspaces", idempotent=True, **params)``."""

    def __call__(
        self, operation: str, *, idempotent: bool = True, **params: Any
    ) -> Awaitable[ApiResult]: ...


class ApiClient(Protocol):
    """What the runner needs of a client: its call method (a WorkSpacesClient, or a fake)."""

    @property
    def call(self) -> ApiCall: ...


@dataclass(frozen=True, order=True)
class Scope:
    """One account (None: the connection's own) in one region."""

    account: str | None
    region: str

    @property
    def key(self) -> str:
        """``"region"``, or ``"account/region"`` for another account."""
        return self.region if self.account is None else f"{self.account}/{self.region}"

    @classmethod
    def parse(cls, key: str) -> Scope:
        account, sep, region = key.rpartition("/")
        return cls(account if sep else None, region)

    def __str__(self) -> str:
        return self.key


class StopSignal:
    """Set by the CLI's signal handler (or a test) to stop a run gracefully."""

    def __init__(self) -> None:
        self.event = anyio.Event()
        self.hard = anyio.Event()  # a second signal: stop without waiting for calls in flight
        self.reason: str | None = None

    def set(self, reason: str = "interrupted") -> None:
        if not self.event.is_set():
            self.reason = reason
            self.event.set()

    def set_hard(self) -> None:
        self.set()
        self.hard.set()

    @property
    def is_set(self) -> bool:
        return self.event.is_set()


@dataclass
class CallCounts:
    """The API calls of a run, counted once from the audit rows the run stores.

    ``calls``: logical calls (one event row each); ``requests``: HTTP attempts they took;
    ``retries``: attempts beyond the first; ``throttles``: attempts answered "slow down" (read from
    the clients, which see every attempt). The progress display and ``jobs show`` read the same
    figures: ``jobs show`` sums the same rows from the database.
    """

    calls: int = 0
    requests: int = 0
    retries: int = 0
    throttles: int = 0
    errors_by_code: Counter[str] = field(default_factory=Counter)
    by_operation: Counter[str] = field(default_factory=Counter)

    def record(self, operation: str, attempts: int, error_code: str | None) -> None:
        self.calls += 1
        self.requests += attempts
        self.retries += max(0, attempts - 1)
        self.by_operation[operation] += 1
        if error_code is not None:
            self.errors_by_code[error_code] += 1


class RunStats:
    """Live figures of a run, for progress displays (read, never written, by the CLI).

    Item figures derive from ``counts`` (items by state), which only the commit path changes:
    they are the numbers ``jobs show`` reports.
    """

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.item_retries = 0  # items sent back to pending after a retryable failure
        self.phase = "starting"
        self.step = ""  # a recipe's current step: "restore (2/3)"
        self.wave = 0
        self.waves = 0
        self.plan_pages = 0  # describe pages read while planning
        self.plan_found = 0  # WorkSpaces found while planning
        self.polls = 0
        self.logoff_waiting = 0  # WorkSpaces held until their user logs off
        self.calls = CallCounts()
        self.started = time.monotonic()
        self.throttle_sources: list[Callable[[], int]] = []

    def reset_counts(self, counts: Mapping[str, int]) -> None:
        self.counts = Counter({state.value: int(counts.get(state.value, 0)) for state in ItemState})

    def _n(self, state: ItemState) -> int:
        return self.counts[state.value]

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def skipped(self) -> int:
        return self._n(ItemState.SKIPPED)

    @property
    def pending(self) -> int:
        return self._n(ItemState.PENDING)

    @property
    def in_flight(self) -> int:
        return self._n(ItemState.IN_FLIGHT)

    @property
    def verifying(self) -> int:
        """Accepted by the API, being verified (state ``submitted``)."""
        return self._n(ItemState.SUBMITTED)

    @property
    def submitted(self) -> int:
        """Items the API has answered for: being verified, succeeded or failed."""
        return self.verifying + self.succeeded + self.failed

    @property
    def succeeded(self) -> int:
        return self._n(ItemState.SUCCEEDED)

    @property
    def failed(self) -> int:
        return self._n(ItemState.FAILED)

    @property
    def in_doubt(self) -> int:
        return self._n(ItemState.IN_DOUBT)

    @property
    def cancelled(self) -> int:
        return self._n(ItemState.CANCELLED)

    @property
    def eligible(self) -> int:
        return self.total - self.skipped - self.cancelled

    @property
    def retried_items(self) -> int:
        return self.item_retries

    @property
    def throttles(self) -> int:
        return sum(source() for source in self.throttle_sources)

    def as_dict(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "counts": dict(self.counts),
            "wave": self.wave,
            "waves": self.waves,
            "plan_pages": self.plan_pages,
            "plan_found": self.plan_found,
            "calls": self.calls.calls,
            "requests": self.calls.requests,
            "retries": self.calls.retries,
            "throttles": self.throttles,
        }


def scope_items(items: Sequence[Any], scope: Scope) -> list[Any]:
    """The items of ``scope`` (an item without an ``account`` is of the connection's own)."""
    return [item for item in items if getattr(item, "account", None) == scope.account]
