"""``fleetops serve [--host 127.0.0.1] [--port 8080] [--auth-token-file F]``: the command.

Registered lazily in :data:`fleetops.cli.app.COMMANDS` (as a string), so that nothing of
starlette, uvicorn or jinja2 is imported unless ``serve`` runs. The database is the root
``--db``, else ``$FLEETOPS_DB``, else the default file, as for every other command.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from fleetops.errors import FleetOpsError

__all__ = ["serve"]


def serve(
    ctx: typer.Context,
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on (loopback unless tokens are set).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8080,
    auth_token_file: Annotated[
        Path | None,
        typer.Option(
            "--auth-token-file",
            metavar="FILE",
            help="Tokens, one a line (NAME:TOKEN or bare), mode 0600: every request then needs "
            "one. Required to listen beyond loopback.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """A web dashboard over the job database: jobs, live progress, a job's page, approvals."""
    from fleetops.api import database_target
    from fleetops.web.server import ServeRequest
    from fleetops.web.server import serve as run

    db = database_target(ctx.find_root().params.get("db"))
    try:
        run(ServeRequest(db=db, host=host, port=port, token_file=auth_token_file))
    except FleetOpsError as exc:
        sys.stderr.write(f"error: {exc}\n")
        raise typer.Exit(exc.exit_code) from None
