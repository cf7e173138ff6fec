"""Helpers of the engine's integration tests: job specs against a simulator, item listings."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager
from typing import Any

from aiobotocore.session import get_session

from fleetops.api import JobSpec
from fleetops.aws.client import Connection
from fleetops.catalogue.options import JobOptions
from fleetops.catalogue.targets import Targets
from fleetops.records import ItemRecord
from fleetops.sim import Simulator
from fleetops.store import Store

REGION = "us-east-1"


def spec_for(
    sim: Simulator,
    action: str,
    targets: Targets | None = None,
    params: dict[str, Any] | None = None,
    **options: Any,
) -> JobSpec:
    """A job over ``sim``; no client-side quota unless the test asks for one."""
    options.setdefault("rate", None)
    return JobSpec(
        action=action,
        targets=targets or Targets(),
        connection=Connection(REGION, None, sim.endpoint_url),
        options=JobOptions(**options),
        params=params or {},
    )


async def items_of(store: Store, job_id: str) -> list[ItemRecord]:
    out: list[ItemRecord] = []
    async for page in store.iter_items(job_id):
        out.extend(page)
    return out


def sim_client(sim: Simulator) -> AbstractAsyncContextManager[Any]:
    """A plain aiobotocore client of ``sim``, for tests that act or look behind the engine."""
    return get_session().create_client(
        "workspaces",
        region_name=REGION,
        endpoint_url=sim.endpoint_url,
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )


def isolate_aws_configuration(monkeypatch: Any, tmp_path: Any) -> Iterator[None]:
    """No AWS configuration of the machine running the tests: no profile, keys or endpoints
    from the environment, empty config and credentials files, no instance metadata, and no
    session cached by an earlier test. For an autouse fixture: ``yield from`` it."""
    from fleetops.aws.client import _cached_session, _sim_session

    for name in (
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_STS",
        "AWS_ENDPOINT_URL_WORKSPACES",
        "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    _cached_session.cache_clear()  # a cached session remembers credentials from another test
    _sim_session.cache_clear()
    yield
    _cached_session.cache_clear()
    _sim_session.cache_clear()


async def largest_bundle(sim: Simulator, owner: str) -> tuple[str, str, str, list[str]]:
    """The simulator's bundle of ``owner`` with the most WorkSpaces: its id, its image, the newer
    image the simulator keeps for it (``<name>-v2``), and its WorkSpaces."""
    async with sim_client(sim) as client:
        bundles = (await client.describe_workspace_bundles(Owner=owner))["Bundles"]
        images = (await client.describe_workspace_images())["Images"]
    by_bundle: dict[str, list[str]] = {}
    for ws_id in sim.workspace_ids():
        ws = sim.workspace(ws_id)
        assert ws is not None
        by_bundle.setdefault(ws["BundleId"], []).append(ws_id)
    bundle = max(bundles, key=lambda b: len(by_bundle.get(b["BundleId"], [])))
    name = next(i["Name"] for i in images if i["ImageId"] == bundle["ImageId"])
    new = next(i["ImageId"] for i in images if i["Name"] == f"{name}-v2")
    return bundle["BundleId"], bundle["ImageId"], new, by_bundle[bundle["BundleId"]]
