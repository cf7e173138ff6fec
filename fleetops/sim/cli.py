"""``fleetops sim serve``: run the simulator until Ctrl-C or SIGTERM.

Prints the endpoint URL (one line) to stdout, flushed, so a parent process can read it.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from fleetops.sim._server import Simulator


__all__ = ["sim_app"]

sim_app = typer.Typer(help="The local WorkSpaces simulator.", no_args_is_help=True)


@sim_app.callback()
def _sim() -> None:
    """The local WorkSpaces simulator (AWS JSON 1.1 on 127.0.0.1)."""


@sim_app.command()
def serve(
    port: Annotated[int, typer.Option(help="TCP port; 0 picks a free one.")] = 0,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    workspaces: Annotated[int, typer.Option(help="WorkSpaces to generate.")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the generated fleet.")] = 0,
    region: Annotated[str, typer.Option(help="Region the endpoint pretends to be.")] = "us-east-1",
    rate: Annotated[float, typer.Option(help="Quota in calls/s; 0 = unlimited.")] = 2.0,
    burst: Annotated[int, typer.Option(help="Quota burst.")] = 5,
    per_operation_quota: Annotated[
        bool, typer.Option("--per-operation-quota", help="One bucket per operation.")
    ] = False,
    latency_ms: Annotated[float, typer.Option(help="Latency added to every request.")] = 0.0,
    error_rate: Annotated[float, typer.Option(help="Fraction of 500 InternalFailure.")] = 0.0,
    item_failure_rate: Annotated[
        float, typer.Option(help="Fraction of per-item transient failures.")
    ] = 0.0,
    stuck_reboot_rate: Annotated[
        float, typer.Option(help="Fraction of reboots stuck forever.")
    ] = 0.0,
    transition_seconds: Annotated[
        float, typer.Option(help="Base duration of every transition.")
    ] = 2.0,
    account: Annotated[
        list[str] | None,
        typer.Option(
            "--account",
            metavar="ID",
            help="Serve another account (repeatable): its own fleet, quota and counters, "
            "reached by assuming a role in it through STS on the same endpoint.",
        ),
    ] = None,
    deny_assume_role: Annotated[
        list[str] | None,
        typer.Option(
            "--deny-assume-role", metavar="ID", help="AssumeRole into this account is denied."
        ),
    ] = None,
    describe_lag: Annotated[
        float,
        typer.Option(
            metavar="SECONDS",
            help="DescribeWorkspaces shows each WorkSpace as it was this long ago "
            "(eventual consistency); new WorkSpaces are not found meanwhile.",
        ),
    ] = 0.0,
    standbys: Annotated[
        int,
        typer.Option(metavar="N", help="Standby WorkSpaces for the first N eligible primaries."),
    ] = 0,
    in_progress_first: Annotated[
        int,
        typer.Option(
            metavar="N",
            help="The first N modify/migrate calls per WorkSpace answer "
            "OperationInProgressException.",
        ),
    ] = 0,
) -> None:
    """Serve a simulated WorkSpaces endpoint and print its URL."""
    from fleetops.sim._server import Simulator

    for account_id in (*(account or ()), *(deny_assume_role or ())):
        if not (len(account_id) == 12 and account_id.isdigit()):
            raise typer.BadParameter(f"{account_id!r} is not a 12-digit AWS account id")
    sim = Simulator(
        workspaces=workspaces,
        seed=seed,
        region=region,
        host=host,
        port=port,
        rate=rate or None,
        burst=burst,
        per_operation_quota=per_operation_quota,
        latency_ms=latency_ms,
        error_rate=error_rate,
        item_failure_rate=item_failure_rate,
        stuck_reboot_rate=stuck_reboot_rate,
        transition_seconds=transition_seconds,
        describe_lag=describe_lag,
        standbys=standbys,
        in_progress_first=in_progress_first,
        accounts=[*(account or ()), *(deny_assume_role or ())],
    )
    for denied in deny_assume_role or ():
        sim.configure_account(denied, deny_assume_role=True)
    try:
        asyncio.run(_serve(sim))
    except KeyboardInterrupt:
        pass


async def _serve(sim: Simulator) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with sim:
        sys.stdout.write(sim.endpoint_url + "\n")
        sys.stdout.flush()
        await stop.wait()
