"""The torture suite: the engine attacked the way production does — SIGKILLs at random
moments, throttling storms, 500s, per-item failures, stuck reboots, latency, a simulator restarted
mid-job, expiring credentials, and a database that is locked, read-only, foreign or newer.

A fast subset runs by default (the whole directory in about a minute). ``FLEETOPS_TORTURE=full``
runs the full sizes: 20 SIGKILLs across a 2,000-WorkSpace reboot, terminate and
rebuild, and latency spikes past the client's 30 s read timeout.

Figures (items lost, extra calls, kills, final status) are printed with ``-s`` and, when
``FLEETOPS_TORTURE_REPORT`` names a file, appended to it as JSON lines.
"""

from __future__ import annotations

from typing import Any

import pytest
from fleetops_harness import cli, db, sim_process
from fleetops_torture import FULL, report

__all__ = ["FULL", "cli", "db", "report", "sim_process", "torture_report"]


@pytest.fixture
def torture_report() -> Any:
    return report
