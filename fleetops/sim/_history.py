"""What the simulated fleet remembers of each WorkSpace's changes.

Two things, both fed by :meth:`History.record` at every change of a WorkSpace's state or
properties (the call that starts a transition, the moment the transition ends, a state set):

- its **timeline**: every real state it entered and when (``TERMINATED`` when it vanished), so a
  test can tell when a WorkSpace actually settled — not when a Describe said so;
- with a **Describe lag** of N seconds, the **stale view** that DescribeWorkspaces answers: what
  the WorkSpace looked like N seconds ago. Right after a call the old state and properties are
  kept for N seconds, each later state shows N seconds after it began (a transition shorter than
  the polls is still missed, as on AWS), a new WorkSpace is not found for N seconds, and a
  terminated one is still described for N seconds after it vanished.

Pure and synchronous, like the fleet: snapshots are the ``describe()`` dicts taken at each
change, kept only while they are younger than the lag.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["GONE_STATE", "History"]

#: The timeline's last state of a WorkSpace that no longer exists.
GONE_STATE = "TERMINATED"

Snapshot = dict[str, Any] | None  # None: the WorkSpace does not exist (yet, or any more)


@dataclass(slots=True)
class _View:
    base: Snapshot  # what Describe shows before the first change still within the lag
    changes: list[tuple[float, Snapshot]] = field(default_factory=list)  # (when, after)


class History:
    """Timelines of every WorkSpace that changed, and the lagged views of recent changes."""

    def __init__(self) -> None:
        self._timelines: dict[str, list[tuple[float, str]]] = {}
        self._views: dict[str, _View] = {}

    def record(
        self,
        ws_id: str,
        at: float,
        state: str,
        before: Snapshot,
        after: Snapshot,
        lag: float,
    ) -> None:
        """The WorkSpace changed at ``at`` (changes arrive in time order per WorkSpace):
        ``before`` is its description just before (None: it is new), ``after`` just after
        (None: it vanished)."""
        self._timelines.setdefault(ws_id, []).append((at, state))
        if lag <= 0:
            return
        view = self._views.get(ws_id)
        if view is None:
            view = self._views[ws_id] = _View(before)
        view.changes.append((at, after))

    def view(self, ws_id: str, current: Snapshot, horizon: float) -> Snapshot:
        """What a Describe shows of the WorkSpace when it sees the fleet as of ``horizon``
        (now minus the lag); ``current`` is its true description now."""
        view = self._views.get(ws_id)
        if view is None:
            return current
        shown = view.base
        for at, snapshot in view.changes:
            if at > horizon:
                return shown
            shown = snapshot
        del self._views[ws_id]  # every change is older than the lag: the view has caught up
        return current

    def lagging(self) -> list[str]:
        """Ids whose view may still differ from the truth (the terminated ones included)."""
        return list(self._views)

    def timeline(self, ws_id: str) -> list[tuple[float, str]]:
        return list(self._timelines.get(ws_id, ()))
