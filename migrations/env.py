"""Alembic environment for fleetops.

fleetops runs migrations itself (``fleetops.store.engine``), passing an open connection in
``config.attributes["connection"]``; running ``alembic`` by hand against a URL works too.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from fleetops.store.tables import metadata

config = context.config


def run_migrations() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("set sqlalchemy.url, or run migrations through `fleetops db upgrade`")
    engine = create_engine(url)
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


run_migrations()
