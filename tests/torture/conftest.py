"""The torture suite (issue 7): the engine attacked the way production does — SIGKILLs at random
moments, throttling storms, 500s, per-item failures, stuck reboots, latency, a simulator restarted
mid-job, expiring credentials, and a database that is locked, read-only, foreign or newer.

A fast subset runs by default (the whole directory in about a minute). ``FLEETOPS_TORTURE=full``
runs the full sizes of the issue: 20 SIGKILLs across a 2,000-WorkSpace reboot, terminate and
rebuild, and latency spikes past the client's 30 s read timeout.

Figures (items lost, extra calls, kills, final status) are printed with ``-s`` and, when
``FLEETOPS_TORTURE_REPORT`` names a file, appended to it as JSON lines.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

FULL = os.environ.get("FLEETOPS_TORTURE", "").lower() == "full"


def _harness() -> Any:
    loaded = sys.modules.get("fleetops_harness")
    if loaded is not None:
        return loaded
    path = Path(__file__).resolve().parent.parent / "acceptance" / "conftest.py"
    spec = importlib.util.spec_from_file_location("fleetops_harness", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["fleetops_harness"] = module
    spec.loader.exec_module(module)
    return module


_h = _harness()
cli = _h.cli
db = _h.db
sim_process = _h.sim_process


def report(name: str, **figures: Any) -> None:
    """Print the figures of a torture run (and append them to $FLEETOPS_TORTURE_REPORT)."""
    line = json.dumps({"run": name, "full": FULL, **figures}, sort_keys=True, default=str)
    print(f"\n[torture] {line}")
    target = os.environ.get("FLEETOPS_TORTURE_REPORT")
    if target:
        with open(target, "a", encoding="utf-8") as out:
            out.write(line + "\n")


@pytest.fixture
def torture_report() -> Any:
    return report


sys.modules.setdefault("fleetops_torture", sys.modules[__name__])
