"""Fixtures of the acceptance tests: the CLI as a subprocess, its database, simulator processes
(the helpers live in tests/support/fleetops_harness.py, on pytest's pythonpath)."""

from __future__ import annotations

from fleetops_harness import cli, db, sim_process

__all__ = ["cli", "db", "sim_process"]
