"""The ``fleetops`` command (placeholder until the engine lands)."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False)


@app.callback()
def _root() -> None:
    """Async fleet operations for Amazon WorkSpaces."""


def main() -> None:
    app()
