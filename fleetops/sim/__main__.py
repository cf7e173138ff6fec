"""``python -m fleetops.sim serve ...``."""

from __future__ import annotations

from fleetops.sim.cli import sim_app

if __name__ == "__main__":
    sim_app(prog_name="python -m fleetops.sim")
