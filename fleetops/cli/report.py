"""``fleetops jobs report JOB -o report.html``: a picture of a job, one self-contained HTML file.

Reading only: a missing database is a one-line error, an unknown job too (exit 2); the file is
written whole and renamed into place, so a failed report leaves nothing half-written.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from fleetops.api import Store

__all__ = ["report_job"]


def report_job(
    job: Annotated[str, typer.Argument(metavar="JOB", help="A job id, or a unique prefix of one.")],
    output: Annotated[
        Path,
        typer.Option("--output", "-o", help="The HTML file to write.", show_default=False),
    ],
) -> None:
    """Draw a job as one self-contained HTML file: summary, timeline, errors, scopes."""
    from fleetops.cli.common import err_console, fail, run_async, with_store
    from fleetops.cli.jobs import existing_db

    where = existing_db()
    if output.is_dir():
        fail(f"{output} is a directory; give the file to write (-o report.html)")
    if not output.parent.is_dir():
        fail(f"cannot write {output}: no directory {output.parent}")

    async def use(store: Store) -> str:
        from fleetops.api import write_report

        return await write_report(store, job, output)

    job_id = run_async(lambda: with_store(use, where))
    err_console.print(f"report of job {job_id} written to {output}", highlight=False)
