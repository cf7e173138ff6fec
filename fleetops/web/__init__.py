"""The dashboard (``fleetops serve``): jobs and their live progress, a job's page with its
report, the JSON of ``jobs list --json`` / ``jobs show --json``, and approvals of the two-person
rule, over the same database as the CLI.

Layout: :mod:`~fleetops.web.cli` the command, :mod:`~fleetops.web.server` the checks and
uvicorn, :mod:`~fleetops.web.app` the ASGI app with its security middlewares,
:mod:`~fleetops.web.routes` the handlers, :mod:`~fleetops.web.auth` tokens and sessions;
``templates/`` and ``static/`` ship in the package (nothing is fetched at run time).

It reads and writes through the façade (:mod:`fleetops.api`) and draws with
:mod:`fleetops.report`; it imports nothing of the store, the engine or the AWS edge. Importing
this package imports nothing else: the CLI loads it only for ``serve``.
"""
