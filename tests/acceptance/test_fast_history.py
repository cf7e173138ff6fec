"""``jobs list`` and ``jobs show`` answered before typer is imported: the same answers as typer's.

Each command line runs twice in fresh interpreters, once through the console script (which
answers these commands itself when it can read their command line) and once through the typer
app directly; output, errors and exit codes must be identical, bad input included.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from history_support import T0, seed_job

from fleetops.cli.main import fast_history
from fleetops.states import ItemState, JobStatus
from fleetops.store import Store

_CONSOLE_SCRIPT = "import sys; sys.argv[0] = 'fleetops'; from fleetops.cli.main import main; main()"
_TYPER_APP = "import sys; sys.argv[0] = 'fleetops'; from fleetops.cli.app import main; main()"


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    import anyio

    db = tmp_path_factory.mktemp("fast") / "history.db"

    async def seed() -> list[str]:
        store = await Store.open(db)
        try:
            jobs = [
                await seed_job(
                    store,
                    {ItemState.SUCCEEDED: 3, ItemState.FAILED: 3, ItemState.SKIPPED: 2},
                    action=action,
                    status=status,
                    created_at=T0 + n,
                    error_codes=("InternalFailure",),
                )
                for n, (action, status) in enumerate(
                    [("reboot", JobStatus.SUCCEEDED), ("stop", JobStatus.FAILED)]
                )
            ]
        finally:
            await store.close()
        return [job.id for job in jobs]

    return db, anyio.run(seed)


def _run(code: str, argv: list[str]) -> tuple[int, str, str]:
    env = {**os.environ, "COLUMNS": "100", "NO_COLOR": "1"}
    env.pop("FLEETOPS_DB", None)
    done = subprocess.run(
        [sys.executable, "-c", code, *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    return done.returncode, done.stdout, done.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["jobs", "list"],
        ["jobs", "list", "--json"],
        ["jobs", "list", "--limit", "1", "--json"],
        ["jobs", "list", "--limit=1"],
        ["jobs", "list", "--status", "failed", "--action=stop"],
        ["jobs", "list", "--since", "3650d", "--by", "nobody", "--json"],
        ["jobs", "list", "--status", "bogus"],  # exit 2, one line
        ["jobs", "list", "--limit", "0"],
        ["jobs", "list", "--limit", "many"],  # typer's own error
        ["jobs", "list", "--limit", "+-5"],
        ["jobs", "list", "--since", "yesterday"],
        ["jobs", "list", "--colour"],  # unknown flag
        ["jobs", "show", "JOB0"],
        ["jobs", "show", "JOB1", "--json"],
        ["jobs", "show", "--json", "PREFIX"],
        ["jobs", "show", "j-no-such-job"],
        ["jobs", "show"],
        ["-q", "jobs", "show", "JOB0", "--json"],
    ],
    ids=lambda argv: " ".join(argv),
)
def test_same_answer_as_the_typer_app(history: tuple[Path, list[str]], argv: list[str]) -> None:
    db, ids = history
    names = {"JOB0": ids[0], "JOB1": ids[1], "PREFIX": ids[1][:-2]}
    full = ["--db", str(db), *[names.get(a, a) for a in argv]]
    fast = _run(_CONSOLE_SCRIPT, full)
    typer = _run(_TYPER_APP, full)
    assert fast == typer
    assert fast[0] in (0, 2)


def test_a_missing_database_is_the_same_error(tmp_path: Path) -> None:
    argv = [f"--db={tmp_path / 'none.db'}", "jobs", "list"]
    fast, typer = _run(_CONSOLE_SCRIPT, argv), _run(_TYPER_APP, argv)
    assert fast == typer and fast[0] == 2 and "no fleetops database" in fast[2]
    assert not (tmp_path / "none.db").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["jobs", "list", "--help"],
        ["-v", "jobs", "list"],
        ["--db", "a", "--db", "b", "jobs", "list"],
        ["jobs", "list", "--json", "--json"],
        ["jobs", "list", "--json=yes"],
        ["jobs", "list", "--limit"],
        ["jobs", "list", "extra"],
        ["jobs", "show", "a", "b"],
        ["jobs", "show", "--", "-odd"],
        ["jobs", "items", "J"],
        ["jobs"],
        ["--db"],
        [],
    ],
    ids=lambda argv: " ".join(argv) or "(nothing)",
)
def test_anything_else_goes_to_typer(argv: list[str]) -> None:
    assert fast_history(argv) is None


@pytest.mark.parametrize(
    "argv",
    [
        ["jobs", "list"],
        ["--db=x.db", "-q", "jobs", "list", "--limit", "-3", "--json"],
        ["--quiet", "jobs", "show", "j1", "--json"],
    ],
)
def test_the_history_reads_are_answered_here(argv: list[str]) -> None:
    assert fast_history(argv) is not None
