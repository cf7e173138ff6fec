"""Workers on a shared PostgreSQL store: ``fleetops worker`` processes take queued jobs; one
killed with SIGKILL mid-job has its job taken over by another once its lease expires (nothing
lost, no destructive call repeated); SIGTERM drains a worker and requeues its job; two workers
on one account-region share its quota.

The witness of "acted on once" is the simulator's ``calls_by_workspace`` (every WorkSpace each
admitted request named). Needs a PostgreSQL server (``FLEETOPS_TEST_POSTGRES``).
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import psycopg
import pytest
from fleetops_harness import SimProcess, base_env, sim_process, wait_until

from fleetops import api
from fleetops.aws.client import Connection
from fleetops.catalogue.options import JobOptions
from fleetops.catalogue.targets import Targets
from fleetops.queue.tasks import queue_job
from fleetops.records import JobRecord
from fleetops.sim import Simulator
from fleetops.states import ItemState, JobStatus
from fleetops.store import Store

LEASE = 4.0

__all__ = ["sim_process"]  # the fixture, for pytest


class Worker:
    """A ``fleetops worker`` process (output to files; killed at teardown by its pid)."""

    def __init__(self, url: str, tmp_path: Path, name: str, *args: str) -> None:
        self.err_path = tmp_path / f"{name}.err"
        with self.err_path.open("wb") as err:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "fleetops", "--db", url, "-v", "worker", *args],
                env=base_env(tmp_path),
                stdout=subprocess.DEVNULL,
                stderr=err,
                stdin=subprocess.DEVNULL,
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(timeout=10)


@pytest.fixture
def workers(postgres_db: str, tmp_path: Path) -> Iterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.stop()


def start_worker(started: list[Worker], url: str, tmp_path: Path, *args: str) -> Worker:
    worker = Worker(
        url, tmp_path, f"worker{len(started) + 1}", "--lease-seconds", f"{LEASE:g}", *args
    )
    started.append(worker)
    return worker


def directory_ids(sim: Simulator | SimProcess) -> list[str]:
    import boto3

    client = boto3.client(
        "workspaces",
        endpoint_url=sim.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    return [d["DirectoryId"] for d in client.describe_workspace_directories()["Directories"]]


def queue(
    url: str,
    sim: Simulator | SimProcess,
    action: str,
    targets: Targets | None = None,
    params: dict[str, object] | None = None,
    **options: object,
) -> JobRecord:
    """Plan a job against ``sim`` and queue it (as ``fleetops run … --queue`` does)."""

    async def main() -> JobRecord:
        store = await Store.open(url)
        try:
            spec = api.JobSpec(
                action=action,
                targets=targets or Targets.build(),
                params=params or {},
                connection=Connection.resolve("us-east-1", None, sim.endpoint_url),
                options=JobOptions(**options),  # type: ignore[arg-type]
            )
            job = await api.create_job(store, spec)
            await api.plan_job(store, job.id)
            return await queue_job(store, job.id)
        finally:
            await store.close()

    return anyio.run(main)


def job_row(url: str, job_id: str) -> dict[str, object]:
    with psycopg.connect(url) as conn:
        cur = conn.execute("SELECT status, lease_owner, message FROM jobs WHERE id = %s", (job_id,))
        status, owner, message = cur.fetchone() or (None, None, None)
        counts = dict(
            conn.execute(
                "SELECT state, count(*) FROM items WHERE job_id = %s GROUP BY state", (job_id,)
            ).fetchall()
        )
    return {"status": status, "owner": owner, "message": message, "counts": counts}


def queue_entries(url: str, job_id: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT status FROM procrastinate_jobs WHERE queueing_lock = %s", (job_id,)
        ).fetchall()
    return [str(status) for (status,) in rows]


def owner_pid(owner: object) -> int | None:
    if not isinstance(owner, str):
        return None
    return int(owner.split(":")[1])


def test_a_killed_workers_job_is_taken_over_and_resumed(
    postgres_db: str, tmp_path: Path, workers: list[Worker]
) -> None:
    # Rebuild: destructive, one WorkSpace per call — a repeat would show in the witness.
    with Simulator(
        workspaces=80, seed=11, rate=16, burst=8, transition_seconds=0.5
    ).run_in_thread() as sim:
        job = queue(postgres_db, sim, "rebuild", rate=16, burst=8, ignore_snapshot_age=True)
        eligible = sum(
            n for state, n in job_row(postgres_db, job.id)["counts"].items() if state != "skipped"
        )
        first = start_worker(workers, postgres_db, tmp_path)
        second = start_worker(workers, postgres_db, tmp_path)

        def running_with_work_left() -> int | None:
            row = job_row(postgres_db, job.id)
            counts = row["counts"]
            assert isinstance(counts, dict)
            if (
                row["status"] == "running"
                and counts.get("succeeded", 0) + counts.get("submitted", 0) >= 10
                and counts.get("pending", 0) > 20
            ):
                return owner_pid(row["owner"])
            return None

        holder_pid = wait_until(running_with_work_left, timeout=60, what="the job mid-way")
        holder, other = (first, second) if holder_pid == first.pid else (second, first)
        assert holder.pid == holder_pid
        listed = subprocess.run(
            [sys.executable, "-m", "fleetops", "--db", postgres_db, "jobs", "list"],
            env=base_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert f"{socket.gethostname()}:{holder_pid}" in listed.stdout  # jobs list: held by
        holder.popen.send_signal(signal.SIGKILL)
        holder.popen.wait(timeout=10)
        killed_at = time.monotonic()

        def taken_over() -> bool:
            return owner_pid(job_row(postgres_db, job.id)["owner"]) == other.pid

        wait_until(taken_over, timeout=LEASE + 10, interval=0.1, what="the takeover")
        took = time.monotonic() - killed_at

        def ended() -> bool:
            return job_row(postgres_db, job.id)["status"] in ("succeeded", "interrupted")

        wait_until(ended, timeout=90, interval=0.2, what="the job's end")
        row = job_row(postgres_db, job.id)
        counts = row["counts"]
        assert isinstance(counts, dict)
        rebuilds = sim.stats().calls_by_workspace.get("RebuildWorkspaces", {})

    assert took <= LEASE + 5, f"taken over {took:.1f} s after the kill"
    # Nothing lost: every eligible WorkSpace reached an end (in doubt ones are held).
    assert counts.get("pending", 0) == counts.get("in_flight", 0) == 0
    assert counts.get("submitted", 0) == 0
    assert (
        counts.get("succeeded", 0) + counts.get("in_doubt", 0) + counts.get("failed", 0) == eligible
    )
    # No destructive repeat: no WorkSpace was rebuilt twice.
    assert rebuilds and max(rebuilds.values()) == 1
    assert len(rebuilds) >= counts.get("succeeded", 0)
    if row["status"] == "interrupted":
        assert counts.get("in_doubt", 0) > 0, row["message"]


def test_sigterm_drains_the_worker_and_requeues_its_job(
    postgres_db: str, tmp_path: Path, workers: list[Worker]
) -> None:
    with Simulator(
        workspaces=250, seed=12, rate=4, burst=2, transition_seconds=0.5
    ).run_in_thread() as sim:
        job = queue(postgres_db, sim, "reboot", rate=4, burst=2, concurrency=2)
        worker = start_worker(workers, postgres_db, tmp_path)

        def mid_submit() -> bool:
            row = job_row(postgres_db, job.id)
            counts = row["counts"]
            assert isinstance(counts, dict)
            return (
                row["status"] == "running"
                and counts.get("submitted", 0) + counts.get("succeeded", 0) >= 25
                and counts.get("pending", 0) > 25
            )

        wait_until(mid_submit, timeout=60, what="the job mid-submit")
        worker.popen.send_signal(signal.SIGTERM)
        code = worker.popen.wait(timeout=30)
        assert code == 0, worker.stderr[-2000:]
        row = job_row(postgres_db, job.id)
        counts = row["counts"]
        assert isinstance(counts, dict)
        assert row["status"] == "interrupted"
        assert "worker stopping" in str(row["message"])
        assert row["owner"] is None
        assert counts.get("in_flight", 0) == 0  # calls in flight finished before the exit
        assert counts.get("pending", 0) > 0
        assert queue_entries(postgres_db, job.id).count("todo") == 1  # back on the queue

        # Another worker takes it from the queue and finishes it; nobody rebooted twice.
        later = start_worker(workers, postgres_db, tmp_path, "--once")
        assert later.popen.wait(timeout=90) == 0, later.stderr[-2000:]
        reboots = sim.stats().calls_by_workspace.get("RebootWorkspaces", {})
    row = job_row(postgres_db, job.id)
    assert row["status"] == "succeeded", row
    counts = row["counts"]
    assert isinstance(counts, dict)
    assert len(reboots) == counts["succeeded"]
    assert max(reboots.values()) == 1


def test_two_workers_on_one_account_region_share_its_quota(
    postgres_db: str,
    tmp_path: Path,
    workers: list[Worker],
    sim_process: Callable[..., SimProcess],
) -> None:
    # Tagging: one call per WorkSpace, enough calls for the throttled share to mean something.
    # Each job is told the account's whole quota (10 calls/s); together they must keep to it.
    # The account's burst is the jobs' burst (5) plus 5: room for calls that a loaded machine
    # delays and then delivers together; the rate binds as before (two jobs that did not share
    # it would send 20 calls/s).
    sim = sim_process("--workspaces", "240", "--seed", "13", "--rate", "10", "--burst", "10")
    jobs = [
        queue(
            postgres_db,
            sim,
            "tag",
            Targets.build(directory_id=d),
            {"set": {"team": f"t{n}"}},
            rate=10,
            burst=5,
        )
        for n, d in enumerate(directory_ids(sim)[:2])
    ]
    before = sim.stats()
    for _ in range(2):
        start_worker(workers, postgres_db, tmp_path)

    def both_ended() -> bool:
        return all(
            job_row(postgres_db, job.id)["status"] == JobStatus.SUCCEEDED.value for job in jobs
        )

    wait_until(both_ended, timeout=90, interval=0.2, what="both jobs to succeed")
    after = sim.stats()
    tags = after["calls_by_operation"].get("CreateTags", 0)
    assert tags >= 100
    calls = sum(after["calls_by_operation"].values()) - sum(before["calls_by_operation"].values())
    throttled = after["throttled"] - before["throttled"]
    assert throttled <= 0.02 * (calls + throttled), (throttled, calls)
    logs = "".join(worker.stderr for worker in workers)
    assert "shared by 2 runner(s)" in logs
    for job in jobs:
        counts = job_row(postgres_db, job.id)["counts"]
        assert isinstance(counts, dict)
        assert counts.get(ItemState.SUCCEEDED.value, 0) > 0
