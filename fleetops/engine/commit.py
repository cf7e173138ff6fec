"""The run's one commit path: item updates and audit rows, durable, shielded, and counted.

Every change the engine makes to its items goes through :meth:`Committer.commit`: the updates
are applied in one transaction (the store's group writer) under a cancel scope that a stop cannot
interrupt, and the run's figures (:class:`~fleetops.engine.types.RunStats`) are derived from the
very updates committed, never counted by hand elsewhere. :class:`Ledger` is the pure part.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

import anyio

from fleetops.engine.types import RunStats
from fleetops.records import EventRow, ItemRecord, ItemUpdate
from fleetops.states import ItemState
from fleetops.store.protocol import ItemWriter

__all__ = ["Committer", "Ledger", "StateTable"]

log = logging.getLogger(__name__)


#: Item states as one byte each (0: not known).
_CODES: dict[str, int] = {state.value: n for n, state in enumerate(ItemState, start=1)}
_NAMES: dict[int, str] = {n: name for name, n in _CODES.items()}
#: How far past the ids held so far the byte table grows for a new id (further: the dict).
_SPAN = 1 << 20


class StateTable:
    """Item id → state, one byte per item over the run's range of ids: a job's items are
    inserted together, so their ids are (nearly) consecutive, and a run over a million items
    holds a megabyte here, not a dict of a million entries. Ids outside the range go to a dict.
    """

    def __init__(self) -> None:
        self._base: int | None = None
        self._codes = bytearray()
        self._other: dict[int, str] = {}

    def _slot(self, item_id: int, grow: bool) -> int | None:
        if self._base is None:
            if not grow:
                return None
            self._base = item_id
        offset = item_id - self._base
        if offset < 0:
            return None
        if offset >= len(self._codes):
            if not grow or offset >= len(self._codes) + _SPAN:
                return None
            self._codes.extend(bytes(offset + 1 - len(self._codes)))
        return offset

    def get(self, item_id: int) -> str | None:
        slot = self._slot(item_id, grow=False)
        code = 0 if slot is None else self._codes[slot]
        # 0: not in the table, perhaps set while its id was still out of the table's range
        return _NAMES[code] if code else self._other.get(item_id)

    def set(self, item_id: int, state: str) -> None:
        slot = self._slot(item_id, grow=True)
        if slot is None:
            self._other[item_id] = state
        else:
            self._codes[slot] = _CODES[state]
            self._other.pop(item_id, None)

    def setdefault(self, item_id: int, state: str) -> None:
        if self.get(item_id) is None:
            self.set(item_id, state)


class Ledger:
    """Items by state, kept in step with the updates committed. Pure: no I/O.

    The counts start from the store's (``RunStats.reset_counts``); each item's current state is
    learnt when the engine reads it (:meth:`note`), so an update can move it from one count to
    another.
    """

    def __init__(self, stats: RunStats) -> None:
        self.stats = stats
        self.states = StateTable()

    def note(self, items: Iterable[ItemRecord]) -> None:
        """Items just read from the store: their state as stored, for those not known yet (an
        item this run has committed is known better than by a read that may have begun before
        the commit)."""
        for item in items:
            self.states.setdefault(item.id, str(item.state))

    def apply(self, updates: Sequence[ItemUpdate]) -> None:
        counts = self.stats.counts
        for update in updates:
            new = str(update.state)
            for item_id in update.ids:
                old = self.states.get(item_id)
                if old is not None:
                    counts[old] -= 1
                else:  # never read by this run: it cannot have been counted in another state
                    log.debug("item %d committed before it was read", item_id)
                counts[new] += 1
                self.states.set(item_id, new)
            if new == ItemState.PENDING and update.error_code is not None:
                self.stats.item_retries += len(update.ids)

    def record_calls(self, rows: Sequence[EventRow]) -> None:
        for row in rows:
            self.stats.calls.record(row.operation, row.attempts, row.error_code)


class Committer:
    """Applies updates through the store's writer, shielded, then derives the figures."""

    def __init__(self, writer: ItemWriter, stats: RunStats) -> None:
        self.writer = writer
        self.ledger = Ledger(stats)

    def note(self, items: Iterable[ItemRecord]) -> None:
        self.ledger.note(items)

    async def commit(self, updates: Sequence[ItemUpdate], events: Sequence[EventRow] = ()) -> None:
        updates = [u for u in updates if u.ids]
        if not updates and not events:
            return
        if not updates and self.writer.post(events):
            # Audit rows alone: nobody waits for them (the resume rule rests on the items);
            # they ride with the next commit, usually the outcome of the very same call.
            self.ledger.record_calls(events)
            return
        with anyio.CancelScope(shield=True):
            await self.writer.write(updates, events)
        self.ledger.apply(updates)
        self.ledger.record_calls(events)
