"""``fleetops db …``: the job database."""

from __future__ import annotations

import typer

from fleetops.cli_common import err_console, resolve_db, run_async

__all__ = ["db_app"]

db_app = typer.Typer(no_args_is_help=True, add_completion=False, help="The job database.")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create the database or bring its schema up to date."""
    from fleetops.store import Store

    async def go() -> None:
        store = await Store.open(resolve_db())
        await store.close()

    run_async(go)
    err_console.print(f"database {resolve_db()} is up to date", highlight=False)
