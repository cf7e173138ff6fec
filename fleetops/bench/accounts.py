"""S9: accounts. One fleetops job over 8 account-regions (4 accounts x 2 regions), each at the
default quota, against one account-region alone.

Two simulator processes stand for two regions; each serves the 4 accounts (its own fleet, quota
and counters per account) and answers STS. The job assumes a role in each account (one
AssumeRole per account) and runs every account x region in parallel with its own bucket.
Targets: throughput >= 7x one account-region, calls <= 1.05x the minimum, throttled <= 2 %.
"""

from __future__ import annotations

import json
import math
import urllib.request
from pathlib import Path
from typing import Any

from fleetops.bench._proc import Proc, SimProcess, file_size_mb, python_argv
from fleetops.bench.scenarios import BATCH, RUN_TIMEOUT, Sizes

__all__ = ["ACCOUNTS", "run_s9"]

ACCOUNTS = ("111111111111", "222222222222", "333333333333", "444444444444")
REGIONS = ("us-east-1", "eu-west-1")
ROLE = "FleetOpsBench"
DEFAULT_ACCOUNT = "123456789012"  # the simulator's own account: the caller signs with it


def _account_stats(sim: SimProcess, account: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{sim.url}/_sim/stats?account={account}", timeout=30) as answer:
        stats: dict[str, Any] = json.loads(answer.read())
    return stats


def _sims(sizes: Sizes, accounts: tuple[str, ...], regions: tuple[str, ...]) -> list[SimProcess]:
    sims = []
    for index, region in enumerate(regions):
        sim = SimProcess(
            workspaces=sizes.s6_workspaces,
            rate=sizes.s6_rate,
            burst=5,
            latency_ms=sizes.latency_ms,
            transition_seconds=sizes.transition_s,
            region=region,
            seed=index,
        )
        for account in accounts:
            sim.argv += ["--account", account]
        sims.append(sim)
    return sims


def _job_argv(
    db: Path, sims: list[SimProcess], accounts: tuple[str, ...], rate: float
) -> list[str]:
    args = ["run", "reboot", "--yes", "--json", "--rate", repr(rate), "--burst", "5"]
    for sim in sims:
        args += ["--region", sim.region, "--endpoint-url", sim.url]
    for account in accounts:
        args += ["--account", account]
    args += ["--role-name", ROLE]
    return python_argv("-m", "fleetops", "--db", str(db), "-q", *args)


def _phase(
    sizes: Sizes, workdir: Path, accounts: tuple[str, ...], regions: tuple[str, ...]
) -> dict[str, Any]:
    """One job over ``accounts`` x ``regions``: its process figures and the simulators' counts."""
    name = f"S9-{len(accounts)}x{len(regions)}"
    sims = _sims(sizes, accounts, regions)
    for sim in sims:
        sim.__enter__()
    try:
        before = {(s.region, a): _account_stats(s, a)["states"] for s in sims for a in accounts}
        run = Proc(_job_argv(workdir / f"{name}.db", sims, accounts, sizes.s6_rate)).wait(
            RUN_TIMEOUT
        )
        after = {(s.region, a): _account_stats(s, a) for s in sims for a in accounts}
        sts = [_account_stats(s, DEFAULT_ACCOUNT).get("sts_calls", {}) for s in sims]
    finally:
        for sim in sims:
            sim.__exit__(None, None, None)
    try:
        job = run.last_json()
    except ValueError as exc:
        return {"error": str(exc), "returncode": run.returncode}
    counts: dict[str, int] = job.get("counts", {})
    acted = sum(counts.get(k, 0) for k in ("succeeded", "failed", "in_doubt", "submitted"))
    calls = sum(sum(s["calls_by_operation"].values()) for s in after.values())
    requests = sum(int(s["total_calls"]) for s in after.values())
    throttled = sum(int(s["throttled"]) for s in after.values())
    by_operation: dict[str, int] = {}
    for stats in after.values():
        for operation, n in stats["calls_by_operation"].items():
            by_operation[operation] = by_operation.get(operation, 0) + int(n)
    minimum = 0
    for key, stats in after.items():
        candidates = sum(n for st, n in before[key].items() if st in {"AVAILABLE", "UNHEALTHY"})
        reboots = stats["calls_by_workspace"].get("RebootWorkspaces", {})
        minimum += (
            math.ceil(sizes.s6_workspaces / BATCH)  # describe pages
            + math.ceil(candidates / BATCH)  # connection status
            + 2 * math.ceil(len(reboots) / BATCH)  # reboot + one verification describe
        )
    return {
        "status": job.get("status"),
        "returncode": run.returncode,
        "wall_s": round(run.wall_s, 3),
        "cpu_s": round(run.cpu_s, 3),
        "peak_rss_mb": round(run.max_rss_mb, 1),
        "items": acted,
        "items_per_s": round(acted / run.wall_s, 3) if run.wall_s else None,
        "calls": calls,
        "min_calls": minimum,
        "calls_over_min": round(calls / minimum, 3) if minimum else None,
        "requests": requests,
        "throttled": throttled,
        "throttled_share": round(throttled / requests, 4) if requests else 0.0,
        "calls_by_operation": dict(sorted(by_operation.items())),
        "sts_calls": {k: sum(int(c.get(k, 0)) for c in sts) for c in sts for k in c},
        "db_mb": round(file_size_mb(workdir / f"{name}.db"), 2),
    }


def _target(name: str, value: float | None, limit: float, *, at_most: bool) -> dict[str, Any]:
    met = None if value is None else (value <= limit if at_most else value >= limit)
    return {
        "name": name,
        "value": value,
        "target": ("≤ " if at_most else "≥ ") + f"{limit:g}",
        "met": met,
    }


def run_s9(sizes: Sizes, workdir: Path) -> dict[str, Any]:
    one = _phase(sizes, workdir, ACCOUNTS[:1], REGIONS[:1])
    eight = _phase(sizes, workdir, ACCOUNTS, REGIONS)
    base, full = one.get("items_per_s"), eight.get("items_per_s")
    scale = round(full / base, 3) if base and full else None
    return {
        "id": "S9",
        "title": "accounts",
        "setup": {
            "workspaces_per_account_region": sizes.s6_workspaces,
            "rate": sizes.s6_rate,
            "burst": 5,
            "latency_ms": sizes.latency_ms,
            "transition_seconds": sizes.transition_s,
            "accounts": list(ACCOUNTS),
            "regions": list(REGIONS),
            "mode": "one fleetops job over 4 accounts x 2 regions, a role assumed in each account",
        },
        "fleetops": {"one_account_region": one, "eight_account_regions": eight, "scaling": scale},
        "peer": {"note": "no peer: a plain boto3 script assumes no roles across accounts"},
        "targets": [
            _target("8 account-regions throughput / 1", scale, 7.0, at_most=False),
            _target("calls / minimum", eight.get("calls_over_min"), 1.05, at_most=True),
            _target("throttled share", eight.get("throttled_share"), 0.02, at_most=True),
        ],
    }
