"""Orchestration: a job planned, submitted, verified and reconciled.

``runner`` runs a job over its scopes (``scope``: one account in one region), ``planner`` turns
selectors into items, ``calls`` makes a scope's recorded, guarded calls, ``verify`` proves each
WorkSpace reached its end state, ``commit`` is the one commit path, ``decide`` the pure decisions
(retry, circuit breaker, error budget), ``locks`` WorkSpaces held across jobs, ``quota`` the quota
shared with the other runners of a database, ``clients`` a job's clients per scope, ``context``
and ``types`` what the orchestrators share. It reaches AWS through :mod:`fleetops.aws` and the
database through :mod:`fleetops.store`; nothing is imported here.
"""
