"""The acceptance harness: the real ``fleetops`` command as a subprocess, a simulator (in a
thread or in its own process), and the job database read directly with sqlite3.

Everything waits with a deadline (``wait_until``) and every subprocess has a timeout: no test
can hang. Processes a test starts are killed at teardown by their own pid.

``tests/torture/conftest.py`` loads this module too and re-exports its fixtures.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

REGION = "us-east-1"
JOB_LINE_TIMEOUT = 30.0
T = TypeVar("T")

ITEM_STATES = (
    "pending",
    "in_flight",
    "submitted",
    "succeeded",
    "failed",
    "skipped",
    "in_doubt",
    "cancelled",
)


def wait_until(
    probe: Callable[[], T], *, timeout: float, interval: float = 0.02, what: str = "condition"
) -> T:
    """Poll ``probe`` until it returns something truthy; fail the test after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def base_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a ``fleetops`` subprocess: nothing from the machine's AWS config."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "FLEETOPS_", "PYTEST_", "COV_"))
    }
    env.update(
        AWS_CONFIG_FILE="/dev/null",
        AWS_SHARED_CREDENTIALS_FILE="/dev/null",
        AWS_ACCESS_KEY_ID="AKIATESTINGONLY0000",
        AWS_SECRET_ACCESS_KEY="testing-secret",
        AWS_DEFAULT_REGION=REGION,
        FLEETOPS_DB=str(tmp_path / "env-default.db"),
        PYTHONUNBUFFERED="1",
        PYTHONWARNINGS="ignore",
        COLUMNS="120",
        HOME=str(tmp_path / "home"),
        XDG_DATA_HOME=str(tmp_path / "home" / "data"),
    )
    env.update(extra)
    return env


@dataclass
class Proc:
    """A running ``fleetops`` process whose output goes to files (no pipe can fill up)."""

    popen: subprocess.Popen[bytes]
    out_path: Path
    err_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def stdout(self) -> str:
        return self.out_path.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")

    def job_id(self, timeout: float = JOB_LINE_TIMEOUT) -> str:
        """The id from the ``job <ID>: …`` line ``run`` prints on start."""

        def probe() -> str | None:
            for line in self.stderr.splitlines():
                if line.startswith("job ") and ":" in line:
                    return line.split()[1].rstrip(":")
            if self.popen.poll() is not None:
                pytest.fail(f"fleetops exited {self.popen.returncode} early:\n{self.stderr}")
            return None

        return wait_until(probe, timeout=timeout, what="the `job <ID>:` line")

    def kill(self, sig: int = signal.SIGKILL) -> int:
        """Send ``sig`` and reap the process (so its pid is free: its lease is then stale)."""
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
        return self.popen.wait(timeout=60)

    def wait(self, timeout: float) -> int:
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=10)
            pytest.fail(f"fleetops did not finish in {timeout:g} s:\n{self.stderr[-3000:]}")


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        lines = [line for line in self.stdout.splitlines() if line.strip()]
        assert lines, f"no JSON on stdout (exit {self.code}):\n{self.stderr[-3000:]}"
        return json.loads(lines[-1])


@dataclass
class Cli:
    """``python -m fleetops --db DB …`` with a clean environment."""

    db: Path
    workdir: Path
    env: dict[str, str]
    procs: list[Proc] = field(default_factory=list)
    _seq: int = 0

    def argv(self, *args: str, db: bool = True) -> list[str]:
        head = [sys.executable, "-m", "fleetops"]
        if db:
            head += ["--db", str(self.db)]
        return [*head, *args]

    def run(
        self,
        *args: str,
        timeout: float = 120,
        db: bool = True,
        env: dict[str, str] | None = None,
        input: str | None = None,
        cwd: Path | None = None,
    ) -> Result:
        done = subprocess.run(
            self.argv(*args, db=db),
            env=env or self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input if input is not None else "",
            cwd=cwd or self.workdir,
        )
        return Result(done.returncode, done.stdout, done.stderr)

    def spawn(self, *args: str, env: dict[str, str] | None = None) -> Proc:
        self._seq += 1
        out = self.workdir / f"proc{self._seq}.out"
        err = self.workdir / f"proc{self._seq}.err"
        with out.open("wb") as out_f, err.open("wb") as err_f:
            popen = subprocess.Popen(
                self.argv(*args),
                env=env or self.env,
                stdout=out_f,
                stderr=err_f,
                stdin=subprocess.DEVNULL,
                cwd=self.workdir,
            )
        proc = Proc(popen, out, err)
        self.procs.append(proc)
        return proc

    def run_args(self, action: str, endpoint: str, *extra: str) -> list[str]:
        return ["run", action, "--endpoint-url", endpoint, "--region", REGION, *extra]

    def cleanup(self) -> None:
        for proc in self.procs:
            if proc.popen.poll() is None:
                proc.popen.kill()
                proc.popen.wait(timeout=10)


class Db:
    """Read the job database directly (a short connection per question; WAL readers never block
    the writer)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(self.path, timeout=10)
        try:
            return list(conn.execute(sql, params).fetchall())
        finally:
            conn.close()

    def exists(self) -> bool:
        return self.path.exists()

    def has_table(self, name: str) -> bool:
        if not self.path.exists():
            return False
        rows = self.query("SELECT name FROM sqlite_master WHERE type='table' AND name=?", name)
        return bool(rows)

    def job(self, job_id: str) -> dict[str, Any] | None:
        conn = sqlite3.connect(self.path, timeout=10)
        conn.row_factory = sqlite3.Row
        try:
            row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
            return dict(row) if row is not None else None
        finally:
            conn.close()

    def job_ids(self) -> list[str]:
        if not self.has_table("jobs"):
            return []
        return [r[0] for r in self.query("SELECT id FROM jobs ORDER BY created_at")]

    def counts(self, job_id: str) -> dict[str, int]:
        counts = dict.fromkeys(ITEM_STATES, 0)
        for state, n in self.query(
            "SELECT state, count(*) FROM items WHERE job_id = ? GROUP BY state", job_id
        ):
            counts[state] = n
        return counts

    def items(self, job_id: str, state: str | None = None) -> dict[str, str]:
        """workspace id → item state."""
        sql = "SELECT workspace_id, state FROM items WHERE job_id = ?"
        rows = (
            self.query(sql + " AND state = ?", job_id, state) if state else self.query(sql, job_id)
        )
        return dict(rows)  # type: ignore[arg-type]


@dataclass
class SimProcess:
    """``python -m fleetops.sim serve`` in its own process, on a fixed port: kill it and
    restart it (same seed, same port: the same fleet is generated again, but its state — in-flight
    transitions, stats — is lost)."""

    port: int
    args: list[str]
    env: dict[str, str]
    workdir: Path
    popen: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.starts += 1
        log = (self.workdir / f"sim{self.starts}.log").open("wb")
        with log:
            self.popen = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "fleetops.sim",
                    "serve",
                    "--port",
                    str(self.port),
                    *self.args,
                ],
                env=self.env,
                stdout=subprocess.PIPE,
                stderr=log,
                stdin=subprocess.DEVNULL,
            )
        assert self.popen.stdout is not None
        line = self.popen.stdout.readline().decode().strip()  # the URL, once listening
        assert line.startswith("http://"), f"sim serve printed {line!r}"

    def stop(self, sig: int = signal.SIGKILL) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(sig)
            self.popen.wait(timeout=30)
        if self.popen is not None and self.popen.stdout is not None:
            self.popen.stdout.close()
        self.popen = None

    def _http(self, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.endpoint_url + path, data=data)
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read() or b"{}")

    def stats(self) -> dict[str, Any]:
        return dict(self._http("/_sim/stats"))

    def configure(self, **knobs: Any) -> None:
        self._http("/_sim/config", knobs)


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Cli]:
    work = tmp_path / "work"
    work.mkdir()
    harness = Cli(db=tmp_path / "jobs.db", workdir=work, env=base_env(tmp_path))
    try:
        yield harness
    finally:
        harness.cleanup()


@pytest.fixture
def db(cli: Cli) -> Db:
    return Db(cli.db)


@pytest.fixture
def sim_process(tmp_path: Path) -> Iterator[Callable[..., SimProcess]]:
    made: list[SimProcess] = []

    def make(*args: str, port: int | None = None) -> SimProcess:
        sim = SimProcess(port or free_port(), list(args), base_env(tmp_path), tmp_path)
        sim.start()
        made.append(sim)
        return sim

    try:
        yield make
    finally:
        for sim in made:
            sim.stop()


def reboot_counts(calls_by_workspace: dict[str, dict[str, int]], op: str) -> dict[str, int]:
    return dict(calls_by_workspace.get(op, {}))
