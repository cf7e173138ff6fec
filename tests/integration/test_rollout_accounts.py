"""``rollout`` over two accounts of one region, by assumed role, against the simulator (real
HTTP, real SQLite): each account's own bundle pointed at its own new image once, before its
rebuilds, every WorkSpace of that bundle rebuilt once, and the caller's own fleet untouched."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from engine_support import isolate_aws_configuration

from fleetops.api import (
    JobSpec,
    check_rollout,
    create_job,
    job_document,
    open_clients,
    read_history,
    run_job,
)
from fleetops.aws.client import Connection
from fleetops.catalogue.accounts import AssumeSpec
from fleetops.catalogue.options import JobOptions
from fleetops.catalogue.targets import Targets
from fleetops.errors import UsageError
from fleetops.sim import Simulator
from fleetops.states import JobStatus
from fleetops.store import Store

ACCOUNTS = ("111111111111", "222222222222")
REGION = "us-east-1"
SPEC = AssumeSpec(role_name="FleetOps", external_id="fleet-ext")


@pytest.fixture(autouse=True)
def no_aws_configuration(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    yield from isolate_aws_configuration(monkeypatch, tmp_path)


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(
        workspaces=30,
        seed=3,
        region=REGION,
        rate=None,
        transition_seconds=0.3,
        accounts=ACCOUNTS,
        connected_fraction=0.0,
        stale_snapshot_fraction=0.0,
    ) as running:
        for account in ACCOUNTS:
            running.configure_account(account, external_id="fleet-ext")
            for ws_id in running.workspace_ids(account):
                running.set_state(ws_id, "AVAILABLE", account)
        yield running


def _spec(sim: Simulator, params: dict[str, Any]) -> JobSpec:
    return JobSpec(
        action="rollout",
        targets=Targets(),
        connection=Connection(REGION, None, sim.endpoint_url),
        options=JobOptions(rate=None, ignore_snapshot_age=True),
        params=params,
        accounts=ACCOUNTS,
        assume=SPEC,
    )


async def _bundles(sim: Simulator) -> dict[str, tuple[str, str, str]]:
    """Each account's scope → (its busiest bundle, that bundle's image, the newer image)."""
    out: dict[str, tuple[str, str, str]] = {}
    async with open_clients(
        [Connection(REGION, None, sim.endpoint_url)],
        JobOptions(rate=None),
        accounts=ACCOUNTS,
        assume=SPEC.as_dict(),
    ) as clients:
        for account in ACCOUNTS:
            client = clients[f"{account}/{REGION}"]
            bundles = (await client.call("DescribeWorkspaceBundles")).response["Bundles"]
            images = (await client.call("DescribeWorkspaceImages")).response["Images"]
            members: dict[str, int] = {}
            for ws_id in sim.workspace_ids(account):
                ws = sim.workspace(ws_id, account)
                assert ws is not None
                members[ws["BundleId"]] = members.get(ws["BundleId"], 0) + 1
            bundle = max(bundles, key=lambda b: members.get(b["BundleId"], 0))
            name = next(i["Name"] for i in images if i["ImageId"] == bundle["ImageId"])
            new = next(i["ImageId"] for i in images if i["Name"] == f"{name}-v2")
            out[f"{account}/{REGION}"] = (bundle["BundleId"], bundle["ImageId"], new)
    return out


async def test_each_account_rolls_its_own_bundle_out(
    sim: Simulator, store: Store, db_path: Any
) -> None:
    scopes = await _bundles(sim)
    params = {
        "bundle": {scope: ids[0] for scope, ids in scopes.items()},
        "image": {scope: ids[2] for scope, ids in scopes.items()},
    }
    # A scope of the caller's own account is not one this job targets.
    with pytest.raises(UsageError, match=f"does not target 333333333333/{REGION}"):
        await check_rollout(
            _spec(sim, {**params, "image": {f"333333333333/{REGION}": "wsi-000000000"}})
        )
    await check_rollout(_spec(sim, params))
    sim.reset_stats()
    job = await run_job(store, (await create_job(store, _spec(sim, params))).id)

    assert job.status is JobStatus.SUCCEEDED, job.message
    for account in ACCOUNTS:
        bundle, _, _ = scopes[f"{account}/{REGION}"]
        stats = sim.stats(account)
        assert stats.calls_by_operation["UpdateWorkspaceBundle"] == 1
        members = [
            w
            for w in sim.workspace_ids(account)
            if (sim.workspace(w, account) or {}).get("BundleId") == bundle
        ]
        assert stats.calls_by_workspace["RebuildWorkspaces"] == dict.fromkeys(members, 1)
        assert max(stats.call_times["UpdateWorkspaceBundle"]) < min(
            stats.call_times["RebuildWorkspaces"]
        )
    own = sim.stats().calls_by_operation
    assert "UpdateWorkspaceBundle" not in own and "RebuildWorkspaces" not in own
    with read_history(str(db_path)) as reader:
        shown = job_document(reader, job.id)["rollout"]
    assert [(s["account"], s["region"], s["old_image_id"]) for s in shown["scopes"]] == [
        (account, REGION, scopes[f"{account}/{REGION}"][1]) for account in ACCOUNTS
    ]
