"""Start-up: every command imports only what it uses.

Each command runs in a fresh interpreter that writes the names in ``sys.modules`` when it exits;
the history commands must not have loaded the AWS SDK, the migrations, pydantic, the simulator
or the engine, and ``--help`` / ``--version`` almost nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fleetops.records import NewJob
from fleetops.states import ItemState, JobStatus
from fleetops.store import Store

#: Never needed to read the history.
HEAVY = (
    "aiobotocore",
    "botocore",
    "alembic",
    "pydantic",
    "fleetops.sim",
    # the façade (fleetops.api) is read through, but loads nothing of these until a run
    "fleetops.engine",
    "fleetops.catalogue.specs",
    "fleetops.aws",
)

_RUN = """
import atexit, json, sys
out = sys.argv[1]
atexit.register(lambda: open(out, "w").write(json.dumps(sorted(sys.modules))))
sys.argv = ["fleetops", *sys.argv[2:]]
from fleetops.cli.main import main
main()
"""


def loaded(tmp_path: Path, *argv: str, db: Path | None = None) -> set[str]:
    """The modules a ``fleetops`` command had imported when it exited (it must succeed)."""
    out = tmp_path / "modules.json"
    env = {**os.environ, "COLUMNS": "100"}
    if db is not None:
        env["FLEETOPS_DB"] = str(db)
    done = subprocess.run(
        [sys.executable, "-c", _RUN, str(out), *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(out.read_text()))


def _heavy(modules: set[str], heavy: tuple[str, ...] = HEAVY) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in heavy))


@pytest.fixture
async def history_db(tmp_path: Path) -> tuple[Path, str]:
    db = tmp_path / "history.db"
    store = await Store.open(db)
    try:
        job = await store.create_job(
            NewJob(
                action="reboot",
                params={},
                targets={"directory_id": "d-1234567890"},
                options={},
                region="us-east-1",
            )
        )
        await store.add_items(
            [
                {
                    "job_id": job.id,
                    "workspace_id": f"ws-{n:09d}",
                    "region": "us-east-1",
                    "state": ItemState.SUCCEEDED.value,
                    "updated_at": 1_780_000_000.0,
                }
                for n in range(5)
            ]
        )
        await store.update_job(job.id, status=JobStatus.SUCCEEDED)
    finally:
        await store.close()
    return db, job.id


@pytest.mark.parametrize(
    "argv",
    [
        ["jobs", "list"],
        ["jobs", "list", "--json", "--limit", "5"],
        ["jobs", "show", "JOB"],
        ["jobs", "show", "JOB", "--json"],
        ["jobs", "items", "JOB", "--state", "succeeded"],
        ["jobs", "export", "JOB", "--format", "csv"],
    ],
    ids=lambda argv: " ".join(argv),
)
def test_history_commands_never_load_the_engine(
    tmp_path: Path, history_db: tuple[Path, str], argv: list[str]
) -> None:
    db, job_id = history_db
    modules = loaded(tmp_path, *[job_id if a == "JOB" else a for a in argv], db=db)
    assert "fleetops.cli.history" in modules or "fleetops.cli.jobs" in modules  # it did run
    assert _heavy(modules) == []
    if argv[1] in ("list", "show"):  # answered before typer is imported
        assert _heavy(modules, ("typer", "click", "fleetops.cli.jobs")) == []
        assert "rich.table" not in modules  # tables are laid out as text
    if argv[1] in ("list", "show", "items", "export"):  # read with sqlite3 alone
        assert _heavy(modules, ("sqlalchemy", "aiosqlite", "anyio")) == []
        if "--json" in argv:  # a document, no table: no rich either
            assert _heavy(modules, ("rich", "fleetops.report.text")) == []


@pytest.mark.parametrize("argv", [["--version"], ["--help"], ["jobs", "--help"]])
def test_help_and_version_load_almost_nothing(tmp_path: Path, argv: list[str]) -> None:
    modules = loaded(tmp_path, *argv)
    assert "fleetops.cli.main" in modules
    assert _heavy(modules, (*HEAVY, "sqlalchemy", "aiosqlite", "fleetops.store", "anyio")) == []
    if argv == ["--version"]:
        assert _heavy(modules, ("rich", "fleetops.cli.jobs", "fleetops.cli.run")) == []


def test_importing_fleetops_loads_no_engine(tmp_path: Path) -> None:
    out = tmp_path / "modules.json"
    code = f"import fleetops, json, sys; open({str(out)!r}, 'w').write(json.dumps([*sys.modules]))"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    assert _heavy(set(json.loads(out.read_text())), (*HEAVY, "sqlalchemy", "typer")) == []
