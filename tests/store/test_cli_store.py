"""The command line over either store: who started a job, reading never creates a schema,
``db copy``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from fleetops.records import NewJob
from fleetops.states import ItemState
from fleetops.store import Store
from fleetops.store.engine import parse_target


def run_cli(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fleetops", *argv], capture_output=True, text=True, timeout=120
    )


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr and result.stdout == ""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def tables_of(url: str) -> set[str]:
    target = parse_target(url)
    driver = "postgresql+psycopg" if target.is_postgresql else "sqlite"
    engine = sa.create_engine(target.url.set(drivername=driver))
    try:
        with engine.connect() as conn:
            return set(sa.inspect(conn).get_table_names())
    finally:
        engine.dispose()


async def seed(where: str) -> None:
    store = await Store.open(where)
    try:
        for n, who in enumerate(("alice", "bob", "alice")):
            job = await store.create_job(
                NewJob(
                    action="reboot",
                    params={},
                    targets={},
                    options={},
                    region="eu-west-1",
                    id=f"j{n}",
                    started_by=who,
                    started_host=f"host{n}",
                )
            )
            await store.update_job(job.id, created_at=1000.0 + n)
            await store.add_items(
                [
                    {
                        "job_id": job.id,
                        "workspace_id": f"ws-{n}-{i}",
                        "region": "eu-west-1",
                        "state": ItemState.SUCCEEDED.value,
                        "updated_at": 1.0,
                    }
                    for i in range(n + 1)
                ]
            )
        await store.update_job("j2", caller_arn="arn:aws:iam::111122223333:user/alice")
    finally:
        await store.close()


async def test_jobs_list_by_user_and_show_who_started(db_url: str) -> None:
    await seed(db_url)
    listed = run_cli("--db", db_url, "jobs", "list", "--by", "alice", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [job["id"] for job in json.loads(listed.stdout)] == ["j2", "j0"]
    shown = run_cli("--db", db_url, "jobs", "show", "j2", "--json")
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert (data["started_by"], data["started_host"]) == ("alice", "host2")
    assert data["caller_arn"] == "arn:aws:iam::111122223333:user/alice"
    assert list(data)[:3] == ["id", "action", "status"]  # the documented keys stay first
    text = run_cli("--db", db_url, "jobs", "show", "j2")
    assert "alice@host2" in text.stdout and "user/alice" in text.stdout


def test_history_never_creates_the_schema(postgres_db: str) -> None:
    line = one_line_error(run_cli("--db", postgres_db, "jobs", "show", "j1"))
    assert "no fleetops schema" in line and "fleetops db upgrade" in line
    assert tables_of(postgres_db) == set()
    assert run_cli("--db", postgres_db, "db", "upgrade").returncode == 0
    assert "jobs" in tables_of(postgres_db)


async def test_db_copy_from_sqlite(tmp_path: Path, db_url: str) -> None:
    source = tmp_path / "old.db"
    await seed(str(source))
    copied = run_cli("db", "copy", "--from", f"sqlite:///{source}", "--to", db_url, "--json")
    assert copied.returncode == 0, copied.stderr
    report = json.loads(copied.stdout)
    assert (report["jobs"], report["items"], report["events"], report["verified"]) == (
        3,
        6,
        0,
        True,
    )
    listed = json.loads(run_cli("--db", db_url, "jobs", "list", "--json").stdout)
    assert [(job["id"], job["total"]) for job in listed] == [("j2", 3), ("j1", 2), ("j0", 1)]
    again = one_line_error(run_cli("db", "copy", "--from", str(source), "--to", db_url))
    assert "already holds job j0 (and 2 more): nothing copied" in again


async def test_db_copy_bad_input(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    target = tmp_path / "new.db"
    line = one_line_error(run_cli("db", "copy", "--from", str(missing), "--to", str(target)))
    assert "no fleetops database" in line
    source = tmp_path / "old.db"
    await seed(str(source))
    line = one_line_error(
        run_cli("db", "copy", "--from", str(source), "--to", "mysql://db.example/fleet")
    )
    assert "unsupported database url scheme" in line.lower()
    assert not missing.exists() and not target.exists()
