"""The simulated images and what a bundle's image means: DescribeWorkspaceImages and
UpdateWorkspaceBundle.

Every generated bundle's ``ImageId`` is an image here, AVAILABLE; each bundle also has a newer
image ready to roll out (``<bundle name>-v2``, AVAILABLE), and the account holds one image
still being created (PENDING) and one that failed (ERROR). Images come from their own random
stream (``seed + 3``): adding them changes none of the generated WorkSpaces.

UpdateWorkspaceBundle points a bundle at another image, as AWS does: existing WorkSpaces are
not touched (a rebuild takes the bundle's image of the moment). Its errors, from the API
reference: an unknown bundle or image ``ResourceNotFoundException``; an image that is not
AVAILABLE ``ResourceUnavailableException``; a bundle this account does not own (an AMAZON
one) ``OperationNotSupportedException``; a request without both ids
``InvalidParameterValuesException`` (botocore's model requires neither).

Pure and synchronous, like the fleet.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from fleetops.sim._validate import ApiError

__all__ = ["Images"]

_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"
_PAGE = 25  # DescribeWorkspaceImages MaxResults at most (botocore's model)


class Images:
    """The account's images, and the bundle updates that use them."""

    def __init__(self, seed: int, bundles: Sequence[dict[str, Any]], owner: str, now: float):
        self._gen = random.Random(seed + 3)
        self.owner = owner
        self.by_id: dict[str, dict[str, Any]] = {}
        for index, bundle in enumerate(bundles):
            name = str(bundle["Name"])
            self._add(str(bundle["ImageId"]), name, "AVAILABLE", now - 86400 * (30 + index))
            self._add(self._new_id(), f"{name}-v2", "AVAILABLE", now - 3600 * (2 + index))
        self._add(self._new_id(), "fleet-next-pending", "PENDING", now - 600)
        self._add(self._new_id(), "fleet-broken", "ERROR", now - 7200)

    def _new_id(self) -> str:
        return "wsi-" + "".join(self._gen.choice(_B36) for _ in range(9))

    def _add(self, image_id: str, name: str, state: str, created: float) -> None:
        image: dict[str, Any] = {
            "ImageId": image_id,
            "Name": name,
            "Description": f"Image {name}",
            "OperatingSystem": {"Type": "WINDOWS"},
            "State": state,
            "RequiredTenancy": "DEFAULT",
            "Created": created,
            "OwnerAccountId": self.owner,
        }
        if state == "ERROR":
            image.update(ErrorCode="ImageCreationFailed", ErrorMessage="The image failed.")
        self.by_id[image_id] = image

    def with_state(self, state: str) -> list[str]:
        """The ids of the images in ``state`` (for tests)."""
        return sorted(i for i, image in self.by_id.items() if image["State"] == state)

    def describe(self, body: dict[str, Any]) -> dict[str, Any]:
        """DescribeWorkspaceImages: by ids (unknown ones left out), else every owned image,
        a page of ``MaxResults`` (at most 25) at a time."""
        wanted = body.get("ImageIds")
        if body.get("ImageType") == "SHARED":
            found: list[dict[str, Any]] = []  # this account is shared nothing
        elif wanted:
            found = [self.by_id[i] for i in wanted if i in self.by_id]
        else:
            found = [self.by_id[i] for i in sorted(self.by_id)]
        start = 0
        token = body.get("NextToken")
        if token:
            if not str(token).startswith("img|") or not str(token)[4:].isdigit():
                raise ApiError("InvalidParameterValuesException", "The NextToken is not valid.")
            start = int(str(token)[4:])
        size = int(body.get("MaxResults") or _PAGE)
        page = found[start : start + size]
        out: dict[str, Any] = {"Images": [dict(image) for image in page]}
        if start + size < len(found):
            out["NextToken"] = f"img|{start + size}"
        return out

    def update_bundle(
        self, bundles: dict[str, dict[str, Any]], body: dict[str, Any], now: float
    ) -> dict[str, Any]:
        """UpdateWorkspaceBundle: the bundle points at the image from now on."""
        bundle_id, image_id = body.get("BundleId"), body.get("ImageId")
        if not bundle_id or not image_id:
            raise ApiError(
                "InvalidParameterValuesException", "BundleId and ImageId are both required."
            )
        bundle = bundles.get(str(bundle_id))
        if bundle is None:
            raise ApiError("ResourceNotFoundException", f"The bundle {bundle_id} was not found.")
        if bundle.get("Owner") != self.owner:
            raise ApiError("OperationNotSupportedException", "This bundle cannot be updated.")
        image = self.by_id.get(str(image_id))
        if image is None:
            raise ApiError("ResourceNotFoundException", f"The image {image_id} was not found.")
        if image["State"] != "AVAILABLE":
            raise ApiError(
                "ResourceUnavailableException", f"The image {image_id} is {image['State']}."
            )
        bundle["ImageId"] = str(image_id)
        bundle["LastUpdatedTime"] = now
        return {}
