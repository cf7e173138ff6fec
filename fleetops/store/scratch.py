"""A throw-away database on a PostgreSQL server, for benchmarks: created empty, dropped after."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from fleetops.store.engine import parse_target
from fleetops.store.ident import quoted

__all__ = ["scratch_postgresql_database"]


@contextmanager
def scratch_postgresql_database(server_url: str, prefix: str = "fleetops_scratch") -> Iterator[str]:
    """A new, empty database on the server of ``server_url`` (whose own database is used only to
    connect); yields its URL and drops it (connections included) on the way out."""
    target = parse_target(server_url)
    if not target.is_postgresql:
        raise ValueError(f"not a PostgreSQL URL: {target.where}")
    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = sa.create_engine(target.url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {quoted(name)}")
        try:
            yield target.url.set(drivername="postgresql", database=name).render_as_string(
                hide_password=False
            )
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {quoted(name)} WITH (FORCE)")
    finally:
        admin.dispose()
