"""Whole jobs through the engine in memory: the in-memory store and a fake API, no HTTP, no
SQLite. Plan, submit, partial failures, retries, max-errors, waves, a kill in the middle of a
batch and the resume that follows, verification, and an API that is broken."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from fake_api import FakeApi, fleet

from fleetops.catalogue.options import JobOptions
from fleetops.catalogue.targets import Targets
from fleetops.engine.runner import JobRunner, StopSignal
from fleetops.errors import Interrupted
from fleetops.records import ItemRecord, ItemUpdate, JobRecord, NewJob
from fleetops.states import ItemState, JobStatus, exit_code_for
from fleetops.store.memory import MemoryStore

REGION = "us-east-1"


async def new_job(store: MemoryStore, action: str, ids: list[str], **options: Any) -> JobRecord:
    options.setdefault("include_connected", True)
    options.setdefault("rate", None)
    return await store.create_job(
        NewJob(
            action=action,
            params={},
            targets=Targets.build(workspace_ids=ids).as_dict(),
            options=JobOptions(**options).as_dict(),
            region=REGION,
        )
    )


async def run(
    store: MemoryStore, api: FakeApi, job: JobRecord, **kw: Any
) -> tuple[JobRecord, JobRunner]:
    runner = JobRunner(store, {REGION: api}, await store.get_job(job.id), **kw)
    return await runner.run(), runner


async def items(store: MemoryStore, job_id: str) -> dict[str, ItemRecord]:
    out: dict[str, ItemRecord] = {}
    async for page in store.iter_items(job_id):
        out.update((i.workspace_id, i) for i in page)
    return out


def assert_figures_match_the_store(
    runner: JobRunner, counts: dict[str, int], events: list[dict[str, Any]]
) -> None:
    """The live figures are the stored ones: items by state, calls and retries."""
    stats = runner.stats
    assert (stats.succeeded, stats.failed, stats.skipped, stats.pending, stats.in_doubt) == (
        counts["succeeded"],
        counts["failed"],
        counts["skipped"],
        counts["pending"],
        counts["in_doubt"],
    )
    shown = runner.client_stats()
    assert shown.calls == len(events)
    assert shown.retries == sum(max(0, e["attempts"] - 1) for e in events)


async def test_a_job_plans_submits_and_verifies() -> None:
    store, states = MemoryStore(), fleet(60)
    states["ws-00000003"] = states["ws-00000004"] = "STOPPED"  # not eligible for a reboot
    api = FakeApi(states)
    job, runner = await run(store, api, await new_job(store, "reboot", sorted(states)))
    counts = await store.counts(job.id)
    assert job.status is JobStatus.SUCCEEDED, job.message
    assert counts["succeeded"] == 58 and counts["skipped"] == 2
    assert [len(b) for b in api.batches] == [25, 25, 8]
    assert set(api.acted) == set(states) - {"ws-00000003", "ws-00000004"}
    assert max(api.acted.values()) == 1
    assert runner.stats.plan_found == 60
    events = await store.events_for(job.id)
    assert_figures_match_the_store(runner, counts, events)


async def test_partial_failures_are_retried_failed_or_skipped_by_their_code() -> None:
    store, states = MemoryStore(), fleet(30)
    ids = sorted(states)
    api = FakeApi(
        states,
        refuse={
            ids[0]: ("InternalFailure", 1),  # transient: sent again, then accepted
            ids[1]: ("InternalFailure", 1),
            # not found, yet a describe finds the WorkSpace: something else is missing
            ids[2]: ("ResourceNotFoundException", 1),
            ids[3]: ("InvalidResourceStateException", 1),  # changed since the plan
        },
    )
    job, runner = await run(store, api, await new_job(store, "reboot", ids, no_wait=True))
    got = await items(store, job.id)
    assert job.status is JobStatus.FAILED
    assert "1 items failed" in (job.message or "")
    assert exit_code_for(job.status, await store.counts(job.id)) == 1
    assert (got[ids[0]].state, got[ids[0]].attempts) == (ItemState.SUBMITTED, 2)
    assert got[ids[1]].state is ItemState.SUBMITTED and got[ids[1]].error_code is None
    assert (got[ids[2]].state, got[ids[2]].error_code) == (
        ItemState.FAILED,
        "ResourceNotFoundException",
    )
    assert (got[ids[3]].state, got[ids[3]].reason) == (
        ItemState.SKIPPED,
        "state changed since the plan (now AVAILABLE)",  # as the describe after it showed
    )
    assert runner.stats.retried_items == 2
    assert_figures_match_the_store(
        runner, await store.counts(job.id), await store.events_for(job.id)
    )


async def test_an_item_fails_after_its_attempts() -> None:
    store, states = MemoryStore(), fleet(3)
    ids = sorted(states)
    api = FakeApi(states, refuse={ids[0]: ("InternalFailure", 99)})
    job, _ = await run(
        store, api, await new_job(store, "reboot", ids, no_wait=True, item_attempts=2)
    )
    got = await items(store, job.id)
    assert (got[ids[0]].state, got[ids[0]].attempts) == (ItemState.FAILED, 2)
    assert sum(ids[0] in b for b in api.batches) == 2


async def test_max_errors_aborts_with_nothing_sent_after_the_trip() -> None:
    store, states = MemoryStore(), fleet(100)
    ids = sorted(states)
    api = FakeApi(states, refuse={ws: ("ResourceNotFoundException", 1) for ws in ids})
    job, runner = await run(
        store, api, await new_job(store, "reboot", ids, no_wait=True, max_errors="5", concurrency=1)
    )
    counts = await store.counts(job.id)
    assert job.status is JobStatus.ABORTED and "--max-errors 5" in (job.message or "")
    assert len(api.batches) == 1  # 25 failures > 5: not one call more
    assert (counts["failed"], counts["pending"]) == (25, 75)
    assert runner.stats.failed == 25


async def test_waves_run_one_after_the_other() -> None:
    store, states = MemoryStore(), fleet(40)
    api = FakeApi(states)
    job, runner = await run(
        store, api, await new_job(store, "reboot", sorted(states), waves=(5, None), no_wait=True)
    )
    assert job.status is JobStatus.SUCCEEDED, job.message
    assert [len(b) for b in api.batches] == [5, 25, 10]
    assert (runner.stats.wave, runner.stats.waves) == (2, 2)


async def test_a_wave_given_as_a_percentage_is_of_the_workspaces_to_act_on() -> None:
    store, states = MemoryStore(), fleet(40)
    api = FakeApi(states)
    job, runner = await run(
        store,
        api,
        await new_job(store, "reboot", sorted(states), waves=("10%", "50%", None), no_wait=True),
    )
    assert job.status is JobStatus.SUCCEEDED, job.message
    assert [len(b) for b in api.batches] == [4, 20, 16]  # 10 % and 50 % of 40, then the rest
    assert (runner.stats.wave, runner.stats.waves) == (3, 3)


async def kill_mid_batch(store: MemoryStore, api: FakeApi, job: JobRecord) -> dict[str, int]:
    """Run until the blocked call is in flight, then cancel the run's task group (a kill)."""
    async with anyio.create_task_group() as tg:
        tg.start_soon(run, store, api, job)
        with anyio.fail_after(10):
            await api.blocked.wait()
        tg.cancel_scope.cancel()
    return await store.counts(job.id)


async def test_kill_in_the_middle_of_a_batch_then_resume_resends_a_reboot() -> None:
    store, states = MemoryStore(), fleet(60)
    ids = sorted(states)
    api = FakeApi(states, block={"RebootWorkspaces": 2})
    job = await new_job(store, "reboot", ids, concurrency=1, no_wait=True)
    counts = await kill_mid_batch(store, api, job)
    assert api.blocked.is_set()  # the kill came while a call was in flight
    assert counts["in_flight"] == 25 and counts["submitted"] == 25
    in_flight = {
        w for w, i in (await items(store, job.id)).items() if i.state is ItemState.IN_FLIGHT
    }
    assert not set(api.acted) & in_flight  # the blocked call never reached the service
    api.block.clear()
    job, runner = await run(store, api, job)
    assert job.status is JobStatus.SUCCEEDED, job.message
    assert {api.acted[w] for w in ids} == {1}  # in-flight ones resent once, no other twice
    assert runner.stats.in_flight == 0


async def test_kill_in_the_middle_of_a_rebuild_holds_it_in_doubt_until_the_operator_says() -> None:
    store, states = MemoryStore(), fleet(4)
    ids = sorted(states)
    api = FakeApi(states, block={"RebuildWorkspaces": 2})
    job = await new_job(
        store, "rebuild", ids, concurrency=1, ignore_snapshot_age=True, no_wait=True
    )
    counts = await kill_mid_batch(store, api, job)
    assert counts["in_flight"] == 1
    api.block.clear()
    job, runner = await run(store, api, job)
    got = await items(store, job.id)
    doubt = [w for w in ids if got[w].state is ItemState.IN_DOUBT]
    assert doubt == [ids[1]] and api.acted[ids[1]] == 0  # not sent again
    assert job.status is JobStatus.INTERRUPTED and "--redo-in-doubt" in (job.message or "")
    assert exit_code_for(job.status, await store.counts(job.id)) == 4
    assert runner.stats.in_doubt == 1
    job, _ = await run(store, api, job, redo_in_doubt=True)
    assert job.status is JobStatus.SUCCEEDED, job.message
    assert {api.acted[w] for w in ids} == {1}


async def test_evidence_found_on_resume_counts_for_verification() -> None:
    """A reboot that reached the service before the kill shows REBOOTING when the resume
    describes it: that look is the evidence, so the item succeeds verified once it settles
    (not Unverified, and not sent again)."""
    store, states = MemoryStore(), fleet(3)
    ids = sorted(states)
    api = FakeApi(states)
    job = await new_job(store, "reboot", ids)
    await JobRunner(store, {REGION: api}, job).plan_only()
    planned = await items(store, job.id)
    store.apply([ItemUpdate(ids=[planned[ids[0]].id], state=ItemState.IN_FLIGHT)], ())
    # The call happened before the kill: the WorkSpace is rebooting; one look, then it settles.
    api.states[ids[0]] = "REBOOTING"
    api._pending_end[ids[0]] = "AVAILABLE"
    with anyio.fail_after(8):
        job, _ = await run(store, api, job)
    got = await items(store, job.id)
    assert job.status is JobStatus.SUCCEEDED, job.message
    assert got[ids[0]].state is ItemState.SUCCEEDED
    assert got[ids[0]].error_code is None  # verified: the resume saw the reboot
    assert api.acted[ids[0]] == 0  # not sent again


async def test_a_permanently_broken_operation_stops_the_job_within_a_few_dozen_requests() -> None:
    store, states = MemoryStore(), fleet(500)
    api = FakeApi(states, broken={"RebootWorkspaces": "InternalFailure"})
    job, runner = await run(store, api, await new_job(store, "reboot", sorted(states)))
    assert job.status is JobStatus.FAILED
    assert "RebootWorkspaces" in (job.message or "") and "InternalFailure" in (job.message or "")
    assert exit_code_for(job.status, await store.counts(job.id)) == 1
    reboots = api.calls["RebootWorkspaces"]
    # 5 failures in a row open the breaker; calls already in flight (8) finish; 3 attempts each
    assert 5 <= reboots <= 5 + 8
    assert api.requests - api.calls["DescribeWorkspaces"] == 3 * reboots <= 40
    events = await store.events_for(job.id)
    assert sum(e["attempts"] for e in events if e["operation"] == "RebootWorkspaces") == 3 * reboots
    assert runner.client_stats().calls == len(events)


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("InternalFailure", "InternalFailure"),
        ("MissingAuthenticationToken", "MissingAuthentication"),
    ],
)
async def test_a_plan_the_api_refuses_ends_the_job_failed(code: str, words: str) -> None:
    store, states = MemoryStore(), fleet(10)
    api = FakeApi(states, broken={"DescribeWorkspaces": code})
    job, _ = await run(store, api, await new_job(store, "reboot", sorted(states)))
    assert job.status is JobStatus.FAILED
    assert "planning failed" in (job.message or "") and "DescribeWorkspaces" in (job.message or "")
    assert words in (job.message or "") and "resume" not in (job.message or "")
    assert job.planned_at is None and await items(store, job.id) == {}
    assert api.requests <= 3


async def test_credentials_rejected_mid_run_interrupt_the_job() -> None:
    store, states = MemoryStore(), fleet(30)
    api = FakeApi(states)
    job = await new_job(store, "reboot", sorted(states), no_wait=True)
    runner = JobRunner(store, {REGION: api}, job)
    await runner.plan_only()
    api.broken["RebootWorkspaces"] = "MissingAuthenticationToken"
    job = await runner.run()
    assert job.status is JobStatus.INTERRUPTED
    assert "credentials" in (job.message or "") and "resume" in (job.message or "")
    assert (await store.counts(job.id))["pending"] == 30


async def test_throttled_calls_are_counted_once_for_the_display_and_the_record() -> None:
    store, states = MemoryStore(), fleet(50)
    api = FakeApi(states, throttle_first=3)
    job, runner = await run(store, api, await new_job(store, "reboot", sorted(states)))
    events = await store.events_for(job.id)
    assert job.status is JobStatus.SUCCEEDED, job.message
    shown = runner.client_stats()
    assert shown.retries >= 6  # three throttled attempts of each operation were retried
    assert shown.retries == sum(max(0, e["attempts"] - 1) for e in events)
    assert api.requests == sum(e["attempts"] for e in events)


async def test_a_plan_only_run_stopped_half_way_is_interrupted_and_plans_nothing() -> None:
    store, states = MemoryStore(), fleet(10)
    api = FakeApi(states, block={"DescribeWorkspaces": 1})
    job = await new_job(store, "reboot", sorted(states))
    stop = StopSignal()
    runner = JobRunner(store, {REGION: api}, job, stop=stop)

    async def stop_when_blocked() -> None:
        await api.blocked.wait()
        stop.set("interrupted")

    async with anyio.create_task_group() as tg:
        tg.start_soon(stop_when_blocked)
        with pytest.raises(Interrupted, match="while planning"):
            await runner.plan_only()
    job = await store.get_job(job.id)
    assert job.planned_at is None and job.status is JobStatus.PLANNED
    assert await items(store, job.id) == {}


async def test_one_worker_per_scope_each_with_its_own_client() -> None:
    store = MemoryStore()
    a = FakeApi({f"ws-a{i:07d}": "AVAILABLE" for i in range(30)})
    b = FakeApi({f"ws-b{i:07d}": "AVAILABLE" for i in range(10)})
    job = await store.create_job(
        NewJob(
            action="reboot",
            params={},
            targets=Targets().as_dict(),
            options=JobOptions(rate=None, include_connected=True, no_wait=True).as_dict(),
            region=REGION,
        )
    )
    scopes = {f"111111111111/{REGION}": a, f"222222222222/{REGION}": b}
    job = await JobRunner(store, scopes, job).run()
    got = await items(store, job.id)
    assert job.status is JobStatus.SUCCEEDED, job.message
    assert set(a.acted) == {w for w in got if w.startswith("ws-a")} and len(a.acted) == 30
    assert set(b.acted) == {w for w in got if w.startswith("ws-b")} and len(b.acted) == 10
    assert {got[w].account for w in a.acted} == {"111111111111"}
    assert {got[w].account for w in b.acted} == {"222222222222"}
    regions = {e["region"] for e in await store.events_for(job.id)}
    assert regions == set(scopes)
