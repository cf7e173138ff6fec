"""Introspection exact under concurrency; the HTTP surface; the serve command as a subprocess."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import boto3

from fleetops.sim import Simulator


async def test_counts_are_exact_under_concurrency(
    make_client: Any, ids_in_state: Callable[..., list[str]]
) -> None:
    async with Simulator(workspaces=2000, rate=None, latency_ms=30) as sim:
        ids = ids_in_state(sim, "AVAILABLE", 50 * 25)
        batches = [ids[i : i + 25] for i in range(0, len(ids), 25)]
        async with make_client(sim) as client:
            answers = await asyncio.gather(
                *(
                    client.reboot_workspaces(
                        RebootWorkspaceRequests=[{"WorkspaceId": i} for i in batch]
                    )
                    for batch in batches
                )
            )
        assert all(a["FailedRequests"] == [] for a in answers)
        stats = sim.stats()
        assert stats.calls_by_operation == {"RebootWorkspaces": 50}
        assert stats.total_calls == 50
        assert stats.largest_batch == {"RebootWorkspaces": 25}
        assert stats.calls_by_workspace["RebootWorkspaces"] == dict.fromkeys(ids, 1)
        assert 1 < stats.max_concurrent <= 50
        assert stats.states["REBOOTING"] == 1250
        assert json.loads(json.dumps(stats.as_dict()))["total_calls"] == 50
        sim.reset_stats()
        assert sim.stats().total_calls == 0 and sim.stats().calls_by_workspace == {}


def _get(url: str, data: dict[str, Any] | None = None) -> Any:
    body = None if data is None else json.dumps(data).encode()
    with urllib.request.urlopen(urllib.request.Request(url, data=body), timeout=10) as resp:
        return json.loads(resp.read())


def test_http_introspection_and_config() -> None:
    with Simulator(workspaces=20, rate=None).run_in_thread() as sim:
        client = boto3.client("workspaces", endpoint_url=sim.endpoint_url)
        client.describe_workspaces()
        stats = _get(sim.endpoint_url + "/_sim/stats")
        assert stats["calls_by_operation"] == {"DescribeWorkspaces": 1}
        assert sum(stats["states"].values()) == 20
        _get(sim.endpoint_url + "/_sim/reset", {})
        assert _get(sim.endpoint_url + "/_sim/stats")["total_calls"] == 0
        _get(sim.endpoint_url + "/_sim/config", {"rate": 0.01, "burst": 1})
        client.describe_workspaces()
        assert sim.rate == 0.01 and sim.stats().calls_by_operation == {"DescribeWorkspaces": 1}


def test_serve_prints_url_answers_and_stops_on_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "fleetops.sim", "serve", "--port", "0", "--workspaces", "30",
         "--rate", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        client = boto3.client("workspaces", endpoint_url=url)
        assert len(client.describe_workspaces()["Workspaces"]) == 25
        stats = _get(url + "/_sim/stats")
        assert stats["calls_by_operation"] == {"DescribeWorkspaces": 1}
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert time.monotonic() - started < 5
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_the_timeline_counts_requests_by_the_second_since_the_first() -> None:
    from unittest import mock

    from fleetops.sim._stats import Counters

    counters = Counters()
    assert counters.timeline() == {}
    with mock.patch("fleetops.sim._stats.time.time", side_effect=[100.0, 100.5, 102.2, 102.9]):
        counters.admitted("DescribeWorkspaces", 0, [])
        counters.throttle()
        counters.admitted("RebootWorkspaces", 1, ["ws-1"])
        counters.throttle()
    assert counters.timeline() == {
        "start": 100.0,
        "admitted": [1, 0, 1],
        "throttled": [1, 0, 1],
    }
    assert counters.throttled == 2
    counters.reset()
    assert counters.timeline() == {}
