"""Helpers of the torture suite (tests/torture): FULL (``FLEETOPS_TORTURE=full``) and the
figures report (printed with ``-s``; appended as JSON lines to ``$FLEETOPS_TORTURE_REPORT``)."""

from __future__ import annotations

import json
import os
from typing import Any

FULL = os.environ.get("FLEETOPS_TORTURE", "").lower() == "full"


def report(name: str, **figures: Any) -> None:
    """Print the figures of a torture run (and append them to $FLEETOPS_TORTURE_REPORT)."""
    line = json.dumps({"run": name, "full": FULL, **figures}, sort_keys=True, default=str)
    print(f"\n[torture] {line}")
    target = os.environ.get("FLEETOPS_TORTURE_REPORT")
    if target:
        with open(target, "a", encoding="utf-8") as out:
            out.write(line + "\n")
