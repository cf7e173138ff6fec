"""The benchmark suite: its report is produced and well-formed (no timing assertions)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from fleetops.aws.model import list_member_max
from fleetops.bench import peer
from fleetops.bench.history import build_history
from fleetops.bench.report import render_markdown
from fleetops.bench.scenarios import BATCH, _min_calls, quota_bound


def test_quota_bound_counts_the_burst_as_free() -> None:
    assert quota_bound(850, 20.0, 50) == 40.0
    assert quota_bound(10, 20.0, 50) == 0.0


def test_minimum_calls_follow_the_guardrails_the_job_used() -> None:
    calls = {"DescribeWorkspaces": 1, "DescribeWorkspacesConnectionStatus": 1}
    minimum = _min_calls(workspaces=5000, candidates=4400, acted=3950, batch=25, calls=calls)
    assert minimum == {
        "describe_pages": 200,
        "connection_status": 176,
        "snapshots": 0,
        "actions": 158,
        "verify": 158,
        "total": 692,
    }
    rebuild = _min_calls(
        workspaces=100, candidates=100, acted=90, batch=1, calls={"DescribeWorkspaceSnapshots": 3}
    )
    assert (rebuild["connection_status"], rebuild["snapshots"], rebuild["actions"]) == (0, 90, 90)


def test_batch_sizes_match_the_service_model() -> None:
    assert (
        BATCH
        == list_member_max("RebootWorkspaces")
        == list_member_max("DescribeWorkspaces", "WorkspaceIds")
    )


def test_peer_script_imports_nothing_of_fleetops() -> None:
    source = Path(peer.__file__).read_text()
    assert "fleetops" not in "".join(
        line for line in source.splitlines() if line.startswith(("import", "from"))
    )


def test_history_database_has_the_rows_asked_for(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    built = build_history(db, jobs=3, items_per_job=60)
    with sqlite3.connect(db) as conn:
        jobs = conn.execute("SELECT count(*) FROM jobs").fetchone()[0]
        items = conn.execute("SELECT count(DISTINCT job_id), count(*) FROM items").fetchone()
        version = conn.execute("SELECT version_num FROM alembic_version").fetchone()[0]
    assert (jobs, tuple(items), built["items"]) == (3, (3, 180), 180)
    assert version  # migrated by Store.open, not a hand-made schema


def test_markdown_reports_a_failed_scenario_without_hiding_the_others() -> None:
    report = {
        "command": "python -m fleetops.bench run",
        "mode": "quick",
        "total_s": 1.0,
        "machine": {
            "date": "2026-01-01T00:00:00Z",
            "nproc": 2,
            "cpu_model": "cpu",
            "python": "3.11",
            "platform": "linux",
            "loadavg_at_start": [0.1, 0.1, 0.1],
            "git_commit": "abc",
            "boto3": "1",
            "aiobotocore": "2",
            "sqlalchemy": "2",
        },
        "scenarios": [
            {"id": "S1", "error": "RuntimeError: simulator did not start"},
            {
                "id": "S5",
                "title": "history queries",
                "setup": {"jobs": 1},
                "fleetops": {"commands": {}, "baselines": {}, "import_profiles": {}},
                "peer": {"note": "nothing to compare"},
                "derived": {},
                "targets": [{"name": "jobs list", "value": 0.2, "target": "≤ 0.3", "met": True}],
            },
        ],
    }
    text = render_markdown(report)
    assert "| S1 | (scenario failed) | RuntimeError: simulator did not start" in text
    assert "| S5 history queries | jobs list | 0.2 | ≤ 0.3 | **met** |" in text


def test_markdown_reports_a_scenario_of_several_runs_and_no_peer() -> None:
    """S9's shape: two runs of fleetops (one scope, then eight) and no peer entry at all."""
    run = {"wall_s": 12.5, "calls": 300, "items_per_s": 40.0}
    report = {
        "command": "python -m fleetops.bench run",
        "mode": "quick",
        "total_s": 1.0,
        "machine": {"date": "2026-01-01T00:00:00Z", "nproc": 2, "cpu_model": "cpu",
                    "python": "3.11", "platform": "linux", "loadavg_at_start": [0.1, 0.1, 0.1],
                    "git_commit": "abc", "boto3": "1", "aiobotocore": "2", "sqlalchemy": "2"},
        "scenarios": [
            {
                "id": "S9",
                "title": "accounts",
                "setup": {"accounts": ["1", "2"]},
                "fleetops": {"one_account_region": run, "eight_account_regions": run,
                             "scaling": 7.5},
                "targets": [{"name": "scaling", "value": 7.5, "target": "≥ 7", "met": True}],
            },
        ],
    }  # fmt: skip
    text = render_markdown(report)
    assert "| S9 accounts | scaling | 7.5 | ≥ 7 | **met** |" in text
    assert "fleetops one account region" in text and "fleetops eight account regions" in text


def test_quick_run_writes_a_well_formed_report(tmp_path: Path) -> None:
    out = tmp_path / "report"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "fleetops.bench",
            "run",
            "--quick",
            "--scenario",
            "S1",
            "--out",
            str(out),
            "--workdir",
            str(tmp_path / "work"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads((out / "report.json").read_text())
    assert report["mode"] == "quick"
    assert report["machine"]["nproc"] >= 1 and report["machine"]["python"]
    (s1,) = report["scenarios"]
    assert s1["id"] == "S1" and "error" not in s1
    fleetops, peer_run = s1["fleetops"], s1["peer"]
    assert fleetops["job"]["status"] == "succeeded" and fleetops["job"]["acted"] > 0
    assert fleetops["calls_by_operation"]["RebootWorkspaces"] >= 1
    assert peer_run["result"]["succeeded"] > 0 and peer_run["calls_by_operation"]
    for run in (fleetops, peer_run):
        assert run["wall_s"] > 0 and run["cpu_s"] > 0 and run["peak_rss_mb"] > 5
    assert s1["derived"]["min_calls"]["total"] > 0
    names = {t["name"] for t in s1["targets"]}
    assert names >= {"wall / quota bound", "throttled share"}
    # told --rate 10 at 2 calls/s: the target counts the requests after the first 10 s
    assert "at 2/s told --rate 10: throttled share after the first 10 s" in names
    assert "at 2/s told --rate 10: throttled share" not in names
    told = fleetops["at 2/s told --rate 10"]
    assert "throttled_share" in told and "throttled_share_after_10s" in told
    markdown = (out / "REPORT.md").read_text()
    assert markdown.startswith("# fleetops benchmark report")
    assert "## S1 — rate-bound reboot" in markdown


def test_quick_s2_judges_cpu_per_workspace_against_the_boto3_loop(tmp_path: Path) -> None:
    out = tmp_path / "report"
    proc = subprocess.run(
        [
            *(sys.executable, "-m", "fleetops.bench", "run", "--quick", "--scenario", "S2"),
            *("--out", str(out), "--workdir", str(tmp_path / "work")),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    (s2,) = json.loads((out / "report.json").read_text())["scenarios"]
    assert s2["id"] == "S2" and "error" not in s2, s2.get("traceback")
    targets = {t["name"]: t for t in s2["targets"]}
    assert set(targets) == {"CPU per WorkSpace, fleetops / boto3 loop", "peak RSS MB"}
    ratio = targets["CPU per WorkSpace, fleetops / boto3 loop"]
    assert ratio["target"] == "≤ 2" and ratio["met"] in (True, False)
    assert ratio["value"] == s2["derived"]["fleetops_over_peer_cpu_per_workspace"] > 0
    assert s2["fleetops"]["items_per_s"] > 0  # still a figure, no longer a target
    assert "## S2" in (out / "REPORT.md").read_text()


#: Run the CLI with boto3 unimportable, as on a plain ``pip install fleetops``.
_WITHOUT_BOTO3 = """
import sys

class NoBoto3:
    def find_spec(self, name, path=None, target=None):
        if name == "boto3" or name.startswith("boto3."):
            raise ModuleNotFoundError("No module named 'boto3'", name="boto3")
        return None

sys.meta_path.insert(0, NoBoto3())
from fleetops.cli.main import main
sys.argv = ["fleetops", *sys.argv[1:]]
main()
"""


def test_bench_without_boto3_is_one_line_exit_2(tmp_path: Path) -> None:
    out = tmp_path / "report"
    proc = subprocess.run(
        [sys.executable, "-c", _WITHOUT_BOTO3, "bench", "run", "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "fleetops bench needs boto3 for its plain-boto3 peer: pip install 'fleetops[bench]'"
    ]
    assert proc.stdout == ""
    assert not out.exists()


def test_profile_breakdown_groups_busy_samples_by_layer_and_phase() -> None:
    from fleetops.bench.flame import breakdown

    stacks = [
        "main (fleetops/cli/main.py:1);Verifier._poll (fleetops/engine/verify.py:9);"
        "_parse_shape (botocore/parsers.py:3) 30",
        "main (fleetops/cli/main.py:1);ScopeRun._submit_batch (fleetops/engine/scope.py:4);"
        "_sign (botocore/auth.py:7) 10",
        "main (fleetops/cli/main.py:1);consume (fleetops/engine/planner.py:2);"
        "execute (sqlalchemy/engine/base.py:5) 60",
        "run_forever (asyncio/base_events.py:1);EpollSelector.select (selectors.py:468) 500",
        "Thread.run (threading.py:982);_worker (concurrent/futures/thread.py:81) 200",
        "not a stack line",
    ]
    result = breakdown(stacks)
    assert result["samples"] == {"busy": 100.0, "idle": 700.0}  # a pool thread on its queue
    assert result["layers"] == {
        "SQLAlchemy (compile, execute, rows)": 0.6,
        "botocore: parse": 0.3,
        "botocore: sign": 0.1,
    }
    assert list(result["phases"].values()) == [0.6, 0.3, 0.1]
    assert next(iter(result["phases"])).startswith("planning")


def test_the_throttled_share_after_the_learning_seconds_reads_the_timeline() -> None:
    from fleetops.bench.scenarios import _throttled_after

    stats = {"timeline": {"admitted": [5, 2, 2, 2, 2], "throttled": [9, 3, 0, 1, 0]}}
    assert _throttled_after(stats, 2.0) == pytest.approx(1 / 7, abs=1e-4)
    assert _throttled_after(stats, 1.5) == pytest.approx(1 / 7, abs=1e-4)  # whole seconds
    assert _throttled_after(stats, 10.0) is None  # nothing after them
    assert _throttled_after({}, 2.0) is None
