"""The WorkSpaces service model, read from botocore at run time.

Batch limits, id patterns and enums come from here, never from hand-copied constants: when AWS
raises a limit in a new botocore release, fleetops follows.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

__all__ = [
    "SERVICE",
    "integer_member_max",
    "list_member_max",
    "member_pattern",
    "operation_input_members",
    "service_model",
]

SERVICE = "workspaces"


@cache
def service_model() -> Any:
    """botocore's ``ServiceModel`` for WorkSpaces (loaded once per process, on first use: the
    commands that never call AWS never import botocore). Read with botocore's data loader
    alone, not through a session: a session reads the AWS configuration (``AWS_PROFILE``, config
    files), which the model does not depend on and which must not fail here."""
    import botocore.loaders
    from botocore.model import ServiceModel

    loader = botocore.loaders.create_loader()
    return ServiceModel(loader.load_service_model(SERVICE, "service-2"), service_name=SERVICE)


def operation_input_members(operation: str) -> dict[str, Any]:
    """The input members (name → botocore Shape) of ``operation``."""
    shape = service_model().operation_model(operation).input_shape
    return dict(shape.members) if shape is not None else {}


@cache
def list_member_max(operation: str, member: str | None = None) -> int:
    """The model's ``max`` for a list member of ``operation``: how many items one call may carry.

    With ``member`` None, the operation's only list member is used. Operations that take one
    WorkSpace as a scalar member (RestoreWorkspace, MigrateWorkspace, ...) answer 1.
    """
    members = operation_input_members(operation)
    if member is None:
        lists = [name for name, shape in members.items() if shape.type_name == "list"]
        if len(lists) != 1:
            return 1
        member = lists[0]
    shape = members[member]
    if shape.type_name != "list":
        return 1
    return int(shape.metadata.get("max", 1))


@cache
def integer_member_max(operation: str, member: str) -> int:
    """The model's ``max`` for an integer member (e.g. DescribeWorkspaces ``Limit``)."""
    shape = operation_input_members(operation)[member]
    return int(shape.metadata["max"])


@cache
def member_pattern(shape_name: str) -> re.Pattern[str] | None:
    """The compiled ``pattern`` of a named string shape (``WorkspaceId``, ``BundleId``, ...)."""
    shape = service_model().shape_for(shape_name)
    pattern = shape.metadata.get("pattern")
    return re.compile(pattern) if pattern else None
