"""The Python API example of the README runs as written, against the simulator."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from fleetops_harness import base_env

from fleetops.sim import Simulator

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_api_example() -> str:
    section = README.read_text(encoding="utf-8").split("### The Python API", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None, "no python block under 'The Python API'"
    return match.group(1)


def test_the_readme_api_example_runs(tmp_path: Path) -> None:
    code = readme_api_example()
    assert "from fleetops import" in code and "fleetops." not in code.replace("from fleetops", "")
    (tmp_path / "example.py").write_text(code)
    with Simulator(workspaces=40, seed=3, rate=None, transition_seconds=0.1).run_in_thread() as sim:
        assert sim.region == "us-east-1"
        done = subprocess.run(
            [sys.executable, "example.py"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            env=base_env(tmp_path, AWS_ENDPOINT_URL_WORKSPACES=sim.endpoint_url),
            timeout=120,
            check=False,
        )
        reboots = sim.stats().calls_by_operation.get("RebootWorkspaces", 0)
    assert done.returncode == 0, done.stderr
    planned, finished = done.stdout.splitlines()
    assert re.fullmatch(r"\d+ to reboot, \d+ skipped", planned) and int(planned.split()[0]) > 0
    assert finished.endswith(" succeeded") and reboots >= 1
    assert (tmp_path / "fleet.db").exists()
