"""A WorkSpace terminated between its Describe and its DescribeTags is not selected, whatever
form of the not-found code the API answers with; any other error of DescribeTags is raised."""

from __future__ import annotations

from typing import Any

import pytest

from fleetops.catalogue.targets import Candidate, Targets, enrich
from fleetops.errors import AwsError


def _call(code: str) -> Any:
    async def call(operation: str, ids: Any, /, **params: Any) -> dict[str, Any]:
        assert operation == "DescribeTags"
        if params["ResourceId"] == "ws-gone":
            raise AwsError(code, "The WorkSpace could not be found.")
        return {"TagList": [{"Key": "team", "Value": "blue"}]}

    return call


def _chunk() -> list[Candidate]:
    return [
        Candidate(workspace={"WorkspaceId": w, "State": "AVAILABLE"}) for w in ("ws-a", "ws-gone")
    ]


@pytest.mark.parametrize(
    "code", ["ResourceNotFoundException", "ResourceNotFound.Workspace", "ResourceNotFound"]
)
async def test_a_workspace_gone_before_its_tags_is_not_selected(code: str) -> None:
    targets = Targets(tags=(("team", "blue"),))
    kept = await enrich(targets, _chunk(), _call(code))
    assert [c.workspace_id for c in kept] == ["ws-a"]


async def test_another_error_of_describe_tags_is_raised() -> None:
    targets = Targets(tags=(("team", "blue"),))
    with pytest.raises(AwsError, match="could not be found"):
        await enrich(targets, _chunk(), _call("AccessDeniedException"))
