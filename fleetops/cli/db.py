"""``fleetops db …``: the job database."""

from __future__ import annotations

from typing import Annotated

import typer

from fleetops.cli.common import err_console, print_json, resolve_db, run_async

__all__ = ["db_app"]

db_app = typer.Typer(no_args_is_help=True, add_completion=False, help="The job database.")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create the database or bring its schema up to date."""
    from fleetops.api import open_store

    async def go() -> str:
        store = await open_store(resolve_db())
        await store.close()
        return store.where  # a URL's password left out

    where = run_async(go)
    err_console.print(f"database {where} is up to date", highlight=False)


@db_app.command("copy")
def db_copy(
    source: Annotated[
        str,
        typer.Option("--from", metavar="DB", help="The database to copy: a path or a URL."),
    ],
    target: Annotated[
        str,
        typer.Option(
            "--to", metavar="DB", help="Where to: a path or a URL (postgresql://USER@HOST/DB)."
        ),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False,
) -> None:
    """Copy every job, item and event into another database, ids kept, counts verified per
    table and per job; a target already holding any of the jobs is refused."""
    from fleetops.api import copy_database

    shown = {"items": 0}

    def progress(table: str, rows: int) -> None:
        # a line per 100,000 items: a million-item history shows it is moving
        if not as_json and table == "items" and rows // 100_000 > shown["items"]:
            shown["items"] = rows // 100_000
            err_console.print(f"  {rows:,} items copied", highlight=False)

    report = run_async(lambda: copy_database(source, target, progress=progress))
    if as_json:
        print_json(report.as_dict())
        return
    err_console.print(
        f"copied {report.jobs:,} jobs, {report.items:,} items, {report.events:,} events "
        f"from {report.source} to {report.target} in {report.seconds:.1f} s "
        "(counts verified per table and per job)",
        highlight=False,
    )
