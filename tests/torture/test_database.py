"""The database under attack: locked by another process, read-only, not a fleetops database, a
newer schema, two runners racing for one job. Each: a clear one-line error, nothing half-written,
the file never migrated down or overwritten; or exactly one winner."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import sqlite3
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fleetops_harness import Cli, Db, Result, wait_until

from fleetops.sim import Simulator

WS = "ws-abcdefgh1"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _one_line_error(result: Result, *needles: str) -> str:
    assert result.code not in (0, 130), result.stderr
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0].lower(), lines[0]
    return lines[0]


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(workspaces=60, seed=31, rate=None, transition_seconds=0.3).run_in_thread() as s:
        yield s


def _run(cli: Cli, sim: Simulator, timeout: float = 60) -> Result:
    ids = sim.workspace_ids()[:5]
    argv = cli.run_args("reboot", sim.endpoint_url, "--json")
    for ws in ids:
        argv += ["--workspace-id", ws]
    return cli.run(*argv, timeout=timeout)


def test_locked_by_another_process_waits_then_one_clear_line(
    cli: Cli, db: Db, sim: Simulator
) -> None:
    assert cli.run("db", "upgrade").code == 0
    holder = sqlite3.connect(cli.db, timeout=1, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        started = time.monotonic()
        result = _run(cli, sim)
        waited = time.monotonic() - started
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    _one_line_error(result, "locked")
    assert waited >= 4.0, "the busy timeout (5 s) was not honoured"
    assert db.job_ids() == [], "half a job was written"
    assert sum(sim.stats().calls_by_operation.values()) == 0


def _as_nobody() -> list[str]:
    if os.geteuid() != 0:
        return []
    if not shutil.which("setpriv"):
        pytest.skip("running as root without setpriv: file modes do not bind root")
    return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def _run_as(cli: Cli, prefix: list[str], *args: str) -> Result:
    import subprocess

    done = subprocess.run(
        [*prefix, *cli.argv(*args)],
        env=cli.env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
    )
    return Result(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def shared_dir(tmp_path: Path) -> Path:
    """A folder another user can reach (pytest's tmp dirs are 0700)."""
    folder = tmp_path / "shared"
    folder.mkdir()
    for path in (tmp_path, folder):
        path.chmod(0o755)
    return folder


def test_read_only_file_clear_error_nothing_written(
    cli: Cli, sim: Simulator, shared_dir: Path
) -> None:
    prefix = _as_nobody()
    cli.db = shared_dir / "jobs.db"
    assert cli.run("db", "upgrade").code == 0
    cli.db.chmod(0o444)
    if prefix:
        shared_dir.chmod(0o777)  # the folder is writable: only the file is read-only
    before = _digest(cli.db)
    ids = sim.workspace_ids()[:3]
    argv = cli.run_args("reboot", sim.endpoint_url)
    for ws in ids:
        argv += ["--workspace-id", ws]
    result = _run_as(cli, prefix, *argv)
    _one_line_error(result, "read")
    assert _digest(cli.db) == before
    assert sum(sim.stats().calls_by_operation.values()) == 0


def test_read_only_directory_clear_error_nothing_created(cli: Cli, shared_dir: Path) -> None:
    prefix = _as_nobody()
    if not prefix:
        shared_dir.chmod(0o555)
    cli.db = shared_dir / "sub" / "jobs.db"
    try:
        result = _run_as(cli, prefix, "db", "upgrade")
    finally:
        shared_dir.chmod(0o755)
    _one_line_error(result, "cannot")
    assert not cli.db.exists()


def test_not_a_fleetops_database_is_refused_and_left_alone(cli: Cli, sim: Simulator) -> None:
    cli.db.write_bytes(b"this is my diary, not a database\n" * 100)
    before = _digest(cli.db)
    _one_line_error(_run(cli, sim), "not a fleetops database")
    _one_line_error(cli.run("jobs", "list"), "not a fleetops database")
    assert _digest(cli.db) == before


def test_an_sqlite_file_of_another_program_is_refused_and_left_alone(
    cli: Cli, sim: Simulator
) -> None:
    conn = sqlite3.connect(cli.db)
    conn.execute("CREATE TABLE recipes (name TEXT)")
    conn.execute("INSERT INTO recipes VALUES ('soup')")
    conn.commit()
    conn.close()
    before = _digest(cli.db)
    _one_line_error(_run(cli, sim), "not a fleetops database")
    _one_line_error(cli.run("db", "upgrade"), "not a fleetops database")
    assert _digest(cli.db) == before


def test_a_newer_schema_is_refused_never_migrated_down(cli: Cli, db: Db, sim: Simulator) -> None:
    assert _run(cli, sim).code == 0
    newer = cli.db.with_name("newer.db")
    src = sqlite3.connect(cli.db)
    dst = sqlite3.connect(newer)
    src.backup(dst)
    src.close()
    dst.execute("UPDATE alembic_version SET version_num = 'ffff'")
    dst.commit()
    dst.close()
    cli.db = newer
    before = _digest(newer)
    for argv in (["db", "upgrade"], ["jobs", "list"]):
        _one_line_error(cli.run(*argv), "newer")
    _one_line_error(_run(cli, sim), "newer")
    assert _digest(newer) == before
    check = sqlite3.connect(newer)
    assert check.execute("SELECT version_num FROM alembic_version").fetchone() == ("ffff",)
    check.close()


def test_two_runners_racing_for_one_job_one_wins(cli: Cli, db: Db) -> None:
    with Simulator(
        workspaces=250, seed=32, rate=20, burst=10, transition_seconds=0.5, latency_ms=20
    ).run_in_thread() as sim:
        first = cli.spawn(*cli.run_args("reboot", sim.endpoint_url, "--yes"), "--rate", "20")
        job_id = first.job_id()
        wait_until(
            lambda: (db.job(job_id) or {}).get("planned_at") and db.counts(job_id)["submitted"],
            timeout=60,
            what="the submit phase",
        )
        first.kill(signal.SIGKILL)
        in_flight = set(db.items(job_id, "in_flight"))
        racers = [cli.spawn("jobs", "resume", job_id, "--json") for _ in range(2)]
        codes = sorted(r.wait(timeout=120) for r in racers)
        reboots = sim.stats().calls_by_workspace.get("RebootWorkspaces", {})
    winners = [r for r in racers if r.popen.returncode == 0]
    losers = [r for r in racers if r.popen.returncode != 0]
    assert len(winners) == 1 and len(losers) == 1, codes
    assert "another process" in losers[0].stderr
    job = db.job(job_id)
    assert job is not None and job["status"] == "succeeded"
    repeated = {ws for ws, n in reboots.items() if n > 1}
    assert repeated <= in_flight


def test_database_file_stays_private_after_a_crash(cli: Cli, db: Db, sim: Simulator) -> None:
    proc = cli.spawn(*cli.run_args("reboot", sim.endpoint_url, "--yes"))
    job_id = proc.job_id()
    wait_until(lambda: db.counts(job_id)["succeeded"] or proc.popen.poll() is not None, timeout=60)
    proc.kill(signal.SIGKILL)
    for path in cli.db.parent.glob(cli.db.name + "*"):
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path
