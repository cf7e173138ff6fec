"""Child processes measured from outside: wall time, CPU seconds and peak RSS per process.

``os.wait4`` returns the rusage of exactly the reaped child, so concurrent children (S6) and
the simulator's own process never blur one another's figures.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

__all__ = ["Measured", "Proc", "SimProcess", "file_size_mb", "python_argv"]


def python_argv(*args: str) -> list[str]:
    """``python ARGS…`` with this interpreter (the venv's)."""
    return [sys.executable, *args]


@dataclass(frozen=True)
class Measured:
    """How one child process ended and what it cost."""

    argv: list[str]
    returncode: int
    wall_s: float
    user_s: float
    sys_s: float
    max_rss_mb: float
    stdout: str
    stderr: str

    @property
    def cpu_s(self) -> float:
        return self.user_s + self.sys_s

    def last_json(self) -> dict[str, Any]:
        """The last stdout line that parses as a JSON object (``--json`` output)."""
        for line in reversed(self.stdout.splitlines()):
            line = line.strip()
            if line.startswith("{"):
                try:
                    value = json.loads(line)
                except ValueError:
                    continue
                if isinstance(value, dict):
                    return value
        raise ValueError(
            f"no JSON object on stdout of {' '.join(self.argv[:4])}… (rc {self.returncode}); "
            f"stderr tail: {self.stderr[-800:]}"
        )


class Proc:
    """A started child; ``poll()``/``wait()`` reap it with ``os.wait4`` and measure it."""

    def __init__(self, argv: list[str], *, env: dict[str, str] | None = None) -> None:
        self.argv = argv
        self._out: IO[bytes] = tempfile.TemporaryFile()
        self._err: IO[bytes] = tempfile.TemporaryFile()
        self.started = time.perf_counter()
        self.popen = subprocess.Popen(
            argv, stdout=self._out, stderr=self._err, stdin=subprocess.DEVNULL, env=env
        )
        self.result: Measured | None = None
        self._hwm_kb = 0

    def _sample_rss(self) -> None:
        """The child's high-water RSS so far (``VmHWM``). ``ru_maxrss`` is unusable for this:
        Linux carries the forking parent's RSS across ``exec`` into the child's figure."""
        try:
            with open(f"/proc/{self.popen.pid}/status", "rb") as status:
                for line in status:
                    if line.startswith(b"VmHWM:"):
                        self._hwm_kb = max(self._hwm_kb, int(line.split()[1]))
                        break
        except (OSError, ValueError):
            pass

    @property
    def pid(self) -> int:
        return self.popen.pid

    def poll(self) -> Measured | None:
        if self.result is None:
            self._sample_rss()
            pid, status, usage = os.wait4(self.popen.pid, os.WNOHANG)
            if pid == 0:
                return None
            self._finish(status, usage)
        return self.result

    def wait(self, timeout: float) -> Measured:
        deadline = time.perf_counter() + timeout
        while True:
            result = self.poll()
            if result is not None:
                return result
            if time.perf_counter() > deadline:
                self.kill()
                raise TimeoutError(f"{' '.join(self.argv[:5])}… still running after {timeout} s")
            time.sleep(0.005)

    def kill(self, signum: int = signal.SIGKILL) -> Measured:
        if self.result is None:
            self._sample_rss()
            os.kill(self.popen.pid, signum)
            _, status, usage = os.wait4(self.popen.pid, 0)
            self._finish(status, usage)
        assert self.result is not None
        return self.result

    def _finish(self, status: int, usage: Any) -> None:
        wall = time.perf_counter() - self.started
        self.popen.returncode = os.waitstatus_to_exitcode(status)
        self.result = Measured(
            argv=self.argv,
            returncode=self.popen.returncode,
            wall_s=wall,
            user_s=float(usage.ru_utime),
            sys_s=float(usage.ru_stime),
            max_rss_mb=self._hwm_kb / 1024.0,
            stdout=_drain(self._out),
            stderr=_drain(self._err),
        )


def _drain(handle: IO[bytes]) -> str:
    handle.seek(0)
    text = handle.read().decode(errors="replace")
    handle.close()
    return text


class SimProcess:
    """``python -m fleetops.sim serve`` in its own process (its own core, its own GIL)."""

    def __init__(
        self,
        *,
        workspaces: int,
        rate: float | None,
        burst: int = 5,
        latency_ms: float = 0.0,
        transition_seconds: float = 2.0,
        region: str = "us-east-1",
        seed: int = 0,
    ) -> None:
        self.argv = python_argv(
            "-m",
            "fleetops.sim",
            "serve",
            "--port",
            "0",
            "--workspaces",
            str(workspaces),
            "--seed",
            str(seed),
            "--region",
            region,
            "--rate",
            str(rate or 0),
            "--burst",
            str(burst),
            "--latency-ms",
            str(latency_ms),
            "--transition-seconds",
            str(transition_seconds),
        )
        self.region = region
        self.url = ""
        self._popen: subprocess.Popen[bytes] | None = None
        self._log = tempfile.TemporaryFile()

    def __enter__(self) -> SimProcess:
        popen = subprocess.Popen(
            self.argv, stdout=subprocess.PIPE, stderr=self._log, stdin=subprocess.DEVNULL
        )
        self._popen = popen
        assert popen.stdout is not None
        line = popen.stdout.readline().decode().strip()
        if not line.startswith("http"):
            self._log.seek(0)
            raise RuntimeError(f"simulator did not start: {self._log.read().decode()[-800:]}")
        self.url = line
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._popen is not None:
            self._popen.send_signal(signal.SIGTERM)
            try:
                self._popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._popen.kill()
                self._popen.wait()
            if self._popen.stdout is not None:
                self._popen.stdout.close()
        self._log.close()

    def _request(self, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.url + path, data=data, method="POST" if data is not None else "GET"
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = self._request("/_sim/stats")
        return stats

    def total_calls(self) -> int:
        return int(self.stats()["total_calls"])

    def reset(self) -> None:
        self._request("/_sim/reset", {})

    def configure(self, **knobs: Any) -> None:
        self._request("/_sim/config", knobs)


def file_size_mb(path: Path) -> float:
    """A SQLite database's size with its WAL and shared-memory files."""
    total = 0
    for suffix in ("", "-wal", "-shm"):
        candidate = Path(str(path) + suffix)
        if candidate.exists():
            total += candidate.stat().st_size
    return total / (1024 * 1024)
