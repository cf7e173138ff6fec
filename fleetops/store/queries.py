"""Every read query of the history (and the schema revision the readers check), written once,
as SQL text with ``:name`` parameters.

Three runners execute these same texts: the Store through ``sqlalchemy.text()`` (SQLite and
PostgreSQL), the standard library's ``sqlite3`` and psycopg (the readers of the history commands,
which must start without SQLAlchemy). Each runner converts the parameters mechanically, in one
place here: ``sqlite3`` takes ``:name`` as written, psycopg takes ``%(name)s``, and a parameter
that carries a list (``IN :job_ids``) is expanded to one placeholder per element, as SQLAlchemy's
expanding parameters do.

Invariants: a text names its values through parameters (the item states a query always filters
on are written as literals, from :mod:`fleetops.states`, never typed by hand); a query whose
filters are optional is built by one function that writes only the conditions asked for, so the
database plans each variant as if it were written out (every query here is bounded by the
(job_id, state) index on items, the (job_id, at) index on events, or the primary keys). No
database library is imported here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from fleetops.records import NO_CODE
from fleetops.states import UNVERIFIED, ItemState

__all__ = [
    "ERROR_GROUPS",
    "JOBS_BY_PREFIX",
    "JOB_BY_ID",
    "OPERATION_STATS",
    "REASON_GROUPS",
    "SCHEMA_VERSION",
    "SCOPE_SUMMARIES",
    "STEPS_OF_ITEMS",
    "STEP_COUNTS",
    "UNVERIFIED_COUNTS",
    "UNVERIFIED_ITEMS",
    "Query",
    "counts",
    "expand",
    "items_page",
    "list_jobs",
    "pyformat",
]

_FAILED = ItemState.FAILED.value
_SUCCEEDED = ItemState.SUCCEEDED.value


@dataclass(frozen=True)
class Query:
    """One SQL text; ``lists`` names its parameters that carry a sequence (``IN :name``)."""

    name: str
    sql: str
    lists: tuple[str, ...] = ()


#: The schema's alembic revision (one row; the table is missing where nothing was migrated).
SCHEMA_VERSION = Query("schema_version", "SELECT version_num FROM alembic_version")

# -- jobs ---------------------------------------------------------------------------------------

JOB_BY_ID = Query("job_by_id", "SELECT * FROM jobs WHERE id = :id")

#: ``prefix``: the id's start, its LIKE wildcards escaped with a backslash, then ``%``.
JOBS_BY_PREFIX = Query(
    "jobs_by_prefix", "SELECT * FROM jobs WHERE id LIKE :prefix ESCAPE '\\' LIMIT 2"
)

#: The filters of :func:`list_jobs`: parameter → its condition.
_JOB_FILTERS = {
    "started_by": "started_by = :started_by",
    "status": "status = :status",
    "action": "action = :action",
    "since": "created_at >= :since",
}


@cache
def list_jobs(filters: frozenset[str] = frozenset()) -> Query:
    """The newest jobs first (``:limit`` of them), with the conditions of ``filters`` (names
    among ``started_by``, ``status``, ``action``, ``since``)."""
    where = [condition for name, condition in _JOB_FILTERS.items() if name in filters]
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    return Query(
        "list_jobs",
        f"SELECT * FROM jobs{clause} ORDER BY created_at DESC, id DESC LIMIT :limit",
    )


# -- items --------------------------------------------------------------------------------------


@cache
def counts(*, region: bool = False) -> Query:
    """Items by job and state for the jobs ``:job_ids`` (only those of ``:region`` with
    ``region``)."""
    in_region = " AND region = :region" if region else ""
    return Query(
        "counts",
        "SELECT job_id, state, count(*) AS n FROM items"
        f" WHERE job_id IN :job_ids{in_region} GROUP BY job_id, state",
        lists=("job_ids",),
    )


@cache
def items_page(*, states: bool = False, region: bool = False) -> Query:
    """One page of a job's items in id order: ``:limit`` items after ``:after_id`` (keyset
    pagination), only those in ``:states`` and of ``:region`` when asked."""
    conditions = ["job_id = :job_id", "id > :after_id"]
    if region:
        conditions.append("region = :region")
    if states:
        conditions.append("state IN :states")
    return Query(
        "items_page",
        f"SELECT * FROM items WHERE {' AND '.join(conditions)} ORDER BY id LIMIT :limit",
        lists=("states",) if states else (),
    )


# -- what a job's history tells -----------------------------------------------------------------

#: Failed items by error code: one row per example (at most ``:examples`` per code), each
#: carrying its code's count; only the job's failed items are read.
ERROR_GROUPS = Query(
    "error_groups",
    f"""
SELECT code, n, workspace_id, error_message FROM (
    SELECT coalesce(error_code, '{NO_CODE}') AS code, workspace_id, error_message,
        row_number() OVER (PARTITION BY coalesce(error_code, '{NO_CODE}') ORDER BY id) AS pos,
        count(*) OVER (PARTITION BY coalesce(error_code, '{NO_CODE}')) AS n
    FROM items WHERE job_id = :job_id AND state = '{_FAILED}'
) AS ranked WHERE pos <= :examples ORDER BY n DESC, code, pos
""",
)

#: Items by account, region and state, the failed ones by error code too (one aggregate).
SCOPE_SUMMARIES = Query(
    "scope_summaries",
    f"""
SELECT account, region, state, code, count(*) AS n FROM (
    SELECT account, region, state,
        CASE WHEN state = '{_FAILED}' THEN coalesce(error_code, '{NO_CODE}') ELSE NULL END
            AS code
    FROM items WHERE job_id = :job_id
) AS scoped GROUP BY account, region, state, code
""",
)

#: Why items ended in ``:state``, most frequent reason first (``:limit`` reasons).
REASON_GROUPS = Query(
    "reason_groups",
    """
SELECT coalesce(reason, '(no reason)') AS reason, count(*) AS n FROM items
WHERE job_id = :job_id AND state = :state GROUP BY coalesce(reason, '(no reason)')
ORDER BY n DESC, coalesce(reason, '(no reason)') LIMIT :limit
""",
)

#: Succeeded items never verified: the first ``:examples``, each carrying the count.
UNVERIFIED_ITEMS = Query(
    "unverified_items",
    f"""
SELECT count(*) OVER () AS n, workspace_id, error_message FROM items
WHERE job_id = :job_id AND state = '{_SUCCEEDED}' AND error_code = '{UNVERIFIED}'
ORDER BY id LIMIT :examples
""",
)

#: How many succeeded items of each of the jobs ``:job_ids`` were never verified.
UNVERIFIED_COUNTS = Query(
    "unverified_counts",
    f"""
SELECT job_id, count(*) AS n FROM items
WHERE job_id IN :job_ids AND state = '{_SUCCEEDED}' AND error_code = '{UNVERIFIED}'
GROUP BY job_id
""",
    lists=("job_ids",),
)

#: The API calls of a job per operation, most frequent first (retries are the attempts beyond
#: the first: a CASE, since SQLite's two-argument max() is not portable).
OPERATION_STATS = Query(
    "operation_stats",
    """
SELECT operation, count(*) AS calls, coalesce(sum(attempts), 0) AS attempts,
    coalesce(sum(CASE WHEN attempts > 1 THEN attempts - 1 ELSE 0 END), 0) AS retries,
    coalesce(sum(CASE WHEN outcome = 'error' THEN 1 ELSE 0 END), 0) AS errors,
    coalesce(sum(CASE WHEN outcome = 'partial' THEN 1 ELSE 0 END), 0) AS partial,
    coalesce(sum(duration_ms), 0) AS duration_ms
FROM events WHERE job_id = :job_id GROUP BY operation ORDER BY calls DESC, operation
""",
)


# -- parameter styles ---------------------------------------------------------------------------

#: A quoted literal (left as it is), or a ``:name`` parameter (not a ``::`` cast).
_TOKEN = re.compile(r"'(?:[^']|'')*'|(?<![:\w]):([A-Za-z_]\w*)")


def _substitute(sql: str, placeholder: Any) -> str:
    return _TOKEN.sub(lambda m: placeholder(m.group(1)) if m.group(1) else m.group(0), sql)


def expand(query: Query, params: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The text and parameters with each list parameter spread into one ``:name_N`` each, in
    parentheses (an empty list matches nothing, as SQLAlchemy's empty IN does)."""
    if not query.lists:
        return query.sql, dict(params)
    values = {k: v for k, v in params.items() if k not in query.lists}
    spread: dict[str, str] = {}
    for name in query.lists:
        items: Sequence[Any] = list(params[name])
        values.update({f"{name}_{n}": item for n, item in enumerate(items)})
        marks = ", ".join(f":{name}_{n}" for n in range(len(items)))
        spread[name] = f"({marks or 'NULL'})"
    sql = _substitute(query.sql, lambda name: spread.get(name, f":{name}"))
    return sql, values


@cache
def pyformat(sql: str) -> str:
    """``:name`` → psycopg's ``%(name)s`` (and a literal ``%`` doubled)."""
    return _substitute(sql.replace("%", "%%"), lambda name: f"%({name})s")


# -- the steps of a recipe's items ----------------------------------------------------------------

#: A job's steps of the items whose ids lie between ``low`` and ``high``, by item and rung.
STEPS_OF_ITEMS = Query(
    "steps_of_items",
    "SELECT item_id, job_id, rung, action, outcome, attempts, started_at, finished_at,"
    " error_code, error_message, reason, last_state FROM item_steps"
    " WHERE job_id = :job_id AND item_id BETWEEN :low AND :high ORDER BY item_id, rung",
)
#: Each step by action and outcome (an open step: its item's live state), in ladder order.
STEP_COUNTS = Query(
    "step_counts",
    "SELECT s.action AS action, COALESCE(s.outcome, i.state) AS outcome,"
    " MIN(s.rung) AS rung, COUNT(*) AS n"
    " FROM item_steps s JOIN items i ON i.id = s.item_id WHERE s.job_id = :job_id"
    " GROUP BY s.action, COALESCE(s.outcome, i.state) ORDER BY MIN(s.rung), s.action",
)

