"""The psycopg-only reader of a PostgreSQL store answers as the Store does, and only for a
database at this fleetops's schema."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from fleetops.errors import NotFoundError
from fleetops.records import NewJob
from fleetops.states import ItemState
from fleetops.store import Store
from fleetops.store.engine import SCHEMA_HEAD, parse_target
from fleetops.store.pgreader import conninfo, open_reader


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://ops@db:5432/fleet", "postgresql://ops@db:5432/fleet"),
        ("postgres://ops@db/fleet", "postgresql://ops@db/fleet"),
        ("postgresql+asyncpg://ops:pw@db/fleet?sslmode=require",
         "postgresql://ops:pw@db/fleet?sslmode=require"),
        ("postgresql+psycopg://ops@db/fleet", "postgresql://ops@db/fleet"),
        ("sqlite:///x.db", None),
        ("x.db", None),
        ("mysql://ops@db/fleet", None),
        ("postgresql+pg8000://ops@db/fleet", None),
    ],
)  # fmt: skip
def test_conninfo(given: str, expected: str | None) -> None:
    assert conninfo(given) == expected


async def seed(store: Store) -> None:
    for n, who in enumerate(("alice", "bob", "alice", "carol")):
        job = await store.create_job(
            NewJob(action="reboot" if n % 2 else "stop", params={"n": n}, targets={},
                   options={}, region="eu-west-1", id=f"jx{n}_", started_by=who,
                   accounts=["111122223333"] if n == 3 else None)
        )  # fmt: skip
        await store.update_job(job.id, created_at=1000.0 + n)
        await store.add_items(
            [
                {"job_id": job.id, "workspace_id": f"ws-{n}-{i}", "region": "eu-west-1",
                 "state": (ItemState.FAILED if i % 3 == 0 else ItemState.SUCCEEDED).value,
                 "error_code": "X" if i % 3 == 0 else None, "updated_at": 1.0 + i,
                 "account": "111122223333" if n == 3 else None}
                for i in range(7)
            ]
        )  # fmt: skip


async def test_the_reader_answers_as_the_store(postgres_db: str) -> None:
    store = await Store.open(postgres_db)
    filters: list[dict[str, Any]] = [
        {},
        {"started_by": "alice"},
        {"action": "stop", "limit": 1},
        {"since": 1001.5},
        {"status": "planned", "started_by": "carol"},
    ]
    try:
        await seed(store)
        reader = open_reader(postgres_db, SCHEMA_HEAD)
        assert reader is not None
        with reader:
            for chosen in filters:
                assert reader.list_jobs(**chosen) == await store.list_jobs(**chosen)
            ids = ["jx0_", "jx3_", "missing"]
            assert reader.counts_for(ids) == await store.counts_for(ids)
            assert reader.counts("jx1_") == await store.counts("jx1_")
            assert reader.get_job("jx2") == await store.get_job("jx2_")  # a unique prefix
            with pytest.raises(NotFoundError, match="ambiguous"):
                reader.get_job("jx")
            with pytest.raises(NotFoundError, match="no job"):
                reader.get_job("jx_")  # '_' is no wildcard
            failed = [ItemState.FAILED]
            assert reader.items_page("jx3_", states=failed) == await store.items_page(
                "jx3_", states=failed
            )
            pages = [page for page in reader.iter_items("jx3_", page=3)]
            assert [len(p) for p in pages] == [3, 3, 1]
            assert [i for p in pages for i in p] == await store.items_page("jx3_")
    finally:
        await store.close()


async def test_no_reader_unless_at_this_schema(postgres_db: str) -> None:
    assert open_reader(postgres_db, SCHEMA_HEAD) is None  # no schema yet
    store = await Store.open(postgres_db)
    await store.close()
    reader = open_reader(postgres_db, SCHEMA_HEAD)
    assert reader is not None
    reader.close()
    assert open_reader(postgres_db, "0002") is None  # this fleetops would migrate it first
    target = parse_target(postgres_db)
    engine = sa.create_engine(target.url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    assert open_reader(postgres_db, SCHEMA_HEAD) is None  # newer: the Store refuses it


def test_no_reader_without_a_server(postgres_url: str) -> None:
    url = sa.make_url(postgres_url).set(host="127.0.0.1", port=1)
    assert open_reader(url.render_as_string(hide_password=False), SCHEMA_HEAD) is None
