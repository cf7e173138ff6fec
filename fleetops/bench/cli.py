"""``fleetops bench run``: run the benchmark scenarios and write the report.

python -m fleetops.bench run                       # the full suite (~15 min)
python -m fleetops.bench run --quick --out /tmp/b  # small sizes, seconds
python -m fleetops.bench run --scenario S1,S5
"""

from __future__ import annotations

import shlex
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from fleetops.bench.scenarios import Sizes

__all__ = ["ALL_SCENARIOS", "MISSING_BOTO3", "bench_app", "run_suite", "scenario_runners"]

bench_app = typer.Typer(help="The benchmark suite.", no_args_is_help=True)

Runner = Callable[["Sizes", Path], dict[str, Any]]

#: The scenarios, in the order they run. Their code is imported only when the benchmark runs:
#: ``fleetops bench`` is registered on every CLI start.
ALL_SCENARIOS = ("S1", "S2", "S3", "S4", "S5", "S6", "S7", "S8", "S9")


def _lazy_s9(sizes: Sizes, workdir: Path) -> dict[str, Any]:
    from fleetops.bench.accounts import run_s9  # S9: accounts (4 accounts x 2 regions)

    return run_s9(sizes, workdir)


def _team() -> Any:
    from fleetops.bench import team

    return team


def scenario_runners() -> dict[str, Runner]:
    from fleetops.bench.evidence import run_s1
    from fleetops.bench.history import run_s5
    from fleetops.bench.scenarios import run_s2, run_s3, run_s4, run_s6

    return {
        "S1": run_s1,
        "S2": run_s2,
        "S3": run_s3,
        "S4": run_s4,
        "S5": lambda sizes, wd: run_s5(sizes.s5_jobs, sizes.s5_items_per_job, wd),
        "S6": run_s6,
        "S7": lambda sizes, wd: _team().run_s7(sizes, wd),  # workers on PostgreSQL
        "S8": lambda sizes, wd: _team().run_s8(sizes, wd),
        "S9": _lazy_s9,
    }


def run_suite(
    scenarios: list[str],
    *,
    quick: bool,
    workdir: Path,
    log: Callable[[str], None] = lambda _: None,
    s2_workspaces: int | None = None,
) -> dict[str, Any]:
    """Run ``scenarios`` in order; a failing scenario is recorded, the others still run."""
    from dataclasses import replace

    from fleetops.bench.report import machine_info
    from fleetops.bench.scenarios import Sizes

    runners = scenario_runners()
    sizes = Sizes.quick() if quick else Sizes()
    if s2_workspaces is not None:
        sizes = replace(sizes, s2_workspaces=s2_workspaces)
    machine = machine_info()
    started = time.perf_counter()
    results: list[dict[str, Any]] = []
    for key in scenarios:
        log(f"{key} …")
        t0 = time.perf_counter()
        try:
            result = runners[key](sizes, workdir)
        except Exception as exc:
            result = {
                "id": key,
                "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(),
            }
        result["scenario_s"] = round(time.perf_counter() - t0, 1)
        log(f"{key} done in {result['scenario_s']} s")
        results.append(result)
    return {
        "command": _command_line(),
        "mode": "quick" if quick else "full",
        "machine": machine,
        "total_s": round(time.perf_counter() - started, 1),
        "scenarios": results,
    }


#: The one line ``bench run`` prints when boto3 (the peer's library) is not installed.
MISSING_BOTO3 = "fleetops bench needs boto3 for its plain-boto3 peer: pip install 'fleetops[bench]'"


def _require_boto3() -> None:
    """Exit 2 with one line when boto3 is missing (it is an extra, not a dependency)."""
    from importlib.util import find_spec

    try:
        found = find_spec("boto3") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        typer.echo(MISSING_BOTO3, err=True)
        raise typer.Exit(2)


def _command_line() -> str:
    """``fleetops bench run …`` as typed (``fleetops bench`` or ``python -m fleetops.bench``)."""
    args = sys.argv[1:]
    after = args[args.index("run") + 1 :] if "run" in args else args
    return "fleetops bench run " + " ".join(shlex.quote(a) for a in after)


def _parse(scenarios: str) -> list[str]:
    keys = [s.strip().upper() for s in scenarios.split(",") if s.strip()]
    unknown = [k for k in keys if k not in ALL_SCENARIOS]
    if unknown or not keys:
        raise typer.BadParameter(
            f"unknown scenario {', '.join(unknown) or '(none)'}; choose from "
            + ", ".join(ALL_SCENARIOS)
        )
    return keys


@bench_app.callback()
def _bench() -> None:
    """The benchmark suite: fleetops vs the API quota and vs a plain boto3 script."""


@bench_app.command()
def run(
    scenario: Annotated[str, typer.Option(help="Comma-separated scenarios (S1…S6).")] = ",".join(
        ALL_SCENARIOS
    ),
    quick: Annotated[bool, typer.Option("--quick", help="Small sizes (seconds, not minutes).")] = (
        False
    ),
    out: Annotated[Path, typer.Option(help="Where REPORT.md and report.json go.")] = Path("bench"),
    workdir: Annotated[
        Path | None, typer.Option(help="Scratch directory for databases (default: a temp dir).")
    ] = None,
    s2_workspaces: Annotated[
        int | None,
        typer.Option(
            "--s2-workspaces", min=1, help="Fleet size of S2 (default 100,000; e.g. 1000000)."
        ),
    ] = None,
) -> None:
    """Run the scenarios and write REPORT.md and report.json to OUT."""
    keys = _parse(scenario)
    _require_boto3()

    def log(message: str) -> None:
        typer.echo(message, err=True)

    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
        report = run_suite(keys, quick=quick, workdir=workdir, log=log, s2_workspaces=s2_workspaces)
    else:
        with tempfile.TemporaryDirectory(prefix="fleetops-bench-") as tmp:
            report = run_suite(
                keys, quick=quick, workdir=Path(tmp), log=log, s2_workspaces=s2_workspaces
            )
    from fleetops.bench.report import write_report

    json_path, md_path = write_report(report, out)
    typer.echo(f"{md_path}\n{json_path}")
    if any("error" in sc for sc in report["scenarios"]):
        raise typer.Exit(1)
