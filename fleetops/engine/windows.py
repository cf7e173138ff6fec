"""A run inside its maintenance windows: no action call starts while they are closed.

What may happen outside a window: planning, reconciling what was in flight, verification.
What may not: a new batch of the action. :func:`watch` runs beside a run's scopes and, the
moment the open window closes, marks the run (``RunContext.window_closed``): from then on
:meth:`~fleetops.engine.context.RunContext.halted` is true for the submitters, so no new batch
starts, while batches already under way finish and what they submitted is verified; pending
items stay pending. The runner then records the job ``waiting`` with ``next_window_at``, and
whoever runs it (a foreground ``run`` waiting, a worker re-queueing it for that time) carries on
with the same plan when the window opens.

The watcher looks every :data:`POLL` seconds; what makes "no action call outside a window"
exact is the gate (:func:`window_gate`): each action request asks the windows again right
before it goes out (after its rate-limit token), and one refused is not sent — its items go
back to pending.

The clock (:data:`clock`, epoch seconds) is a module attribute so that tests run a window's
opening and closing in seconds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import anyio

from fleetops.records import iso

__all__ = ["POLL", "clock", "next_opening", "watch", "window_gate"]

log = logging.getLogger(__name__)

#: Epoch seconds now (replaced by tests).
clock: Callable[[], float] = time.time
#: The longest the watcher sleeps between two looks at the clock (seconds).
POLL = 0.05


def next_opening(windows: Any, now: float | None = None) -> float | None:
    """None when a window is open at ``now``, else when the next one opens."""
    at = clock() if now is None else now
    return None if windows.is_open(at) else float(windows.next_open(at))


async def watch(windows: Any, ctx: Any, job_id: str) -> None:
    """Mark ``ctx`` ``window_closed`` when the open window closes (returns then)."""
    while True:
        now = clock()
        closes = windows.open_until(now)
        if closes is None:
            ctx.window_closed = True
            log.info(
                "job %s: maintenance window closed: no new batch until %s",
                job_id,
                iso(windows.next_open(now)),
            )
            return
        await anyio.sleep(min(max(closes - now, 0.0), POLL))


def window_gate(windows: Any) -> dict[str, Callable[[], bool]]:
    """The ``gate`` keyword an action request carries: whether a window is open now."""
    return {"gate": lambda: bool(windows.is_open(clock()))}
