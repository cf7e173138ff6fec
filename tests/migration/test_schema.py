"""The schema made by the alembic migrations is the schema the code declares."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from fleetops.store import Store
from fleetops.store.engine import SCHEMA_HEAD, migrations_dir
from fleetops.store.tables import metadata


def test_schema_head_constant_matches_the_scripts() -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    assert ScriptDirectory.from_config(cfg).get_current_head() == SCHEMA_HEAD


async def test_migrated_schema_matches_the_models(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    store = await Store.open(path)
    await store.close()
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    engine.dispose()
    assert diff == []


async def test_open_is_idempotent_and_keeps_data(tmp_path: Path) -> None:
    from fleetops.store import NewJob

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

    from fleetops.store import NewJob

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
