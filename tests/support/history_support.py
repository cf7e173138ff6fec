"""Job histories for tests: jobs with items in chosen states, written through the Store."""

from __future__ import annotations

from typing import Any

from fleetops.records import JobRecord, NewJob
from fleetops.states import ItemState, JobStatus
from fleetops.store import Store

__all__ = ["T0", "seed_job"]

T0 = 1_780_000_000.0


async def seed_job(
    store: Store,
    states: dict[ItemState, int],
    *,
    action: str = "reboot",
    status: JobStatus = JobStatus.FAILED,
    created_at: float = T0,
    started_after: float | None = 10.0,
    ran_for: float | None = 100.0,
    error_codes: tuple[str | None, ...] = ("InvalidResourceStateException",),
) -> JobRecord:
    """A job with ``states`` items (failed ones cycling through ``error_codes``)."""
    job = await store.create_job(
        NewJob(
            action=action,
            params={},
            targets={"directory_id": "d-1234567890"},
            options={},
            region="us-east-1",
        )
    )
    rows: list[dict[str, Any]] = []
    n = 0
    for state, count in states.items():
        for _ in range(count):
            n += 1
            row: dict[str, Any] = {
                "job_id": job.id,
                "workspace_id": f"ws-{n:010d}",
                "region": "us-east-1",
                "state": state.value,
                "attempts": 1,
                "seen_state": "AVAILABLE",
                "user_name": f"user{n}",
                "updated_at": created_at + 50,
                # executemany takes its columns from the first row: give every row every key
                "error_code": None,
                "error_message": None,
                "reason": None,
                "last_state": None,
            }
            if state is ItemState.FAILED:
                code = error_codes[n % len(error_codes)]
                row["error_code"] = code
                row["error_message"] = f"{code} on ws-{n:010d}" if code else None
            if state is ItemState.SKIPPED:
                row["reason"] = "state STOPPED is not eligible" if n % 3 else "ADMIN_MAINTENANCE"
            if state is ItemState.IN_DOUBT:
                row["reason"] = "no evidence of rebuild after a lost answer"
                row["last_state"] = "AVAILABLE"
            rows.append(row)
    await store.add_items(rows)
    started = created_at + started_after if started_after is not None else None
    await store.update_job(
        job.id,
        status=status,
        created_at=created_at,
        planned_at=created_at + 5,
        started_at=started,
        finished_at=started + ran_for if started is not None and ran_for is not None else None,
    )
    return await store.get_job(job.id)
