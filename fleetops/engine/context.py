"""What every scope of one run shares: the job, its store and commit path, the stop signal,
the figures, the error budget, and the reason the run failed, if it did."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fleetops.catalogue.actions import ActionSpec
from fleetops.catalogue.options import JobOptions, over_budget
from fleetops.catalogue.targets import Targets
from fleetops.engine.commit import Committer
from fleetops.engine.types import RunStats, StopSignal
from fleetops.records import EventRow, ItemUpdate, JobRecord
from fleetops.store.protocol import EngineStore

__all__ = ["RunContext"]

log = logging.getLogger(__name__)


@dataclass
class RunContext:
    """What every scope of one run shares."""

    store: EngineStore
    committer: Committer
    job: JobRecord
    action: ActionSpec
    params: Mapping[str, Any]
    options: JobOptions
    targets: Targets
    stop: StopSignal
    stats: RunStats
    budget: int | None = None
    aborted: bool = False
    failure: str | None = None  # the API failed for good: the job ends failed with this
    #: Scopes whose account cannot be reached (its role cannot be assumed): scope key -> reason.
    #: Their items fail; the other scopes go on.
    unreachable: dict[str, str] = field(default_factory=dict)
    rows: dict[str, dict[str, Any]] | None = field(default=None)  # create: CSV rows by key
    rows_loaded: bool = False
    #: The maintenance window closed during the run: no new batch (fleetops.engine.windows)
    window_closed: bool = False

    def halted(self) -> bool:
        """Stop taking new batches: a stop was asked for, max-errors tripped, the API broke,
        or the maintenance window closed."""
        return self.stop.is_set or self.aborted or self.failure is not None or self.window_closed

    async def commit(self, updates: Sequence[ItemUpdate], events: Sequence[EventRow] = ()) -> None:
        """The one commit path: durable, shielded, counted; then the error budget is judged."""
        await self.committer.commit(updates, events)
        if any(u.ids for u in updates):
            self.check_budget()

    def check_budget(self) -> None:
        """Abort once the failed items (as committed) exceed the budget."""
        if not self.aborted and over_budget(self.stats.failed, self.budget):
            log.info(
                "job %s: %d failed items exceed --max-errors %s: aborting",
                self.job.id,
                self.stats.failed,
                self.options.max_errors,
            )
            self.aborted = True

    def fail(self, reason: str) -> None:
        """The API failed for good: stop the run; the job ends failed with ``reason``."""
        if self.failure is None:
            log.info("job %s fails: %s", self.job.id, reason)
            self.failure = reason
            self.stop.set(reason)

    def request_rows(self) -> dict[str, dict[str, Any]] | None:
        """create: the CSV rows by item key, read once per run (None for other actions)."""
        if not self.rows_loaded:
            rows = self.action.plan_rows(self.params)
            self.rows = None if rows is None else {row["key"]: row for row in rows}
            self.rows_loaded = True
        return self.rows
