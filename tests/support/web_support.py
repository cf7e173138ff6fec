"""Helpers and fixtures of the dashboard's tests: a job database with a finished, a running and
a planned job awaiting approval, a token file, and a real ``fleetops serve`` as a subprocess on a
free port.

Every wait has a deadline and every server started here is stopped at teardown by its own pid.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fleetops_harness import base_env, free_port, wait_until

from fleetops.states import ItemState, JobStatus
from fleetops.store import EventRow, NewJob, Store

#: Secrets the server's environment holds: none may ever show in a page, a header or a log.
AWS_SECRETS = {
    "AWS_ACCESS_KEY_ID": "AKIAWEBTESTNOTSHOWN7",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/webtestsecretkey",
    "AWS_SESSION_TOKEN": "FwoGZXIvYXdzEXAMPLEwebtestsessiontoken",
}
TOKENS = {
    "alice": "alice-0123456789abcdef0123456789",
    "bob": "bob-fedcba9876543210fedcba98765",
}
BARE_TOKEN = "bare-5555666677778888999900001111"


@dataclass
class History:
    db: Path
    done: str  # a finished job (failed items, calls over time: a timeline to draw)
    running: str  # a running job with pending items
    plan: str  # a stored plan of the two-person rule, planned by alice


async def _items(store: Store, job_id: str, states: dict[ItemState, int], at: float) -> None:
    rows: list[dict[str, Any]] = []
    for state, count in states.items():
        for _ in range(count):
            n = len(rows)
            failed = state is ItemState.FAILED
            rows.append(
                {
                    "job_id": job_id,
                    "workspace_id": f"ws-{job_id[-6:]}{n:04d}",
                    "region": "us-east-1",
                    "state": state.value,
                    "attempts": 1,
                    "seen_state": "AVAILABLE",
                    "user_name": f"user{n}",
                    "submitted_at": at + n * 0.5 if state is not ItemState.PENDING else None,
                    "updated_at": at + 2 + n * 0.5,
                    "error_code": "InvalidUserConfiguration.Workspace" if failed else None,
                    "error_message": "the user is not configured" if failed else None,
                    "reason": None,
                    "last_state": "AVAILABLE" if state is ItemState.SUCCEEDED else None,
                }
            )
    await store.add_items(rows)


async def _events(store: Store, job_id: str, at: float, seconds: int) -> None:
    writer = store.writer()
    writer.close()  # a closed writer writes at once, in one transaction
    await writer.write(
        [],
        [
            EventRow(
                job_id=job_id,
                region="us-east-1",
                operation="RebootWorkspaces" if s % 3 else "DescribeWorkspaces",
                workspace_ids=[f"ws-{s}"],
                outcome="ok" if s % 7 else "error",
                error_code=None if s % 7 else "ThrottlingException",
                request_id=f"req-{s}",
                attempts=1 + (s % 5 == 0),
                duration_ms=40 + s,
                at=at + s,
            )
            for s in range(seconds)
        ],
    )


def _job(by: str, **extra: Any) -> NewJob:
    return NewJob(
        action="reboot",
        params={},
        targets={"directory_id": "d-1234567890"},
        options={"rate": 2.0},
        region="us-east-1",
        started_by=by,
        started_host="ops-host",
        **extra,
    )


async def make_history(db: Path) -> History:
    store = await Store.open(db)
    try:
        now = time.time()
        done = await store.create_job(_job("carol"))
        await _items(store, done.id, {ItemState.SUCCEEDED: 40, ItemState.FAILED: 3}, now - 100)
        await _events(store, done.id, now - 100, 40)
        await store.update_job(
            done.id, status=JobStatus.FAILED, planned_at=now - 101, started_at=now - 100,
            finished_at=now - 55, message="3 items failed",
        )  # fmt: skip
        running = await store.create_job(_job("carol"))
        await _items(store, running.id, {ItemState.PENDING: 50}, now)
        await store.update_job(
            running.id, status=JobStatus.RUNNING, planned_at=now - 2, started_at=now - 1
        )
        plan = await store.create_job(_job("alice", require_approval=True))
        await _items(store, plan.id, {ItemState.PENDING: 12}, now)
        await store.update_job(plan.id, planned_at=now)
    finally:
        await store.close()
    return History(db=db, done=done.id, running=running.id, plan=plan.id)


@pytest.fixture
def history(tmp_path: Path) -> History:
    # made on an event loop of its own, done before the test starts: the browser tests drive
    # playwright's synchronous API, which wants no asyncio loop around it
    return asyncio.run(make_history(tmp_path / "web.db"))


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "tokens"
    lines = ["# the dashboard's tokens", *(f"{n}:{t}" for n, t in TOKENS.items()), BARE_TOKEN]
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    return path


@dataclass
class Served:
    """A running ``fleetops serve``."""

    url: str
    popen: subprocess.Popen[bytes]
    out: Path
    err: Path

    def output(self) -> str:
        return self.out.read_text(errors="replace") + self.err.read_text(errors="replace")

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)


def server_env(tmp_path: Path) -> dict[str, str]:
    return base_env(tmp_path, **AWS_SECRETS, LOGNAME="root-of-the-server")


def serve_argv(db: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "fleetops", "--db", str(db), "serve", *args]


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def start_server(tmp_path: Path, db: Path, *args: str) -> Served:
    port = free_port()
    name = f"serve-{port}"
    out, err = tmp_path / f"{name}.out", tmp_path / f"{name}.err"
    with out.open("wb") as out_f, err.open("wb") as err_f:
        popen = subprocess.Popen(
            serve_argv(db, "--port", str(port), *args),
            env=server_env(tmp_path),
            stdout=out_f,
            stderr=err_f,
            stdin=subprocess.DEVNULL,
        )
    served = Served(f"http://127.0.0.1:{port}", popen, out, err)

    def up() -> bool:
        if popen.poll() is not None:
            pytest.fail(f"fleetops serve exited {popen.returncode}:\n{served.output()}")
        return _listening(port) and "fleetops dashboard on" in err.read_text(errors="replace")

    wait_until(up, timeout=60, interval=0.1, what="fleetops serve to listen")
    return served


@pytest.fixture
def server(tmp_path: Path, history: History, token_file: Path) -> Iterator[Served]:
    """``fleetops serve --auth-token-file`` over the history."""
    served = start_server(tmp_path, history.db, "--auth-token-file", str(token_file))
    try:
        yield served
    finally:
        served.stop()


@pytest.fixture
def open_server(tmp_path: Path, history: History) -> Iterator[Served]:
    """``fleetops serve`` on loopback without tokens (read-only)."""
    served = start_server(tmp_path, history.db)
    try:
        yield served
    finally:
        served.stop()


def cli_json(tmp_path: Path, db: Path, *args: str) -> Any:
    import json

    done = subprocess.run(
        [sys.executable, "-m", "fleetops", "--db", str(db), *args, "--json"],
        capture_output=True,
        text=True,
        env=server_env(tmp_path),
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


__all__ = [
    "AWS_SECRETS",
    "BARE_TOKEN",
    "TOKENS",
    "History",
    "Served",
    "cli_json",
    "history",
    "open_server",
    "serve_argv",
    "server",
    "server_env",
    "start_server",
    "token_file",
]
