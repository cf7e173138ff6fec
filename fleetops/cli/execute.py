"""What the commands that run jobs share (``run``, ``jobs start|resume|retry``, ``demo``):
progress and signal handling around an API call, the plan as shown before a run, the
confirmation of a destructive run, and the final line (or JSON) with its exit code."""

from __future__ import annotations

import signal
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import typer

from fleetops.cli.common import err_console, fail, print_json, state
from fleetops.errors import UsageError
from fleetops.states import ItemState, exit_code_for

if TYPE_CHECKING:
    from fleetops.api import JobRunner, PlanSummary, StopSignal, Store
    from fleetops.records import JobRecord

__all__ = ["confirm", "execute", "finish", "need_terminal", "print_plan"]

#: An API call that runs a job: (stop signal, on_start) → the job as recorded.
RunCall = Callable[["StopSignal", Callable[["JobRunner"], None]], Awaitable["JobRecord"]]


def _signal_stop(stop: StopSignal) -> Any:
    import anyio

    async def receive() -> None:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                name = signal.Signals(signum).name
                if stop.is_set:
                    err_console.print(f"{name} again: stopping now", highlight=False)
                    stop.set_hard()
                else:
                    err_console.print(
                        f"{name}: no new batches; waiting for calls in flight "
                        "(again to stop at once)",
                        highlight=False,
                    )
                    stop.set(f"interrupted by {name}")

    return receive


async def execute(call: RunCall) -> JobRecord:
    """Run ``call`` with progress on stderr and Ctrl-C / SIGTERM turned into a graceful stop."""
    import anyio

    from fleetops.api import StopSignal
    from fleetops.cli.progress import watch

    stop = StopSignal()
    async with anyio.create_task_group() as tg:
        tg.start_soon(_signal_stop(stop))

        def started(runner: JobRunner) -> None:
            async def show() -> None:
                await watch(runner, err_console, quiet=state.quiet)

            tg.start_soon(show)

        try:
            job = await call(stop, started)
        finally:
            tg.cancel_scope.cancel()
    return job


async def finish(store: Store, job: JobRecord, as_json: bool) -> int:
    """The job's final line on stderr (or its JSON on stdout); returns the exit code."""
    from fleetops.api import unverified_count
    from fleetops.report.documents import job_json

    counts = await store.counts(job.id)
    unverified = await unverified_count(store, job.id) if counts[ItemState.SUCCEEDED] else 0
    if as_json:
        print_json(job_json(job, counts, unverified))
    else:
        shown = ", ".join(
            f"{counts[s]} {s}"
            + (f" ({unverified} unverified)" if s is ItemState.SUCCEEDED and unverified else "")
            for s in ItemState
            if counts[s]
        )
        err_console.print(f"job {job.id} {job.status}: {shown or 'no items'}", highlight=False)
        if job.message:
            err_console.print(job.message, highlight=False)
    return exit_code_for(job.status, counts)


def print_plan(
    summary: PlanSummary,
    *,
    job_id: str | None = None,
    status: str = "planned",
    as_json: bool = False,
) -> None:
    """A plan: counts by reason, examples, the API calls and time it takes. With ``job_id``
    it is a stored plan (``--plan-only``), else a dry run (nothing written)."""
    if as_json:
        # a stored plan is a job like any other (``id``, ``status``); ``job_id`` and ``planned``
        # stay for the scripts that read them
        head = (
            {"id": job_id, "status": status, "job_id": job_id, "planned": True}
            if job_id
            else {"dry_run": True}
        )
        print_json({**head, **summary.as_dict()})
        return
    out = err_console
    if job_id is None:
        out.print(f"dry run: {summary.action} — nothing was written", highlight=False)
    else:
        out.print(f"plan of job {job_id}: {summary.action}", highlight=False)
    verb = "would be" if job_id is None else "will be"
    out.print(f"  {summary.eligible} WorkSpaces {verb} acted on", highlight=False)
    for reason, count in summary.skipped.most_common():
        out.print(f"  {count} skipped: {reason}", highlight=False)
    for group, examples in summary.examples.items():
        out.print(f"  e.g. {group}: {', '.join(examples)}", highlight=False)
    out.print(
        f"  API calls: {summary.planning_calls} to plan (of which {summary.snapshot_calls} "
        f"snapshot checks); to run, {summary.submit_calls} to act and ~{summary.verify_calls} "
        f"to verify (~{summary.seconds_at_quota:.0f} s at {summary.rate or 'unlimited'} calls/s)",
        highlight=False,
    )
    if summary.by_scope:
        out.print("  by account and region (each on its own quota, in parallel):", highlight=False)
        for row in summary.scope_rows():
            where = f"{row['account']} {row['region']}" if row["account"] else row["region"]
            if "unreachable" in row:
                out.print(f"    {where}: not reachable: {row['unreachable']}", highlight=False)
                continue
            out.print(
                f"    {where}: {row['eligible']} to act on, {row['skipped']} skipped, "
                f"{row['calls_needed']} calls (~{row['seconds_at_quota']:.0f} s)",
                highlight=False,
            )
    if job_id is not None:
        out.print(
            f"  run it with `fleetops jobs start {job_id}` (it acts on exactly these WorkSpaces)",
            highlight=False,
        )


def need_terminal(refuse: str) -> None:
    """A question needs a terminal: without one, a :class:`UsageError` (``refuse`` says what
    to pass instead). Checked before anything is written."""
    if not sys.stdin.isatty():
        raise UsageError(f"{refuse} (no terminal to confirm on)")


def confirm(
    question: str, *, refuse: str, declined: str = "not confirmed: nothing was done"
) -> None:
    """Ask on the terminal; no terminal is a :class:`UsageError`, a no is one line and exit 1."""
    need_terminal(refuse)
    if not typer.confirm(question, err=True):
        fail(declined, 1)
