"""The suite's report: the machine it ran on, then per scenario the figures, the peer and the
targets; written as ``report.json`` (everything) and ``REPORT.md`` (the headline tables)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["machine_info", "render_markdown", "write_report"]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    commit = out.stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", ":/fleetops"],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parent,
    ).stdout.strip()
    return (
        f"{commit} (with uncommitted changes to fleetops/)" if dirty and commit else commit or None
    )


def machine_info() -> dict[str, Any]:
    import aiobotocore
    import boto3
    import sqlalchemy

    return {
        "nproc": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "boto3": boto3.__version__,
        "aiobotocore": aiobotocore.__version__,
        "sqlalchemy": sqlalchemy.__version__,
        "git_commit": _git_commit(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def write_report(report: dict[str, Any], out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / "report.json", out / "REPORT.md"
    json_path.write_text(json.dumps(report, indent=2, sort_keys=False) + "\n")
    md_path.write_text(render_markdown(report))
    return json_path, md_path


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".") if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_fmt(v)}" for k, v in value.items())
    return str(value)


def _met(flag: bool | None) -> str:
    return {True: "**met**", False: "**missed**", None: "n/a"}[flag]


def _run_rows(label: str, run: dict[str, Any]) -> list[str]:
    keys = (
        ("wall_s", "wall s"),
        ("cpu_s", "CPU s"),
        ("peak_rss_mb", "peak RSS MB"),
        ("calls", "calls admitted"),
        ("throttled", "throttled"),
        ("throttled_share", "throttled share"),
        ("items_per_s", "items/s"),
        ("db_mb", "DB MB"),
        ("first_call_s", "first API call s"),
    )
    cells = [f"{name} {_fmt(run[key])}" for key, name in keys if key in run]
    rows = [f"| {label} | {'; '.join(cells)} |"]
    if run.get("calls_by_operation"):
        rows.append(f"| {label}: calls by operation | {_fmt(run['calls_by_operation'])} |")
    return rows


def render_markdown(report: dict[str, Any]) -> str:
    machine = report["machine"]
    lines = [
        "# fleetops benchmark report",
        "",
        f"`{report['command']}` — {machine['date']}, mode **{report['mode']}**, "
        f"total {report['total_s']:.0f} s.",
        "",
        f"Machine: {machine['nproc']} CPUs ({machine['cpu_model']}), Python {machine['python']}, "
        f"{machine['platform']}; load average at start {machine['loadavg_at_start']}; "
        f"fleetops {machine['git_commit']}, boto3 {machine['boto3']}, "
        f"aiobotocore {machine['aiobotocore']}, SQLAlchemy {machine['sqlalchemy']}. "
        "The machine is shared and noisy: figures are from one run.",
        "",
        "Every run is a child process (fleetops through its CLI, the peer a plain boto3 script) "
        "against `python -m fleetops.sim serve` in a process of its own, over real HTTP; wall, CPU "
        "and peak RSS are the child's own (`os.wait4`), calls and throttling the simulator's "
        "counters.",
        "",
        "## Targets",
        "",
        "| scenario | target | value | limit | |",
        "|---|---|---|---|---|",
    ]
    for sc in report["scenarios"]:
        if "error" in sc:
            lines.append(f"| {sc['id']} | (scenario failed) | {sc['error'][:120]} | | |")
            continue
        for t in sc["targets"]:
            lines.append(
                f"| {sc['id']} {sc['title']} | {t['name']} | {_fmt(t['value'])} | "
                f"{t['target']} | {_met(t['met'])} |"
            )
    for sc in report["scenarios"]:
        if "error" in sc:
            continue
        lines += ["", f"## {sc['id']} — {sc['title']}", ""]
        setup = {k: v for k, v in sc["setup"].items() if k != "states"}
        lines += [f"Setup: {_fmt(setup)}.", "", "| | |", "|---|---|"]
        fl, peer = sc["fleetops"], sc.get("peer", {})
        if "one_region" in fl:
            for key in ("one_region", "four_regions"):
                lines.append(f"| fleetops {key} | {_fmt(fl[key])} |")
                lines.append(f"| peer {key} | {_fmt(peer[key])} |")
            lines.append(f"| scaling | fleetops {fl['scaling']}, peer {peer['scaling']} |")
        elif "commands" in fl:
            lines.append(f"| database | {_fmt(sc['setup'])} |")
            for name, t in {**fl["commands"], **fl["baselines"]}.items():
                lines.append(f"| `{name}` | {_fmt(t)} |")
            for name, prof in fl["import_profiles"].items():
                top = "; ".join(f"{r['module']} {r['cumulative_ms']:.0f} ms" for r in prof[:8])
                lines.append(f"| imports of `{name}` (cumulative) | {top} |")
        else:
            lines += _run_rows("fleetops", fl)
            for phase, run in fl.items():  # a scenario of several runs (S9: 1, then 8 scopes)
                if isinstance(run, dict) and "wall_s" in run:
                    lines += _run_rows(f"fleetops {phase.replace('_', ' ')}", run)
            if "job" in fl:
                lines.append(f"| fleetops job | {_fmt(fl['job'].get('counts', fl['job']))} |")
            for key in ("first_run", "items_at_kill", "reboots_repeated"):
                if key in fl:
                    lines.append(f"| fleetops {key.replace('_', ' ')} | {_fmt(fl[key])} |")
            lines += _run_rows("peer", peer)
            if "result" in peer:
                lines.append(f"| peer result | {_fmt(peer['result'])} |")
        if "note" in peer:
            lines.append(f"| peer | {peer['note']} |")
        for key, value in sc.get("derived", {}).items():
            lines.append(f"| {key.replace('_', ' ')} | {_fmt(value)} |")
    notes = report.get("notes")
    if notes:
        lines += ["", "## Notes", "", notes]
    return "\n".join(lines) + "\n"
