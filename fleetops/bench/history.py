"""S5: a history database of many jobs, and how fast ``jobs list`` / ``jobs show`` answer.

The database is migrated by ``Store.open`` (the real schema) and then filled with Core-shaped rows
through ``sqlite3.executemany`` in one transaction: 1,000 jobs × 1,000 items take seconds, not the
hours the engine itself would need against a quota. Each command runs as a whole process (start
included), once to warm the file cache and then five times; the median counts. fleetops's own
modules are compiled to bytecode first, as installing a wheel does (an editable install writes the
bytecode on first import, unless ``PYTHONDONTWRITEBYTECODE`` is set: then every run would compile
the package again, a cost no installed fleetops pays). When over target, ``python -X importtime``
says which imports cost what.
"""

from __future__ import annotations

import json
import random
import sqlite3
import statistics
import time
from pathlib import Path
from typing import Any

import anyio

from fleetops.bench._proc import Proc, file_size_mb, python_argv
from fleetops.catalogue.options import JobOptions
from fleetops.store import Store

__all__ = ["build_history", "compile_package", "import_profile", "run_s5"]

TARGET_S = 0.3
HELP_TARGET_S = 0.25
RUNS = 5
_ERRORS = ("InvalidResourceStateException", "InternalFailure", "VerifyTimeout")
_OPS = ("DescribeWorkspaces", "DescribeWorkspacesConnectionStatus", "RebootWorkspaces")


async def _migrate(db: Path) -> None:
    store = await Store.open(db)
    await store.close()


def build_history(db: Path, jobs: int, items_per_job: int, seed: int = 0) -> dict[str, Any]:
    """Create ``db`` with ``jobs`` finished reboot jobs of ``items_per_job`` items each."""
    started = time.perf_counter()
    anyio.run(_migrate, db)
    rng = random.Random(seed)
    options = json.dumps(JobOptions().as_dict())
    t0 = time.time() - jobs * 600.0
    conn = sqlite3.connect(db)
    try:
        conn.execute("PRAGMA synchronous = OFF")
        with conn:
            for j in range(jobs):
                job_id = f"j{j:019d}"
                created = t0 + j * 600.0
                failures = rng.random() < 0.2
                conn.execute(
                    "INSERT INTO jobs (id, parent_id, action, status, params, targets, options,"
                    " region, profile, endpoint_url, message, created_at, planned_at, started_at,"
                    " finished_at, lease_owner, lease_expires_at)"
                    " VALUES (?, NULL, 'reboot', ?, '{}', ?, ?, 'us-east-1', NULL, NULL, NULL,"
                    " ?, ?, ?, ?, NULL, NULL)",
                    (
                        job_id,
                        "failed" if failures else "succeeded",
                        json.dumps({"directory_id": f"d-{j % 4:010d}"}),
                        options,
                        created,
                        created + 5.0,
                        created + 5.0,
                        created + 300.0,
                    ),
                )
                conn.executemany(
                    "INSERT INTO items (job_id, workspace_id, region, state, attempts, seen_state,"
                    " last_state, user_name, directory_id, bundle_id, reason, error_code,"
                    " error_message, result, submitted_at, updated_at)"
                    " VALUES (?, ?, 'us-east-1', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?)",
                    _items(rng, job_id, j, items_per_job, created, failures),
                )
                conn.executemany(
                    "INSERT INTO events (job_id, at, region, operation, workspace_ids, outcome,"
                    " error_code, request_id, attempts, duration_ms)"
                    " VALUES (?, ?, 'us-east-1', ?, ?, 'ok', NULL, ?, 1, ?)",
                    _events(rng, job_id, j, items_per_job, created),
                )
    finally:
        conn.close()
    return {
        "jobs": jobs,
        "items": jobs * items_per_job,
        "build_s": round(time.perf_counter() - started, 2),
        "db_mb": round(file_size_mb(db), 1),
    }


def _items(
    rng: random.Random, job_id: str, j: int, n: int, created: float, failures: bool
) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    for i in range(n):
        ws = f"ws-{(j * 7919 + i) % 1_000_000:09d}"
        roll = rng.random()
        state, reason, code, message = "succeeded", None, None, None
        if roll < 0.10:
            state, reason = "skipped", "a user is connected (use --include-connected to act anyway)"
        elif roll < 0.13:
            state, reason = "skipped", "state STOPPED is not eligible for reboot"
        elif failures and roll < 0.14:
            code = rng.choice(_ERRORS)
            state, message = "failed", f"{code}: simulated failure of {ws}"
        at = created + 10.0 + i * 0.2
        rows.append(
            (
                job_id,
                ws,
                state,
                0 if state == "skipped" else 1,
                "AVAILABLE",
                "AVAILABLE",
                f"user{i:06d}",
                f"d-{j % 4:010d}",
                "wsb-0000000001",
                reason,
                code,
                message,
                None if state == "skipped" else at,
                at + 3.0,
            )
        )
    return rows


def _events(
    rng: random.Random, job_id: str, j: int, n: int, created: float
) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    for b in range(0, n, 25):
        ids = " ".join(f"ws-{(j * 7919 + i) % 1_000_000:09d}" for i in range(b, min(n, b + 25)))
        for k, op in enumerate(_OPS):
            rows.append(
                (
                    job_id,
                    created + b * 0.2 + k,
                    op,
                    ids,
                    f"{rng.getrandbits(64):016x}",
                    rng.randint(20, 80),
                )
            )
        rows.append(
            (
                job_id,
                created + b * 0.2 + 5,
                "DescribeWorkspaces",
                ids,
                f"{rng.getrandbits(64):016x}",
                rng.randint(20, 80),
            )
        )
    return rows


def import_profile(argv: list[str], top: int = 12) -> list[dict[str, Any]]:
    """The ``top`` imports by cumulative time (``python -X importtime``), outermost first."""
    proc = Proc([argv[0], "-X", "importtime", *argv[1:]]).wait(60)
    rows: list[dict[str, Any]] = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        try:
            self_us, cumulative_us, name = line[len("import time:") :].split("|", 2)
            rows.append(
                {
                    "module": name.strip(),
                    "depth": (len(name) - len(name.lstrip()) - 1) // 2,
                    "self_ms": int(self_us.strip()) / 1000,
                    "cumulative_ms": int(cumulative_us.strip()) / 1000,
                }
            )
        except ValueError:
            continue
    top_level = [r for r in rows if r["depth"] <= 1]
    top_level.sort(key=lambda r: r["cumulative_ms"], reverse=True)
    return top_level[:top]


def compile_package() -> None:
    """fleetops's modules compiled to bytecode, where Python looks for it (``__pycache__``)."""
    import compileall

    import fleetops

    for root in fleetops.__path__:
        compileall.compile_dir(root, quiet=1)


def _timed(argv: list[str], repeat: int = RUNS) -> dict[str, Any]:
    Proc(argv).wait(120)  # warm-up: the file cache, not counted
    runs = [Proc(argv).wait(120) for _ in range(repeat)]
    walls = [r.wall_s for r in runs]
    return {
        "median_s": round(statistics.median(walls), 3),
        "min_s": round(min(walls), 3),
        "runs_s": [round(w, 3) for w in walls],
        "returncode": runs[-1].returncode,
        "cpu_s": round(runs[-1].cpu_s, 3),
        "peak_rss_mb": round(runs[-1].max_rss_mb, 1),
        "stdout_bytes": len(runs[-1].stdout),
    }


def run_s5(jobs: int, items_per_job: int, workdir: Path) -> dict[str, Any]:
    db = workdir / "S5.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    built = build_history(db, jobs, items_per_job)
    compile_package()
    middle = f"j{jobs // 2:019d}"
    base = python_argv("-m", "fleetops", "--db", str(db))
    commands = {
        "jobs list": [*base, "jobs", "list"],
        "jobs list --json": [*base, "jobs", "list", "--json"],
        "jobs show": [*base, "jobs", "show", middle],
        "jobs show --json": [*base, "jobs", "show", middle, "--json"],
    }
    timings = {name: _timed(argv) for name, argv in commands.items()}
    postgresql = _postgresql_s5(db, commands)
    floor = {
        "python -c pass": _timed(python_argv("-c", "pass")),
        "python -m fleetops --help": _timed(python_argv("-m", "fleetops", "--help")),
    }
    profiles = {
        name: import_profile(commands[name])
        for name in ("jobs list", "jobs show")
        if timings[name]["median_s"] > TARGET_S
    }
    return {
        "id": "S5",
        "title": "history queries",
        "setup": built,
        "fleetops": {"commands": timings, "baselines": floor, "import_profiles": profiles},
        "peer": {"note": "a boto3 script keeps no history: nothing to compare"},
        "derived": {},
        "postgresql": postgresql,
        "targets": [
            {
                "name": "fleetops --help (median of 5, process start included, s)",
                "value": floor["python -m fleetops --help"]["median_s"],
                "target": f"≤ {HELP_TARGET_S:g}",
                "met": floor["python -m fleetops --help"]["median_s"] <= HELP_TARGET_S,
            },
        ]
        + [
            {
                "name": f"{name}{on} (median of {RUNS}, process start included, s)",
                "value": t["median_s"],
                "target": f"≤ {TARGET_S:g}",
                "met": t["median_s"] <= TARGET_S and t["returncode"] == 0,
            }
            for on, found in (("", timings), (" on PostgreSQL", postgresql.get("commands", {})))
            for name, t in found.items()
        ],
    }


#: A PostgreSQL server for S5's second half (its database is used only to connect: the history
#: goes into a scratch database created and dropped by the run).
POSTGRES_ENV = "FLEETOPS_BENCH_POSTGRES"


def _postgresql_s5(db: Path, commands: dict[str, list[str]]) -> dict[str, Any]:
    """The same history copied into PostgreSQL by ``db copy``, the same commands against it."""
    import os

    server = os.environ.get(POSTGRES_ENV)
    if not server:
        return {"note": f"skipped: set {POSTGRES_ENV}=postgresql://USER@HOST:PORT/DB"}
    from fleetops.store.copy import copy_database
    from fleetops.store.scratch import scratch_postgresql_database

    with scratch_postgresql_database(server, "fleetops_bench_s5") as url:
        copied = anyio.run(copy_database, str(db), url)
        swapped = {
            name: [url if arg == str(db) else arg for arg in argv]
            for name, argv in commands.items()
        }
        return {
            "copy_s": round(copied.seconds, 1),
            "commands": {name: _timed(argv) for name, argv in swapped.items()},
        }
