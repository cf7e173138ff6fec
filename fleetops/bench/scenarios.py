"""The rate-bound and throughput scenarios (S2, S3, S4, S6; S1 is ``bench.evidence``'s):
fleetops and its peer, each a child process against a simulator in a process of its own, over
real HTTP.

Every scenario returns a plain dict (JSON-ready): its setup, a ``fleetops`` and a ``peer`` run
(wall, CPU, peak RSS, calls by operation, throttled), derived figures and its targets.
"""

from __future__ import annotations

import math
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fleetops.bench._proc import Measured, Proc, SimProcess, file_size_mb, python_argv

__all__ = [
    "Sizes",
    "quota_bound",
    "rate_bound",
    "ratio",
    "run_s2",
    "run_s3",
    "run_s4",
    "run_s6",
    "target",
]

PEER_SCRIPT = str(Path(__file__).with_name("peer.py"))
REGIONS = ("us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2")
BATCH = 25  # the model's batch maximum for Reboot and DescribeWorkspaces ids (checked by a test)
RUN_TIMEOUT = 900.0


@dataclass(frozen=True)
class Sizes:
    """Fleet sizes and timings; ``quick()`` shrinks everything for the unit test."""

    s1_workspaces: int = 5000
    s1_aws_workspaces: int = 600  # S1 at AWS's own quota (2 calls/s, burst 5)
    s2_workspaces: int = 100_000
    s3_workspaces: int = 2000
    s4_workspaces: int = 100_000
    s5_jobs: int = 1000
    s5_items_per_job: int = 1000
    s6_workspaces: int = 200
    latency_ms: float = 50.0
    transition_s: float = 2.0
    fast_transition_s: float = 0.2
    s6_rate: float = 2.0
    peer_poll_s: float = 2.0

    @classmethod
    def quick(cls) -> Sizes:
        return cls(
            s1_workspaces=150,
            s1_aws_workspaces=60,
            s2_workspaces=600,
            s3_workspaces=40,
            s4_workspaces=1500,
            s5_jobs=10,
            s5_items_per_job=200,
            s6_workspaces=40,
            latency_ms=2.0,
            transition_s=0.2,
            fast_transition_s=0.05,
            s6_rate=20.0,
            peer_poll_s=0.2,
        )


def quota_bound(calls: int, rate: float, burst: int) -> float:
    """The fastest a job of ``calls`` calls can go: the burst is free, the rest at ``rate``."""
    return max(0, calls - burst) / rate


def _fleetops(db: Path, *args: str) -> list[str]:
    return python_argv("-m", "fleetops", "--db", str(db), "-q", *args)


def _run_args(sim: SimProcess, rate: float, burst: int, action: str, *extra: str) -> list[str]:
    return [
        "run",
        action,
        "--endpoint-url",
        sim.url,
        "--region",
        sim.region,
        "--yes",
        "--rate",
        repr(rate),
        "--burst",
        str(burst),
        "--json",
        *extra,
    ]


def _peer_argv(sim: SimProcess, action: str, poll_s: float) -> list[str]:
    return python_argv(
        PEER_SCRIPT,
        "--endpoint-url",
        sim.url,
        "--region",
        sim.region,
        "--action",
        action,
        "--poll-interval",
        repr(poll_s),
    )


def _candidates(states: dict[str, int], action: str) -> int:
    eligible = {
        "reboot": {"AVAILABLE", "UNHEALTHY"},
        "rebuild": {"AVAILABLE", "ERROR", "UNHEALTHY", "STOPPED", "REBOOTING"},
    }[action]
    return sum(n for state, n in states.items() if state in eligible)


def _process(m: Measured) -> dict[str, Any]:
    return {
        "returncode": m.returncode,
        "wall_s": round(m.wall_s, 3),
        "cpu_s": round(m.cpu_s, 3),
        "user_s": round(m.user_s, 3),
        "sys_s": round(m.sys_s, 3),
        "peak_rss_mb": round(m.max_rss_mb, 1),
    }


def _sim_calls(stats: dict[str, Any]) -> dict[str, Any]:
    admitted = dict(sorted(stats["calls_by_operation"].items()))
    total = int(stats["total_calls"])
    throttled = int(stats["throttled"])
    return {
        "calls_by_operation": admitted,
        "calls": sum(admitted.values()),
        "requests": total,
        "throttled": throttled,
        "throttled_share": round(throttled / total, 4) if total else 0.0,
        "errors_500": int(stats["errors_500"]),
        "max_concurrent": int(stats["max_concurrent"]),
    }


def _job_summary(m: Measured) -> dict[str, Any]:
    try:
        job = m.last_json()
    except ValueError as exc:
        return {"error": str(exc)}
    counts: dict[str, int] = job.get("counts", {})
    acted = sum(counts.get(k, 0) for k in ("succeeded", "failed", "in_doubt", "submitted"))
    return {
        "id": job.get("id"),
        "status": job.get("status"),
        "total": job.get("total"),
        "acted": acted,
        "counts": counts,
    }


def _peer_summary(m: Measured) -> dict[str, Any]:
    try:
        return m.last_json()
    except ValueError as exc:
        return {"error": str(exc)}


def _min_calls(
    *,
    workspaces: int,
    candidates: int,
    acted: int,
    batch: int,
    calls: dict[str, int],
    polls: int = 1,
) -> dict[str, int]:
    """The fewest calls the job could have made: the describe pages, the connection-status
    checks (when the guardrail ran), the actions, ``polls`` verification describes per 25
    acted-on WorkSpaces, and one snapshot check per acted-on WorkSpace (when that guardrail
    ran)."""
    minimum = {
        # a plan of the whole fleet lists the directories, then reads each one's pages
        "describe_pages": math.ceil(workspaces / BATCH)
        + (1 if calls.get("DescribeWorkspaceDirectories") else 0),
        "connection_status": math.ceil(candidates / BATCH)
        if calls.get("DescribeWorkspacesConnectionStatus")
        else 0,
        "snapshots": acted if calls.get("DescribeWorkspaceSnapshots") else 0,
        "actions": math.ceil(acted / batch),
        "verify": polls * math.ceil(acted / BATCH),
    }
    minimum["total"] = sum(minimum.values())
    return minimum


def _target(
    name: str, value: float | None, limit: float, *, at_most: bool = True
) -> dict[str, Any]:
    met = None if value is None else (value <= limit if at_most else value >= limit)
    return {
        "name": name,
        "value": value,
        "target": ("≤ " if at_most else "≥ ") + f"{limit:g}",
        "met": met,
    }


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def _per_ms(cpu_s: float, items: Any) -> float | None:
    """CPU milliseconds per item (None when nothing was done)."""
    return round(1000 * cpu_s / items, 4) if isinstance(items, int) and items > 0 else None


# -- S1 / S3: rate-bound actions ----------------------------------------------------------------


def _rate_bound(
    *,
    key: str,
    title: str,
    action: str,
    batch: int,
    workspaces: int,
    sizes: Sizes,
    workdir: Path,
    extra: tuple[str, ...] = (),
    check_calls: bool = True,
    quota: tuple[float, int] = (20.0, 50),
    client_rate: float | None = None,
    polls: int = 1,
    peer: bool = True,
    limit: float = 1.10,
    transition_s: float | None = None,
    learn_s: float | None = None,
) -> dict[str, Any]:
    """One rate-bound run against a simulator whose quota is ``quota`` (fleetops told
    ``--rate client_rate``, the quota's rate by default). ``polls`` verification describes per
    25 acted on count in the minimum (2: the evidence bound, a look in the transition and one at
    its end), and the bound adds one transition time to the quota's. With ``learn_s``, the
    throttled share's target counts only the requests after the first ``learn_s`` seconds (a
    quota set too high is learned from its first throttles); the whole run's is a figure."""
    rate, burst = quota
    knobs: dict[str, Any] = {
        "workspaces": workspaces,
        "rate": rate,
        "burst": burst,
        "latency_ms": sizes.latency_ms,
        "transition_seconds": transition_s or sizes.transition_s,
    }
    db = workdir / f"{key}.db"
    told = client_rate or rate
    with SimProcess(**knobs) as sim:
        states = sim.stats()["states"]
        run = Proc(_fleetops(db, *_run_args(sim, told, burst, action, *extra))).wait(RUN_TIMEOUT)
        stats = sim.stats()
    peer_run, peer_stats = None, None
    if peer:
        with SimProcess(**knobs) as sim:
            peer_run = Proc(_peer_argv(sim, action, sizes.peer_poll_s)).wait(RUN_TIMEOUT)
            peer_stats = sim.stats()

    job = _job_summary(run)
    job["unverified"] = _unverified(db)
    calls = _sim_calls(stats)
    candidates = _candidates(states, action)
    minimum = _min_calls(
        workspaces=workspaces,
        candidates=candidates,
        acted=int(job.get("acted") or 0),
        batch=batch,
        calls=calls["calls_by_operation"],
        polls=polls,
    )
    bound = quota_bound(minimum["total"], rate, burst)
    if polls > 1:
        bound += knobs["transition_seconds"]  # the last batch's transition is waited for
    targets = [_target("wall / quota bound", _ratio(run.wall_s, bound), limit)]
    if check_calls:
        targets.append(_target("calls / minimum", _ratio(calls["calls"], minimum["total"]), limit))
    targets.append(_throttled_target(calls, stats, learn_s))
    if polls > 1:
        share = _ratio(job["unverified"], job.get("acted"))
        targets.append(_target("Unverified share", share or 0.0, 0.01))
    result: dict[str, Any] = {
        "id": key,
        "title": title,
        "setup": {
            **knobs,
            "client_rate": told,
            "action": action,
            "state_candidates": candidates,
            "states": states,
        },
        "fleetops": {
            **_process(run),
            **calls,
            "job": job,
            "db_mb": round(file_size_mb(db), 2),
            "items_per_s": _ratio(job.get("acted"), run.wall_s),
        },
        "derived": {
            "min_calls": minimum,
            "quota_bound_s": round(bound, 2),
            "wall_over_bound": _ratio(run.wall_s, bound),
            "calls_over_min": _ratio(calls["calls"], minimum["total"]),
        },
        "targets": targets,
    }
    if peer_run is not None and peer_stats is not None:
        result["peer"] = _peer_part(peer_run, peer_stats, workspaces, candidates, batch, quota)
        result["derived"]["fleetops_over_peer_wall"] = _ratio(run.wall_s, peer_run.wall_s)
    return result


def _throttled_target(
    calls: dict[str, Any], stats: dict[str, Any], learn_s: float | None
) -> dict[str, Any]:
    """The throttled share's target: over the whole run, or (``learn_s``) over the requests
    after the first ``learn_s`` seconds, that share then added to ``calls``."""
    if learn_s is None:
        return _target("throttled share", calls["throttled_share"], 0.02)
    share = calls[f"throttled_share_after_{learn_s:g}s"] = _throttled_after(stats, learn_s)
    return _target(f"throttled share after the first {learn_s:g} s", share, 0.02)


def _throttled_after(stats: dict[str, Any], seconds: float) -> float | None:
    """The share of requests throttled after the first ``seconds`` of the simulator's timeline
    (counted from its first request); None when none came after them."""
    timeline = stats.get("timeline") or {}
    skip = math.ceil(seconds)
    admitted = sum(timeline.get("admitted", [])[skip:])
    throttled = sum(timeline.get("throttled", [])[skip:])
    total = admitted + throttled
    return round(throttled / total, 4) if total else None


def _peer_part(
    peer_run: Measured,
    peer_stats: dict[str, Any],
    workspaces: int,
    candidates: int,
    batch: int,
    quota: tuple[float, int],
) -> dict[str, Any]:
    peer_job = _peer_summary(peer_run)
    peer_min = math.ceil(workspaces / BATCH) + 2 * math.ceil(candidates / BATCH)
    if batch == 1:
        peer_min = math.ceil(workspaces / BATCH) + candidates + math.ceil(candidates / BATCH)
    return {
        **_process(peer_run),
        **_sim_calls(peer_stats),
        "result": peer_job,
        "quota_bound_s": round(quota_bound(peer_min, *quota), 2),
        "items_per_s": _ratio(peer_job.get("succeeded"), peer_run.wall_s),
    }


def _unverified(db: Path) -> int | None:
    """Items that ended ``Unverified`` (their end state seen, never their transition)."""
    from fleetops.states import UNVERIFIED

    try:
        with sqlite3.connect(db) as conn:
            row = conn.execute(
                "SELECT COUNT(*) FROM items WHERE error_code = ?", (UNVERIFIED,)
            ).fetchone()
    except sqlite3.Error:
        return None
    return int(row[0])


def run_s3(sizes: Sizes, workdir: Path) -> dict[str, Any]:
    return _rate_bound(
        key="S3",
        title="one-per-call action (rebuild)",
        action="rebuild",
        batch=1,
        workspaces=sizes.s3_workspaces,
        sizes=sizes,
        workdir=workdir,
        extra=("--ignore-snapshot-age",),
        check_calls=False,
    )


# -- S2: engine overhead -------------------------------------------------------------------------


def run_s2(sizes: Sizes, workdir: Path) -> dict[str, Any]:
    n = sizes.s2_workspaces
    knobs: dict[str, Any] = {
        "workspaces": n,
        "rate": None,
        "latency_ms": 0.0,
        "transition_seconds": sizes.fast_transition_s,
    }
    db = workdir / "S2.db"
    unlimited = 1_000_000.0
    timeout = max(RUN_TIMEOUT, n / 200)  # a million WorkSpaces at a few thousand a second
    with SimProcess(**knobs) as sim:
        run = Proc(_fleetops(db, *_run_args(sim, unlimited, 1_000_000, "reboot"))).wait(timeout)
        calls = _sim_calls(sim.stats())
    with SimProcess(**knobs) as sim:
        peer = Proc(_peer_argv(sim, "reboot", sizes.peer_poll_s)).wait(timeout)
        peer_calls = _sim_calls(sim.stats())
    job = _job_summary(run)
    peer_job = _peer_summary(peer)
    acted_per_s = _ratio(job.get("acted"), run.wall_s)
    acted, peer_acted = job.get("acted"), peer_job.get("succeeded")
    rss_limit = 250 if n <= 100_000 else 400  # memory holds the rows in flight, not the fleet
    cpu_ms, peer_cpu_ms = _per_ms(run.cpu_s, acted), _per_ms(peer.cpu_s, peer_acted)
    cpu_ratio = _ratio(cpu_ms, peer_cpu_ms)  # None (n/a) when either side did nothing
    return {
        "id": "S2",
        "title": "engine overhead",
        "setup": {**knobs, "action": "reboot", "client_rate": "unlimited (1e6/s)"},
        "fleetops": {
            **_process(run),
            **calls,
            "job": job,
            "db_mb": round(file_size_mb(db), 2),
            "items_per_s": acted_per_s,
            "planned_items_per_s": _ratio(job.get("total"), run.wall_s),
        },
        "peer": {
            **_process(peer),
            **peer_calls,
            "result": peer_job,
            "items_per_s": _ratio(peer_job.get("succeeded"), peer.wall_s),
        },
        "derived": {
            "fleetops_over_peer_wall": _ratio(run.wall_s, peer.wall_s),
            "cpu_ms_per_workspace": cpu_ms,
            "peer_cpu_ms_per_workspace": peer_cpu_ms,
            "fleetops_over_peer_cpu_per_workspace": cpu_ratio,
        },
        # CPU per WorkSpace rebooted, verified and persisted, against the plain boto3 loop's per
        # WorkSpace rebooted and polled, in the same run (a ratio: the machine's speed cancels)
        "targets": [
            _target("CPU per WorkSpace, fleetops / boto3 loop", cpu_ratio, 2),
            _target("peak RSS MB", round(run.max_rss_mb, 1), rss_limit),
        ],
    }


# -- S4: resume -----------------------------------------------------------------------------------


def _first_call(sim: SimProcess, proc: Proc, timeout: float = 60.0) -> float | None:
    """Seconds from the child's spawn to the simulator's first counted request (±10 ms)."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if sim.total_calls() > 0:
            return time.perf_counter() - proc.started
        if proc.poll() is not None:
            return None
        time.sleep(0.01)
    return None


def _db_scalar(db: Path, sql: str, *params: Any) -> Any:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, params).fetchone()[0]


def run_s4(sizes: Sizes, workdir: Path) -> dict[str, Any]:
    n = sizes.s4_workspaces
    knobs: dict[str, Any] = {
        "workspaces": n,
        "rate": None,
        "latency_ms": 0.0,
        "transition_seconds": sizes.fast_transition_s,
    }
    db = workdir / "S4.db"
    with SimProcess(**knobs) as sim:
        candidates = _candidates(sim.stats()["states"], "reboot")
        half = max(1, math.ceil(candidates * 0.9 / BATCH) // 2)  # ~10 % are connected: skipped
        first = Proc(_fleetops(db, *_run_args(sim, 1_000_000.0, 1_000_000, "reboot")))
        while first.poll() is None:
            reboots = sim.stats()["calls_by_operation"].get("RebootWorkspaces", 0)
            if reboots >= half:
                break
            time.sleep(0.25)
        killed = first.kill()
        before = sim.stats()
        job_id = _db_scalar(db, "SELECT id FROM jobs ORDER BY created_at DESC LIMIT 1")
        in_flight = _db_scalar(
            db, "SELECT count(*) FROM items WHERE job_id = ? AND state = 'in_flight'", job_id
        )
        pending = _db_scalar(
            db, "SELECT count(*) FROM items WHERE job_id = ? AND state = 'pending'", job_id
        )
        sim.reset()
        resume = Proc(_fleetops(db, "jobs", "resume", job_id, "--yes", "--json"))
        first_call_s = _first_call(sim, resume)
        resumed = resume.wait(RUN_TIMEOUT)
        after = sim.stats()
        rebooted_before = set(before["calls_by_workspace"].get("RebootWorkspaces", {}))
        rebooted_after = after["calls_by_workspace"].get("RebootWorkspaces", {})
        repeated = len(rebooted_before & set(rebooted_after))
        sim.reset()
        peer = Proc(_peer_argv(sim, "reboot", sizes.peer_poll_s))
        peer_first_call_s = _first_call(sim, peer)
        peer.kill()
    job = _job_summary(resumed)
    return {
        "id": "S4",
        "title": "resume after SIGKILL",
        "setup": {**knobs, "action": "reboot", "killed_after_reboot_calls": half},
        "fleetops": {
            **_process(resumed),
            **_sim_calls(after),
            "first_run": {**_process(killed), "calls_by_operation": before["calls_by_operation"]},
            "job": job,
            "items_at_kill": {"in_flight": in_flight, "pending": pending},
            "reboots_repeated": repeated,
            "first_call_s": round(first_call_s, 3) if first_call_s is not None else None,
            "db_mb": round(file_size_mb(db), 2),
        },
        "peer": {
            "first_call_s": round(peer_first_call_s, 3) if peer_first_call_s is not None else None,
            "note": "a boto3 script cannot resume: it starts over, rebooting the whole fleet again",
        },
        "derived": {"fleetops_over_peer_first_call": _ratio(first_call_s, peer_first_call_s)},
        "targets": [
            _target("first API call after `jobs resume` starts (s)", first_call_s, 1.0),
            _target("reboots repeated / in flight at kill", float(repeated), float(in_flight)),
        ],
    }


# -- S6: regions --------------------------------------------------------------------------


def run_s6(sizes: Sizes, workdir: Path) -> dict[str, Any]:
    rate, burst = sizes.s6_rate, 5
    knobs: dict[str, Any] = {
        "workspaces": sizes.s6_workspaces,
        "rate": rate,
        "burst": burst,
        "latency_ms": sizes.latency_ms,
        "transition_seconds": sizes.transition_s,
    }

    def sims() -> list[SimProcess]:
        return [SimProcess(**knobs, region=r, seed=i) for i, r in enumerate(REGIONS)]

    def phase(
        count: int,
        make: Callable[[SimProcess, Path], list[str]] | None = None,
        make_all: Callable[[list[SimProcess], Path], list[str]] | None = None,
    ) -> dict[str, Any]:
        group = sims()[:count]
        for sim in group:
            sim.__enter__()
        try:
            if make_all is not None:
                procs = [Proc(make_all(group, workdir))]  # one job spanning the regions
            else:
                assert make is not None
                procs = [Proc(make(sim, workdir)) for sim in group]
            runs = [p.wait(RUN_TIMEOUT) for p in procs]
            stats = [sim.stats() for sim in group]
        finally:
            for sim in group:
                sim.__exit__(None, None, None)
        wall = max(r.wall_s for r in runs)
        return {"runs": runs, "stats": stats, "wall": wall}

    def fleetops_argv(group: list[SimProcess], wd: Path) -> list[str]:
        """One fleetops job over every region of the group: --region/--endpoint-url pairs."""
        args = _run_args(group[0], rate, burst, "reboot")
        for sim in group[1:]:
            args += ["--region", sim.region, "--endpoint-url", sim.url]
        return _fleetops(wd / "S6.db", *args)

    def peer_argv(sim: SimProcess, wd: Path) -> list[str]:
        return _peer_argv(sim, "reboot", sizes.peer_poll_s)

    def items(p: dict[str, Any], peer: bool) -> int:
        if peer:
            return sum(int(_peer_summary(r).get("succeeded") or 0) for r in p["runs"])
        return sum(int(_job_summary(r).get("acted") or 0) for r in p["runs"])

    def describe(p: dict[str, Any], peer: bool) -> dict[str, Any]:
        n = items(p, peer)
        return {
            "wall_s": round(p["wall"], 3),
            "items": n,
            "items_per_s": _ratio(n, p["wall"]),
            "cpu_s": round(sum(r.cpu_s for r in p["runs"]), 3),
            "peak_rss_mb": round(max(r.max_rss_mb for r in p["runs"]), 1),
            "returncodes": [r.returncode for r in p["runs"]],
            "calls": sum(sum(s["calls_by_operation"].values()) for s in p["stats"]),
            "throttled": sum(int(s["throttled"]) for s in p["stats"]),
        }

    one, four = phase(1, make_all=fleetops_argv), phase(4, make_all=fleetops_argv)
    peer_one, peer_four = phase(1, peer_argv), phase(4, peer_argv)
    f1, f4 = describe(one, False), describe(four, False)
    p1, p4 = describe(peer_one, True), describe(peer_four, True)
    scale = _ratio(f4["items_per_s"], f1["items_per_s"])
    return {
        "id": "S6",
        "title": "regions",
        "setup": {**knobs, "regions": list(REGIONS), "mode": "one fleetops job over 4 regions"},
        "fleetops": {
            "one_region": f1,
            "four_regions": f4,
            "scaling": scale,
            "db_mb": round(file_size_mb(workdir / "S6.db"), 2),
        },
        "peer": {
            "one_region": p1,
            "four_regions": p4,
            "scaling": _ratio(p4["items_per_s"], p1["items_per_s"]),
            "mode": "4 scripts in parallel",
        },
        "derived": {"fleetops_over_peer_wall_4": _ratio(f4["wall_s"], p4["wall_s"])},
        "targets": [_target("4-region throughput / 1-region", scale, 3.6, at_most=False)],
    }


#: The rate-bound run and the figures' helpers, for the scenarios written elsewhere.
rate_bound = _rate_bound
ratio = _ratio
target = _target
