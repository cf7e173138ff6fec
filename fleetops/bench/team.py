"""Team scenarios (S7, S8): ``fleetops worker`` processes sharing one PostgreSQL store.

* S7 — two workers, four jobs over four regions (a simulator process per region, each at the
  documented 2 calls/s): throughput against one job alone, WorkSpaces acted on twice, throttling.
  Then one account-region (at a raised 10 calls/s, for speed): two jobs on two workers, both
  told the whole quota, against one job of both sizes on one worker: time and throttling.
* S8 — two workers, one job of rebuilds (destructive, one per call); the worker holding it is
  killed with SIGKILL mid-job: how long until the other holds the job, what was lost, what was
  repeated.

Jobs are planned and queued in this process through the Python API (as ``run --queue`` does);
the workers are child processes running the CLI. The PostgreSQL server is
``$FLEETOPS_BENCH_POSTGRES`` or ``$FLEETOPS_TEST_POSTGRES`` (a URL; a fresh database is created
on it and dropped afterwards), else a temporary server started with ``initdb``/``pg_ctl``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fleetops.bench._proc import Proc, SimProcess, python_argv
from fleetops.bench.scenarios import REGIONS, Sizes, _ratio, _target

__all__ = ["postgres_server", "run_s7", "run_s8"]

S8_LEASE = 10.0
RUN_TIMEOUT = 600.0


# -- the PostgreSQL server ------------------------------------------------------------------------


@contextmanager
def postgres_server() -> Iterator[str]:
    """A PostgreSQL server URL on which databases may be created."""
    given = os.environ.get("FLEETOPS_BENCH_POSTGRES") or os.environ.get("FLEETOPS_TEST_POSTGRES")
    if given:
        yield given
        return
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if not initdb or not pg_ctl:
        raise RuntimeError(
            "S7/S8 need PostgreSQL: set FLEETOPS_BENCH_POSTGRES=postgresql://USER@HOST:PORT/DB "
            "or install the PostgreSQL server (initdb, pg_ctl)"
        )
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="fleetops-pg-") as tmp:
        data = Path(tmp) / "data"
        as_user: list[str] = []
        if os.geteuid() == 0:  # initdb refuses root: run the server as the postgres user
            shutil.chown(tmp, user="postgres")
            as_user = ["runuser", "-u", "postgres", "--"]
        run = [*as_user, initdb, "-D", str(data), "-U", "postgres", "--auth=trust"]
        subprocess.run(run, check=True, capture_output=True)
        opts = f"-p {port} -k {tmp} -c listen_addresses=127.0.0.1"
        start = [*as_user, pg_ctl, "-D", str(data), "-o", opts, "-l", f"{tmp}/log", "-w", "start"]
        subprocess.run(start, check=True, capture_output=True)
        try:
            yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
        finally:
            stop = [*as_user, pg_ctl, "-D", str(data), "-m", "fast", "stop"]
            subprocess.run(stop, check=False, capture_output=True)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def fresh_database(server: str) -> Iterator[str]:
    from fleetops.store.scratch import scratch_postgresql_database

    with scratch_postgresql_database(server, prefix="fleetops_bench") as url:
        yield url


# -- jobs and workers -----------------------------------------------------------------------------


def queue_jobs(
    url: str,
    jobs: list[tuple[str, str, str, dict[str, Any]]],
    *,
    plan: bool = True,
    targets: list[Any] | None = None,
    params: list[dict[str, Any]] | None = None,
) -> list[str]:
    """Queue ``(action, region, endpoint, options)`` jobs (planned first, as ``run --queue``
    does, or left for the worker to plan), with their targets and parameters (default: every
    WorkSpace, none); their ids."""
    import anyio

    from fleetops import api
    from fleetops.aws.client import Connection
    from fleetops.catalogue.options import JobOptions
    from fleetops.catalogue.targets import Targets
    from fleetops.queue.tasks import queue_job
    from fleetops.store import Store

    async def main() -> list[str]:
        store = await Store.open(url)
        ids = []
        try:
            for n, (action, region, endpoint, options) in enumerate(jobs):
                spec = api.JobSpec(
                    action=action,
                    targets=targets[n] if targets else Targets.build(),
                    connection=Connection.resolve(region, None, endpoint),
                    options=JobOptions(**options),
                    params=params[n] if params else {},
                )
                job = await api.create_job(store, spec)
                if plan:
                    await api.plan_job(store, job.id)
                ids.append((await queue_job(store, job.id)).id)
        finally:
            await store.close()
        return ids

    return anyio.run(main)


def worker(url: str, *args: str) -> Proc:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_CONFIG_FILE="/dev/null"
    )
    return Proc(python_argv("-m", "fleetops", "--db", url, "-q", "worker", *args), env=env)


def job_rows(url: str, ids: list[str]) -> dict[str, dict[str, Any]]:
    """Each job's status, lease owner, start and end, and its items by state."""
    import psycopg

    out: dict[str, dict[str, Any]] = {}
    with psycopg.connect(url) as conn:
        for job_id in ids:
            row = conn.execute(
                "SELECT status, lease_owner, started_at, finished_at FROM jobs WHERE id = %s",
                (job_id,),
            ).fetchone()
            assert row is not None
            counts: dict[Any, Any] = dict(
                conn.execute(
                    "SELECT state, count(*) FROM items WHERE job_id = %s GROUP BY state",
                    (job_id,),
                ).fetchall()
            )
            first_call = conn.execute(
                "SELECT min(at) FROM events WHERE job_id = %s", (job_id,)
            ).fetchone()
            out[job_id] = {
                "status": row[0],
                "owner": row[1],
                "started_at": row[2],
                "finished_at": row[3],
                # the job's first API call (its plan, when the worker plans it)
                "first_call_at": first_call[0] if first_call else None,
                "counts": {str(k): int(v) for k, v in counts.items()},
            }
    return out


def wait_for(probe: Callable[[], Any], timeout: float, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"condition not met within {timeout:g} s")


def _ended(url: str, ids: list[str]) -> bool:
    return all(
        r["status"] in ("succeeded", "failed", "aborted", "interrupted")
        for r in job_rows(url, ids).values()
    )


def _acted(counts: dict[str, int]) -> int:
    return sum(counts.get(k, 0) for k in ("succeeded", "failed", "in_doubt", "submitted"))


def _stop(procs: list[Proc]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.kill(signal.SIGTERM)


# -- S7 --------------------------------------------------------------------------------------------


def _s7_phase(
    server: str, sims: list[SimProcess], workers: int, concurrency: int, options: dict[str, Any]
) -> dict[str, Any]:
    with fresh_database(server) as url:
        # Unplanned: each worker plans and runs its job (every call of the job on its quota).
        ids = queue_jobs(url, [("reboot", s.region, s.url, options) for s in sims], plan=False)
        for sim in sims:
            sim.reset()
        procs = [worker(url, "--concurrency", str(concurrency)) for _ in range(workers)]
        try:
            wait_for(lambda: _ended(url, ids), RUN_TIMEOUT, 0.2)
        finally:
            _stop(procs)
        rows = job_rows(url, ids)
    stats = [sim.stats() for sim in sims]
    start = min(r["first_call_at"] or r["started_at"] for r in rows.values())
    end = max(r["finished_at"] or time.time() for r in rows.values())
    acted = sum(_acted(r["counts"]) for r in rows.values())
    calls = sum(sum(s["calls_by_operation"].values()) for s in stats)
    throttled = sum(int(s["throttled"]) for s in stats)
    twice = sum(
        1
        for s in stats
        for n in s["calls_by_workspace"].get("RebootWorkspaces", {}).values()
        if n > 1
    )
    return {
        "jobs": len(ids),
        "statuses": sorted(r["status"] for r in rows.values()),
        "wall_s": round(end - start, 3),
        "items": acted,
        "items_per_s": _ratio(acted, end - start),
        "calls": calls,
        "calls_by_operation": dict(
            sorted(
                (op, sum(st["calls_by_operation"].get(op, 0) for st in stats))
                for op in {op for st in stats for op in st["calls_by_operation"]}
            )
        ),
        "throttled": throttled,
        "throttled_share": _ratio(throttled, calls + throttled) or 0.0,
        "acted_twice": twice,
        # each job: seconds from the first job's first call to its own, and its run time
        "jobs_start_run_s": sorted(
            (
                round((r["first_call_at"] or start) - start, 2),
                round((r["finished_at"] or end) - (r["first_call_at"] or start), 2),
            )
            for r in rows.values()
        ),
    }


def _ids_by_directory(sim: SimProcess) -> list[list[str]]:
    import boto3

    client = boto3.client(
        "workspaces",
        endpoint_url=sim.url,
        region_name=sim.region,
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
    )
    found: dict[str, list[str]] = {}
    for page in client.get_paginator("describe_workspaces").paginate():
        for ws in page["Workspaces"]:
            found.setdefault(ws["DirectoryId"], []).append(ws["WorkspaceId"])
    return [sorted(ids) for _, ids in sorted(found.items())]


def _shared_quota_phase(server: str, knobs: dict[str, Any], split: bool) -> dict[str, Any]:
    """Tag two directories of one account-region: one job on one worker, or a job per
    directory on a worker each (both told the account's whole quota)."""
    from fleetops.catalogue.targets import Targets

    rate = float(knobs["rate"])
    with SimProcess(**knobs) as sim, fresh_database(server) as url:
        groups = _ids_by_directory(sim)[:2]
        chosen = groups if split else [groups[0] + groups[1]]
        ids = queue_jobs(
            url,
            [("tag", sim.region, sim.url, {"rate": rate, "burst": knobs["burst"]})] * len(chosen),
            plan=False,
            targets=[Targets.build(workspace_ids=g) for g in chosen],
            params=[{"set": {"team": f"t{n}"}} for n in range(len(chosen))],
        )
        sim.reset()
        procs = [worker(url) for _ in chosen]
        try:
            wait_for(lambda: _ended(url, ids), RUN_TIMEOUT, 0.2)
        finally:
            _stop(procs)
        rows = job_rows(url, ids)
        stats = sim.stats()
    start = min(r["first_call_at"] or r["started_at"] for r in rows.values())
    end = max(r["finished_at"] or time.time() for r in rows.values())
    calls = sum(stats["calls_by_operation"].values())
    return {
        "jobs": len(ids),
        "workspaces": [len(g) for g in chosen],
        "statuses": sorted(r["status"] for r in rows.values()),
        "wall_s": round(end - start, 3),
        "calls": calls,
        "throttled": int(stats["throttled"]),
        "throttled_share": _ratio(int(stats["throttled"]), calls + int(stats["throttled"])) or 0.0,
    }


def run_s7(sizes: Sizes, workdir: Path) -> dict[str, Any]:
    rate, burst = sizes.s6_rate, 5
    knobs: dict[str, Any] = {
        # Jobs long enough (~70 calls each at 2 calls/s) that a few polls more or less, or a
        # second's difference in start, do not decide the ratio.
        "workspaces": sizes.s6_workspaces * 5 // 2,
        "rate": rate,
        "burst": burst,
        "latency_ms": sizes.latency_ms,
        # Transitions long enough to be observed between polls (verified, not "unverified").
        "transition_seconds": max(1.0, sizes.transition_s),
    }
    options = {"rate": rate, "burst": burst}
    sims = [SimProcess(**knobs, region=r, seed=i) for i, r in enumerate(REGIONS)]
    for sim in sims:
        sim.__enter__()
    try:
        with postgres_server() as server:
            one = _s7_phase(server, sims[:1], workers=1, concurrency=1, options=options)
            four = _s7_phase(server, sims, workers=2, concurrency=2, options=options)
            # One account-region shared by two runners (a raised quota, for speed).
            quota = {**knobs, "workspaces": sizes.s6_workspaces * 2, "rate": 10.0, "burst": 5}
            alone = _shared_quota_phase(server, quota, split=False)
            shared = _shared_quota_phase(server, quota, split=True)
    finally:
        for sim in sims:
            sim.__exit__(None, None, None)
    scale = _ratio(four["items_per_s"], one["items_per_s"])
    slowdown = _ratio(shared["wall_s"], alone["wall_s"])
    return {
        "id": "S7",
        "title": "workers",
        "setup": {**knobs, "regions": list(REGIONS), "workers": 2, "concurrency": 2},
        "fleetops": {"one_job_one_worker": one, "four_jobs_two_workers": four},
        "peer": {"note": "no peer: a plain boto3 script has no queue, workers or takeover"},
        "derived": {
            "one job alone": one,
            "four jobs, two workers": four,
            "throughput ratio": scale,
            "one account-region, one job of both sizes": alone,
            "one account-region, two jobs on two workers": shared,
            "two runners sharing a quota / one job": slowdown,
        },
        "targets": [
            _target("4 jobs on 2 workers / 1 job alone", scale, 3.6, at_most=False),
            _target("WorkSpaces acted on twice", four["acted_twice"], 0),
            _target("throttled share", four["throttled_share"], 0.02),
            _target("shared quota: 2 runners / 1 job of both sizes", slowdown, 1.15),
            _target("shared quota: throttled share", shared["throttled_share"], 0.02),
        ],
    }


# -- S8 --------------------------------------------------------------------------------------------


def run_s8(sizes: Sizes, workdir: Path) -> dict[str, Any]:
    rate, burst = 10.0, 5
    knobs: dict[str, Any] = {
        "workspaces": max(60, sizes.s6_workspaces),
        "rate": rate,
        "burst": burst,
        "latency_ms": sizes.latency_ms,
        "transition_seconds": max(1.0, sizes.transition_s),
    }
    lease = S8_LEASE
    with SimProcess(**knobs) as sim, postgres_server() as server, fresh_database(server) as url:
        options = {"rate": rate, "burst": burst, "ignore_snapshot_age": True}
        (job_id,) = queue_jobs(url, [("rebuild", sim.region, sim.url, options)])
        eligible = sum(
            n for s, n in job_rows(url, [job_id])[job_id]["counts"].items() if s != "skipped"
        )
        sim.reset()
        args = ("--lease-seconds", f"{lease:g}")
        procs = [worker(url, *args), worker(url, *args)]
        try:

            def mid_job() -> int | None:
                row = job_rows(url, [job_id])[job_id]
                done = row["counts"].get("succeeded", 0) + row["counts"].get("submitted", 0)
                if row["status"] == "running" and done >= eligible // 4 and row["owner"]:
                    return int(str(row["owner"]).split(":")[1])
                return None

            holder = wait_for(mid_job, RUN_TIMEOUT, 0.05)
            victim = next(p for p in procs if p.pid == holder)
            survivor = next(p for p in procs if p.pid != holder)
            at_kill = job_rows(url, [job_id])[job_id]["counts"]
            victim.kill(signal.SIGKILL)
            killed = time.monotonic()

            def taken_over() -> bool:
                owner = job_rows(url, [job_id])[job_id]["owner"]
                return bool(owner) and str(owner).split(":")[1] == str(survivor.pid)

            wait_for(taken_over, lease + 60, 0.05)
            takeover = time.monotonic() - killed
            wait_for(lambda: _ended(url, [job_id]), RUN_TIMEOUT, 0.2)
            ended = time.monotonic() - killed
        finally:
            _stop(procs)
        row = job_rows(url, [job_id])[job_id]
        stats = sim.stats()
    counts = row["counts"]
    rebuilds = stats["calls_by_workspace"].get("RebuildWorkspaces", {})
    repeats = sum(1 for n in rebuilds.values() if n > 1)
    # Every eligible WorkSpace ends succeeded, failed or held in doubt: anything else is lost.
    lost = eligible - sum(counts.get(k, 0) for k in ("succeeded", "failed", "in_doubt"))
    return {
        "id": "S8",
        "title": "worker killed",
        "setup": {**knobs, "action": "rebuild", "workers": 2, "lease_s": lease},
        "fleetops": {"job": {"status": row["status"], "counts": counts}},
        "peer": {"note": "no peer: a plain boto3 script has no queue, workers or takeover"},
        "derived": {
            "items at the kill": at_kill,
            "takeover after the kill s": round(takeover, 2),
            "job ended after the kill s": round(ended, 2),
            "in doubt (held for the operator)": counts.get("in_doubt", 0),
            "lost": lost,
            "rebuilds repeated": repeats,
        },
        "targets": [
            _target("takeover after SIGKILL (s)", round(takeover, 2), lease + 5),
            _target("items lost", lost, 0),
            _target("destructive calls repeated", repeats, 0),
        ],
    }
