"""The job queue on a shared PostgreSQL store (procrastinate): ``tasks`` (the app, its one
task, and putting a stored plan on the queue) and ``worker`` (``fleetops worker``: claim, run,
drain on SIGTERM). Nothing is imported here.
"""
