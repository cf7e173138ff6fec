"""The ``fleetops`` command: a typer shell that parses, calls :mod:`fleetops.api`, and renders.

``main`` is the console script (``jobs list``/``show`` answered before typer loads), ``app`` the
typer app (each subcommand imported when it runs), then one module per command family. The CLI
imports the façade, the report, the catalogue's flag declarations and the base's records: never
the store, the engine or the AWS edge. Nothing is imported here.
"""
