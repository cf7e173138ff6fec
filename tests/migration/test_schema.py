"""The schema made by the alembic migrations is the schema the code declares."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from fleetops.store import Store
from fleetops.store.engine import SCHEMA_HEAD, migrations_dir, parse_target
from fleetops.store.tables import metadata


def test_schema_head_constant_matches_the_scripts() -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    assert ScriptDirectory.from_config(cfg).get_current_head() == SCHEMA_HEAD


def sync_engine(db_url: str) -> sa.Engine:
    target = parse_target(db_url)
    driver = "postgresql+psycopg" if target.is_postgresql else "sqlite"
    return sa.create_engine(target.url.set(drivername=driver))


async def test_migrated_schema_matches_the_models(db_url: str) -> None:
    """On SQLite and on PostgreSQL: same columns, types, nullability, indexes, keys."""
    store = await Store.open(db_url)
    await store.close()
    engine = sync_engine(db_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    engine.dispose()
    assert diff == []


async def test_each_revision_upgrades_with_data_in_place(db_url: str) -> None:
    """0001 → head one step at a time with a job and an item already there, then down to 0002
    and up again (the downgrade scripts work too)."""
    from alembic import command

    engine = sync_engine(db_url)
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0001")
            conn.execute(
                sa.text(
                    "INSERT INTO jobs (id, action, status, params, targets, options, region, "
                    "created_at) VALUES ('j1', 'reboot', 'failed', '{}', '{}', '{}', "
                    "'eu-west-1', 1.0)"
                )
            )
            conn.execute(
                sa.text(
                    "INSERT INTO items (job_id, workspace_id, region, state, updated_at) "
                    "VALUES ('j1', 'ws-1', 'eu-west-1', 'failed', 1.0)"
                )
            )
            command.upgrade(cfg, "0002")
            command.upgrade(cfg, SCHEMA_HEAD)
            command.downgrade(cfg, "0002")
            command.upgrade(cfg, SCHEMA_HEAD)
            cfg.attributes.pop("connection")
    finally:
        engine.dispose()
    store = await Store.open(db_url)
    try:
        job = await store.get_job("j1")
        items = await store.items_page("j1")
        # a new item gets a fresh id after the rows written by hand
        await store.add_items(
            [
                {
                    "job_id": "j1",
                    "workspace_id": "ws-2",
                    "region": "eu-west-1",
                    "state": "pending",
                    "updated_at": 2.0,
                }
            ]
        )
        more = await store.items_page("j1")
    finally:
        await store.close()
    assert job.regions == ("eu-west-1",) and job.started_by is None
    assert [i.workspace_id for i in items] == ["ws-1"] and items[0].account is None
    assert len({i.id for i in more}) == 2


async def test_open_is_idempotent_and_keeps_data(tmp_path: Path) -> None:
    from fleetops.records import NewJob

    path = tmp_path / "m.db"
    store = await Store.open(path)
    job = await store.create_job(
        NewJob(action="reboot", params={}, targets={}, options={}, region="us-east-1")
    )
    await store.close()
    store = await Store.open(path)
    assert (await store.get_job(job.id)).action == "reboot"
    await store.close()
    assert oct(path.stat().st_mode & 0o777) == "0o600"


async def test_upgrade_from_the_first_schema_keeps_jobs(tmp_path: Path) -> None:
    from alembic import command

    path = tmp_path / "old.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
        conn.execute(
            sa.text(
                "INSERT INTO jobs (id, action, status, params, targets, options, region, "
                "created_at) VALUES ('j1', 'reboot', 'succeeded', '{}', '{}', '{}', "
                "'eu-west-1', 1.0)"
            )
        )
    engine.dispose()
    store = await Store.open(path)
    job = await store.get_job("j1")
    await store.close()
    assert job.regions == ("eu-west-1",)


async def test_upgrade_to_team_columns_keeps_jobs_and_records_who_started(tmp_path: Path) -> None:
    import getpass
    import socket

    from alembic import command

    from fleetops.records import NewJob

    path = tmp_path / "v2.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0002")
        conn.execute(
            sa.text(
                "INSERT INTO jobs (id, action, status, params, targets, options, region, "
                "created_at) VALUES ('j2', 'reboot', 'succeeded', '{}', '{}', '{}', "
                "'eu-west-1', 1.0)"
            )
        )
    engine.dispose()
    store = await Store.open(path)
    old = await store.get_job("j2")
    assert (old.started_by, old.started_host, old.caller_arn, old.accounts, old.assume) == (
        None,
        None,
        None,
        None,
        None,
    )
    new = await store.create_job(
        NewJob(
            action="reboot",
            params={},
            targets={},
            options={},
            region="us-east-1",
            accounts=["111122223333"],
            assume={"role_name": "FleetOps", "external_id": None},
        )
    )
    await store.add_items(
        [
            {
                "job_id": new.id,
                "workspace_id": "ws-1",
                "region": "us-east-1",
                "state": "pending",
                "updated_at": 1.0,
                "account": "111122223333",
            }
        ]
    )
    await store.update_job(new.id, caller_arn="arn:aws:iam::111122223333:user/alice")
    job = await store.get_job(new.id)
    item = (await store.items_page(new.id))[0]
    await store.close()
    assert job.started_by == getpass.getuser() and job.started_host == socket.gethostname()
    assert job.caller_arn == "arn:aws:iam::111122223333:user/alice"
    assert job.accounts == ("111122223333",) and job.assume == {
        "role_name": "FleetOps",
        "external_id": None,
    }
    assert item.account == "111122223333"
