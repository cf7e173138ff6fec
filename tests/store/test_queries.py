"""The history's queries are written once (fleetops/store/queries.py) and each runner converts
their parameters mechanically: lists spread one placeholder per element, ``:name`` to psycopg's
``%(name)s``, quoted literals and ``::`` casts left alone."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from fleetops.store import queries
from fleetops.store.queries import Query, expand, pyformat

STORE = Path(queries.__file__).parent


def test_lists_are_spread_and_an_empty_one_matches_nothing() -> None:
    query = Query("q", "SELECT 1 WHERE a IN :ids AND b = :b", lists=("ids",))
    assert expand(query, {"ids": ["x", "y"], "b": 2}) == (
        "SELECT 1 WHERE a IN (:ids_0, :ids_1) AND b = :b",
        {"ids_0": "x", "ids_1": "y", "b": 2},
    )
    sql, params = expand(query, {"ids": [], "b": 2})
    assert sql == "SELECT 1 WHERE a IN (NULL) AND b = :b" and params == {"b": 2}
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (a TEXT, b INTEGER)")
    conn.execute("INSERT INTO t VALUES ('x', 2)")
    sql = "SELECT count(*) FROM t WHERE a IN :ids AND b = :b"
    for ids, found in ((["x", "z"], 1), ([], 0)):
        text, values = expand(Query("q", sql, lists=("ids",)), {"ids": ids, "b": 2})
        assert conn.execute(text, values).fetchone() == (found,)


def test_psycopg_style_leaves_literals_and_casts_alone() -> None:
    sql = "SELECT ':not_a_param', a::text, '100%' FROM t WHERE id = :id AND x LIKE :p"
    assert pyformat(sql) == (
        "SELECT ':not_a_param', a::text, '100%%' FROM t WHERE id = %(id)s AND x LIKE %(p)s"
    )


def test_every_variant_names_only_the_filters_asked_for() -> None:
    assert "WHERE" not in queries.list_jobs().sql
    both = queries.list_jobs(frozenset({"status", "since"})).sql
    assert "status = :status" in both and "created_at >= :since" in both
    assert "action" not in both.partition("ORDER BY")[0]
    page = queries.items_page(states=True).sql
    assert "state IN :states" in page and "region" not in page
    assert queries.items_page(states=True).lists == ("states",)


def test_no_other_module_of_the_history_writes_a_select() -> None:
    readers = ["history.py", "history_read.py", "reads.py", "readonly.py", "pgreader.py"]
    for name in [*readers, "reader_base.py"]:
        text = (STORE / name).read_text()
        assert not re.search(r"\bSELECT\s+(\*|\w+\s*(,|FROM))", text), name
