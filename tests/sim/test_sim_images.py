"""Images and bundles through the real client: DescribeWorkspaceImages, a bundle's ImageId,
UpdateWorkspaceBundle and its errors; the healing knobs of UNHEALTHY WorkSpaces and the
rebuild fault knob."""

from __future__ import annotations

import asyncio
from typing import Any

import botocore.exceptions
import pytest

from fleetops.sim import Simulator
from fleetops.sim._health import heals

OWNER = "123456789012"


async def _bundles(client: Any) -> dict[str, str]:
    answer = await client.describe_workspace_bundles(Owner=OWNER)
    return {b["BundleId"]: b["ImageId"] for b in answer["Bundles"]}


async def _images(client: Any, **params: Any) -> list[dict[str, Any]]:
    images: list[dict[str, Any]] = []
    while True:
        answer = await client.describe_workspace_images(**params)
        images.extend(answer["Images"])
        if "NextToken" not in answer:
            return images
        params["NextToken"] = answer["NextToken"]


async def test_every_bundle_image_is_an_available_image(client: Any) -> None:
    bundles = await _bundles(client)
    found = await _images(client, ImageIds=list(bundles.values()))
    assert {i["ImageId"] for i in found} == set(bundles.values())
    assert {i["State"] for i in found} == {"AVAILABLE"}
    every = await _images(client, MaxResults=2)
    states = sorted(i["State"] for i in every)
    assert states.count("PENDING") == 1 and states.count("ERROR") == 1
    assert len(every) == 2 * len(bundles) + 2  # each bundle's image, its -v2, two more
    missing = await client.describe_workspace_images(ImageIds=["wsi-000000000"])
    assert missing["Images"] == []


async def test_update_bundle_points_it_at_the_new_image_and_leaves_workspaces_alone(
    client: Any, sim: Simulator
) -> None:
    bundles = await _bundles(client)
    bundle_id, old = sorted(bundles.items())[0]
    images = await _images(client)
    name = next(i["Name"] for i in images if i["ImageId"] == old)
    new = next(i["ImageId"] for i in images if i["Name"] == f"{name}-v2")
    on_bundle = await client.describe_workspaces(BundleId=bundle_id, Limit=25)
    before = {ws["WorkspaceId"]: ws["State"] for ws in on_bundle["Workspaces"]}

    assert await client.update_workspace_bundle(BundleId=bundle_id, ImageId=new)
    assert (await _bundles(client))[bundle_id] == new
    after = await client.describe_workspaces(WorkspaceIds=list(before)[:25])
    assert {ws["WorkspaceId"]: ws["State"] for ws in after["Workspaces"]} == before
    await client.update_workspace_bundle(BundleId=bundle_id, ImageId=old)  # a rollback
    assert (await _bundles(client))[bundle_id] == old


@pytest.mark.parametrize(
    ("which", "code"),
    [
        ("pending", "ResourceUnavailableException"),
        ("broken", "ResourceUnavailableException"),
        ("unknown image", "ResourceNotFoundException"),
        ("unknown bundle", "ResourceNotFoundException"),
        ("no image", "InvalidParameterValuesException"),
        ("bad pattern", "ValidationException"),
    ],
)
async def test_update_bundle_refuses_with_the_documented_codes(
    client: Any, which: str, code: str
) -> None:
    bundle_id, old = sorted((await _bundles(client)).items())[0]
    images = {i["State"]: i["ImageId"] for i in await _images(client)}
    params = {
        "pending": {"BundleId": bundle_id, "ImageId": images["PENDING"]},
        "broken": {"BundleId": bundle_id, "ImageId": images["ERROR"]},
        "unknown image": {"BundleId": bundle_id, "ImageId": "wsi-000000000"},
        "unknown bundle": {"BundleId": "wsb-000000000", "ImageId": old},
        "no image": {"BundleId": bundle_id},
        "bad pattern": {"BundleId": bundle_id, "ImageId": "ami-12345678"},
    }[which]
    with pytest.raises(botocore.exceptions.ClientError) as info:
        await client.update_workspace_bundle(**params)
    assert info.value.response["Error"]["Code"] == code
    assert (await _bundles(client))[bundle_id] == old


async def test_unhealthy_workspaces_heal_by_the_knob_and_rebuilds_can_fail(
    client: Any, sim: Simulator
) -> None:
    sim.configure(reboot_heal_fraction=0.5, rebuild_error_fraction=1.0)
    ids = sim.workspace_ids()[:20]
    for ws_id in ids:
        sim.set_state(ws_id, "UNHEALTHY")
    answer = await client.reboot_workspaces(
        RebootWorkspaceRequests=[{"WorkspaceId": i} for i in ids]
    )
    assert answer["FailedRequests"] == []
    await asyncio.sleep(0.3)
    states = {
        w["WorkspaceId"]: w["State"]
        for w in (await client.describe_workspaces(WorkspaceIds=ids))["Workspaces"]
    }
    healed = {i for i in ids if heals(0, i, "RebootWorkspaces", 0.5)}
    assert 0 < len(healed) < len(ids)
    assert states == {i: "AVAILABLE" if i in healed else "UNHEALTHY" for i in ids}
    await client.rebuild_workspaces(RebuildWorkspaceRequests=[{"WorkspaceId": ids[0]}])
    await asyncio.sleep(0.3)
    ws = (await client.describe_workspaces(WorkspaceIds=[ids[0]]))["Workspaces"][0]
    assert ws["State"] == "ERROR"
