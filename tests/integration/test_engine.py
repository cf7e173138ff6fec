"""The engine end to end: the real aiobotocore client over HTTP to the simulator, a real SQLite
file migrated by alembic. The simulator's counters are the witness of what was sent."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from engine_support import sim_client, spec_for

from fleetops.api import create_job, dry_run, plan_job, run_job
from fleetops.catalogue.targets import Targets
from fleetops.engine.runner import StopSignal
from fleetops.errors import LeaseHeldError
from fleetops.records import ItemUpdate
from fleetops.sim import Simulator
from fleetops.states import ItemState, JobStatus, exit_code_for
from fleetops.store import Store


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(
        workspaces=300, rate=None, transition_seconds=0.2, connected_fraction=0.1
    ) as running:
        yield running


async def items_by_state(store: Store, job_id: str) -> dict[str, list[str]]:
    result: dict[str, list[str]] = {}
    async for page in store.iter_items(job_id):
        for item in page:
            result.setdefault(str(item.state), []).append(item.workspace_id)
    return result


async def test_clean_reboot_acts_on_every_eligible_workspace_exactly_once(
    sim: Simulator, store: Store
) -> None:
    job = await create_job(store, spec_for(sim, "reboot", concurrency=4))
    job = await run_job(store, job.id)
    counts = await store.counts(job.id)
    assert job.status is JobStatus.SUCCEEDED, job.message
    assert counts[ItemState.SUCCEEDED] > 0
    assert counts[ItemState.SUCCEEDED] + counts[ItemState.SKIPPED] == 300
    stats = sim.stats()
    reboots = stats.calls_by_workspace["RebootWorkspaces"]
    by_state = await items_by_state(store, job.id)
    assert sorted(reboots) == sorted(by_state[ItemState.SUCCEEDED])
    assert set(reboots.values()) == {1}
    assert not set(reboots) & set(by_state.get(ItemState.SKIPPED, []))
    assert stats.largest_batch["RebootWorkspaces"] <= 25
    assert stats.largest_batch["DescribeWorkspaces"] <= 25
    assert stats.max_concurrent <= 4
    assert exit_code_for(job.status, counts) == 0
    # Skipped items carry their reason; connected users were left alone.
    reasons = {item.reason async for item in _items(store, job.id, ItemState.SKIPPED)}
    assert any("connected" in (r or "") for r in reasons)
    assert any("not eligible" in (r or "") for r in reasons)


async def _items(store: Store, job_id: str, state: ItemState) -> AsyncIterator[Any]:
    async for page in store.iter_items(job_id, states=[state]):
        for item in page:
            yield item


@pytest.mark.parametrize(
    ("action", "end_state"), [("stop", "STOPPED"), ("start", "AVAILABLE"), ("terminate", None)]
)
async def test_actions_reach_their_end_states(
    sim: Simulator, store: Store, action: str, end_state: str | None
) -> None:
    job = await create_job(store, spec_for(sim, action, include_connected=True))
    job = await run_job(store, job.id)
    assert job.status is JobStatus.SUCCEEDED, job.message
    done = (await items_by_state(store, job.id)).get(ItemState.SUCCEEDED, [])
    assert done
    for ws_id in done:
        ws = sim.workspace(ws_id)
        if end_state is None:
            assert ws is None  # terminated WorkSpaces vanish
        else:
            assert ws is not None and ws["State"] == end_state


async def test_tight_quota_keeps_throttling_small(store: Store) -> None:
    # The job's quota is the account's rate; the account's burst is the job's plus 5, room for
    # calls that a loaded machine delays and then delivers together.
    async with Simulator(workspaces=200, rate=10, burst=10, transition_seconds=0.2) as sim:
        spec = spec_for(sim, "reboot", rate=10, burst=5, include_connected=True)
        job = await run_job(store, (await create_job(store, spec)).id)
        assert job.status is JobStatus.SUCCEEDED, job.message
        stats = sim.stats()
        total = sum(stats.calls_by_operation.values())
        assert stats.throttled <= max(2, 0.05 * total), (stats.throttled, total)


async def test_500s_and_per_item_failures_are_retried_to_success(store: Store) -> None:
    async with Simulator(
        workspaces=200, rate=None, transition_seconds=0.1, error_rate=0.1, item_failure_rate=0.1
    ) as sim:
        spec = spec_for(sim, "reboot", include_connected=True, item_attempts=8)
        job = await run_job(store, (await create_job(store, spec)).id)
        counts = await store.counts(job.id)
        assert job.status is JobStatus.SUCCEEDED, (job.message, counts)
        stats = sim.stats()
        assert stats.errors_500 > 0
        reboots = stats.calls_by_workspace["RebootWorkspaces"]
        assert max(reboots.values()) > 1  # some WorkSpaces needed another attempt
        attempts = [item.attempts async for item in _items(store, job.id, ItemState.SUCCEEDED)]
        assert max(attempts) > 1


async def test_stuck_reboots_fail_with_a_clear_reason(store: Store) -> None:
    async with Simulator(
        workspaces=100, rate=None, transition_seconds=0.1, stuck_reboot_rate=0.2
    ) as sim:
        spec = spec_for(sim, "reboot", include_connected=True, verify_timeout=1.5)
        job = await run_job(store, (await create_job(store, spec)).id)
        counts = await store.counts(job.id)
        assert job.status is JobStatus.FAILED
        assert counts[ItemState.FAILED] > 0 and counts[ItemState.SUCCEEDED] > 0
        failed = [item async for item in _items(store, job.id, ItemState.FAILED)]
        assert {f.error_code for f in failed} == {"VerifyTimeout"}
        assert all("REBOOTING" in (f.error_message or "") for f in failed)
        assert exit_code_for(job.status, counts) == 1


async def test_no_wait_ends_items_submitted(sim: Simulator, store: Store) -> None:
    spec = spec_for(sim, "reboot", no_wait=True, include_connected=True)
    job = await run_job(store, (await create_job(store, spec)).id)
    counts = await store.counts(job.id)
    assert job.status is JobStatus.SUCCEEDED
    assert counts[ItemState.SUBMITTED] > 0 and counts[ItemState.SUCCEEDED] == 0
    assert "DescribeWorkspaces" in sim.stats().calls_by_operation


async def test_dry_run_writes_nothing_and_counts_calls(sim: Simulator, store: Store) -> None:
    summary = await dry_run(spec_for(sim, "reboot"))
    assert summary.eligible > 0 and summary.skipped
    # the directories listed, then 300 WorkSpaces in 4 directories of 75 (3 pages each), and
    # connection status 25 at a time
    assert summary.planning_calls == 1 + 4 * 3 + 12
    assert summary.calls_needed >= summary.eligible // 25
    assert await store.list_jobs() == []
    assert "RebootWorkspaces" not in sim.stats().calls_by_operation


async def test_selectors_by_ids_and_directory(sim: Simulator, store: Store) -> None:
    ids = sim.workspace_ids()[:30]
    targets = Targets.build(workspace_ids=[*ids, "ws-doesnotexist0"])
    job = await run_job(
        store,
        (await create_job(store, spec_for(sim, "reboot", targets, include_connected=True))).id,
    )
    items = await items_by_state(store, job.id)
    recorded = {ws for group in items.values() for ws in group}
    assert recorded == {*ids, "ws-doesnotexist0"}
    assert sim.stats().calls_by_operation["DescribeWorkspaces"] >= 2
    directory = sim.workspace(ids[0])["DirectoryId"]  # type: ignore[index]
    summary = await dry_run(spec_for(sim, "reboot", Targets.build(directory_id=directory)))
    assert 0 < summary.total < 300


async def test_resume_reconciles_in_flight_items(sim: Simulator, store: Store) -> None:
    """A crash between the in_flight commit and the outcome commit: items with evidence are
    verified, not re-sent; the others (non-destructive) are sent again."""
    spec = spec_for(sim, "reboot", include_connected=True)
    job = await create_job(store, spec)
    job = await plan_job(store, job.id)
    assert job.planned_at is not None
    pending = [item async for item in _items(store, job.id, ItemState.PENDING)]
    crashed = pending[:20]
    await _mark_in_flight(store, [i.id for i in crashed])
    # Half of them did reach the API before the "crash".
    reached = [i.workspace_id for i in crashed[:10]]
    sim.configure(transition_seconds=2.0)  # still REBOOTING when the resume looks
    await _reboot_directly(sim, reached)
    sim.configure(transition_seconds=0.2)
    sim.reset_stats()
    job = await run_job(store, job.id)
    assert job.status is JobStatus.SUCCEEDED, job.message
    reboots = sim.stats().calls_by_workspace["RebootWorkspaces"]
    assert not set(reached) & set(reboots)  # evidence: not re-sent
    assert all(reboots[i.workspace_id] == 1 for i in crashed[10:])
    assert sum(reboots.values()) == len(pending) - 10


async def test_destructive_in_flight_without_evidence_is_held_in_doubt(
    sim: Simulator, store: Store
) -> None:
    ids = [ws for ws in sim.workspace_ids() if sim.workspace(ws)["State"] == "AVAILABLE"][:6]  # type: ignore[index]
    spec = spec_for(
        sim,
        "rebuild",
        Targets.build(workspace_ids=ids),
        include_connected=True,
        ignore_snapshot_age=True,
    )
    job = await create_job(store, spec)
    await plan_job(store, job.id)
    items = [item async for item in _items(store, job.id, ItemState.PENDING)]
    await _mark_in_flight(store, [i.id for i in items[:3]])
    sim.reset_stats()
    job = await run_job(store, job.id)
    counts = await store.counts(job.id)
    assert counts[ItemState.IN_DOUBT] == 3
    assert exit_code_for(job.status, counts) == 4
    rebuilt = sim.stats().calls_by_workspace.get("RebuildWorkspaces", {})
    assert not set(rebuilt) & {i.workspace_id for i in items[:3]}
    # The operator says so: they are sent.
    job = await run_job(store, job.id, redo_in_doubt=True)
    counts = await store.counts(job.id)
    assert counts[ItemState.IN_DOUBT] == 0
    assert job.status is JobStatus.SUCCEEDED, job.message


async def test_a_second_runner_is_refused(sim: Simulator, store: Store) -> None:
    job = await create_job(store, spec_for(sim, "reboot", include_connected=True))
    assert await store.acquire_lease(job.id, "otherhost:1:abc", 60) is None
    with pytest.raises(LeaseHeldError, match="another process"):
        await run_job(store, job.id)


async def _mark_in_flight(store: Store, ids: list[int]) -> None:
    writer = store.writer()
    async with anyio.create_task_group() as tg:
        tg.start_soon(writer.run)
        await writer.write([ItemUpdate(ids=ids, state=ItemState.IN_FLIGHT, attempts_inc=1)])
        writer.close()


async def _reboot_directly(sim: Simulator, ids: list[str]) -> None:
    async with sim_client(sim) as client:
        await client.reboot_workspaces(RebootWorkspaceRequests=[{"WorkspaceId": i} for i in ids])


async def test_a_stop_while_planning_leaves_a_resumable_job(sim: Simulator, store: Store) -> None:
    job = await create_job(store, spec_for(sim, "reboot", include_connected=True))
    stop = StopSignal()
    stop.set("test stop")
    job = await run_job(store, job.id, stop=stop)
    assert job.status is JobStatus.INTERRUPTED and job.planned_at is None
    assert "RebootWorkspaces" not in sim.stats().calls_by_operation
    job = await run_job(store, job.id)
    assert job.status is JobStatus.SUCCEEDED, job.message


async def test_resuming_a_finished_job_returns_it_unchanged(sim: Simulator, store: Store) -> None:
    job = await run_job(
        store, (await create_job(store, spec_for(sim, "reboot", include_connected=True))).id
    )
    assert job.status is JobStatus.SUCCEEDED
    calls = sim.stats().total_calls
    again = await run_job(store, job.id)
    assert again.status is JobStatus.SUCCEEDED and again.finished_at == job.finished_at
    assert sim.stats().total_calls == calls  # nothing sent


async def test_a_workspace_still_in_its_failure_state_fails_before_the_timeout(
    sim: Simulator, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fleetops.engine.verify

    monkeypatch.setattr(fleetops.engine.verify, "STUCK_AFTER", 0.5)
    ws_id = next(w for w in sim.workspace_ids() if sim.workspace(w)["State"] == "AVAILABLE")  # type: ignore[index]
    sim.set_state(ws_id, "UNHEALTHY")
    spec = spec_for(
        sim,
        "reboot",
        Targets.build(workspace_ids=[ws_id]),
        include_connected=True,
        verify_timeout=600,
    )
    job = await create_job(store, spec)
    await plan_job(store, job.id)
    original = sim.set_state  # the reboot is accepted, but the WorkSpace never leaves UNHEALTHY

    async def never_moves() -> None:
        while True:
            original(ws_id, "UNHEALTHY")
            await anyio.sleep(0.02)

    async with anyio.create_task_group() as tg:
        tg.start_soon(never_moves)
        with anyio.fail_after(30):
            job = await run_job(store, job.id)
        tg.cancel_scope.cancel()
    items = [item async for item in _items(store, job.id, ItemState.FAILED)]
    assert [i.workspace_id for i in items] == [ws_id]
    assert "still UNHEALTHY" in (items[0].error_message or "")


async def test_a_permanent_500_stops_the_job_within_a_few_dozen_requests(store: Store) -> None:
    """An operation that always answers 500: the breaker stops the job, failed, naming the
    operation and the code, after a few calls of 3 attempts each."""
    async with Simulator(workspaces=300, rate=None, transition_seconds=0.1) as sim:
        spec = spec_for(sim, "reboot", include_connected=True)
        job = await plan_job(store, (await create_job(store, spec)).id)
        sim.configure(error_rate=1.0)
        sim.reset_stats()
        job = await run_job(store, job.id)
        counts = await store.counts(job.id)
        stats = sim.stats()
        requests = stats.total_calls
        assert job.status is JobStatus.FAILED
        assert "RebootWorkspaces" in (job.message or "")
        assert "InternalFailure" in (job.message or "")
        assert exit_code_for(job.status, counts) == 1
        assert stats.errors_500 == requests <= 40, requests
        assert counts[ItemState.PENDING] > 200  # not tried: the job stopped


async def test_a_plan_refused_by_the_api_ends_the_job_failed(store: Store) -> None:
    async with Simulator(workspaces=50, rate=None, error_rate=1.0) as sim:
        spec = spec_for(sim, "reboot", include_connected=True)
        job = await run_job(store, (await create_job(store, spec)).id)
        assert job.status is JobStatus.FAILED
        message = job.message or ""
        assert "planning failed" in message and "DescribeWorkspaces" in message
        assert "InternalFailure" in message and "resume" not in message
        # the directories' listing fails (three attempts): the fleet is read as one listing,
        # which fails too (three attempts)
        assert sim.stats().total_calls == 6


async def test_progress_and_the_record_count_calls_and_retries_alike(store: Store) -> None:
    async with Simulator(workspaces=120, rate=4, burst=2, transition_seconds=0.1) as sim:
        spec = spec_for(sim, "reboot", include_connected=True, rate=40, burst=20)
        runners: list[Any] = []
        job = await run_job(store, (await create_job(store, spec)).id, on_start=runners.append)
        assert job.status is JobStatus.SUCCEEDED, job.message
        shown = runners[0].client_stats()
        events = await store.events_for(job.id)
        assert shown.throttles > 0 and sim.stats().throttled > 0  # the quota was really hit
        assert shown.calls == len(events)
        assert shown.retries == sum(max(0, e["attempts"] - 1) for e in events) > 0
        assert sum(e["attempts"] for e in events) == sim.stats().total_calls
