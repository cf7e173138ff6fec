"""One handler per WorkSpaces operation: a validated request body in, a response body out.

Handlers run synchronously under the simulator's lock; they raise ``ApiError`` for a 400.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fleetops.sim._edges import create_standby
from fleetops.sim._fleet import Fleet, WorkSpace
from fleetops.sim._validate import ApiError

__all__ = ["HANDLERS", "named_workspace_ids"]

Handler = Callable[[Fleet, dict[str, Any]], dict[str, Any]]

_BATCH_MEMBER = {
    "RebootWorkspaces": "RebootWorkspaceRequests",
    "StartWorkspaces": "StartWorkspaceRequests",
    "StopWorkspaces": "StopWorkspaceRequests",
    "RebuildWorkspaces": "RebuildWorkspaceRequests",
    "TerminateWorkspaces": "TerminateWorkspaceRequests",
}


def _invalid(message: str) -> ApiError:
    return ApiError("InvalidParameterValuesException", message)


def named_workspace_ids(operation: str, body: dict[str, Any]) -> list[str]:
    """Every WorkSpace id the request names (for the per-WorkSpace counters)."""
    member = _BATCH_MEMBER.get(operation)
    if member is not None:
        return [str(item.get("WorkspaceId")) for item in body.get(member, [])]
    ids = body.get("WorkspaceIds")
    if isinstance(ids, list):
        return [str(i) for i in ids]
    for key in ("WorkspaceId", "SourceWorkspaceId"):
        if isinstance(body.get(key), str):
            return [body[key]]
    resource = body.get("ResourceId")
    if isinstance(resource, str) and resource.startswith("ws-"):
        return [resource]
    return []


def _batch(operation: str) -> Handler:
    member = _BATCH_MEMBER[operation]

    def handle(fleet: Fleet, body: dict[str, Any]) -> dict[str, Any]:
        ids = [item["WorkspaceId"] for item in body[member]]
        return {"FailedRequests": fleet.change(operation, ids)}

    return handle


def _describe_workspaces(fleet: Fleet, body: dict[str, Any]) -> dict[str, Any]:
    ids = body.get("WorkspaceIds")
    directory_id = body.get("DirectoryId")
    user = body.get("UserName")
    filters = [k for k in ("DirectoryId", "BundleId", "WorkspaceName") if body.get(k)]
    if user and not directory_id:
        raise _invalid("The UserName filter requires a DirectoryId.")
    if ids is not None:
        if filters or user:
            raise _invalid("WorkspaceIds cannot be combined with another filter.")
        shown = (fleet.visible(i) for i in ids)  # with a Describe lag: as it was N s ago
        return {"Workspaces": [ws for ws in shown if ws is not None]}
    if len(filters) > 1:
        raise _invalid("Only one filter may be specified at a time.")
    keep: Callable[[WorkSpace], bool] | None = None
    if directory_id:
        keep = (
            (lambda ws: ws.directory_id == directory_id and ws.user_name == user)
            if user
            else (lambda ws: ws.directory_id == directory_id)
        )
    elif body.get("BundleId"):
        keep = lambda ws: ws.bundle_id == body["BundleId"]  # noqa: E731
    elif body.get("WorkspaceName"):
        keep = lambda ws: ws.workspace_name == body["WorkspaceName"]  # noqa: E731
    page, token = fleet.visible_page(body.get("NextToken"), body.get("Limit", 25), keep)
    result: dict[str, Any] = {"Workspaces": page}
    if token:
        result["NextToken"] = token
    return result


def _connection(fleet: Fleet, ws: WorkSpace) -> dict[str, Any]:
    out: dict[str, Any] = {
        "WorkspaceId": ws.id,
        "ConnectionState": ws.connection_state
        if ws.state == "AVAILABLE"
        else ("DISCONNECTED" if ws.state == "STOPPED" else "UNKNOWN"),
        "ConnectionStateCheckTimestamp": fleet.clock(),
    }
    if ws.last_connection is not None:
        out["LastKnownUserConnectionTimestamp"] = ws.last_connection
    return out


def _describe_connection_status(fleet: Fleet, body: dict[str, Any]) -> dict[str, Any]:
    ids = body.get("WorkspaceIds")
    if ids is not None:
        found = [ws for ws in (fleet.get(i) for i in ids) if ws is not None]
        return {"WorkspacesConnectionStatus": [_connection(fleet, ws) for ws in found]}
    page, token = fleet.page(body.get("NextToken"), 25)
    result: dict[str, Any] = {"WorkspacesConnectionStatus": [_connection(fleet, w) for w in page]}
    if token:
        result["NextToken"] = token
    return result


def _describe_directories(fleet: Fleet, body: dict[str, Any]) -> dict[str, Any]:
    if body.get("NextToken"):
        raise _invalid("The value for NextToken is not valid.")
    wanted = body.get("DirectoryIds")
    found = [d for d in fleet.directories if not wanted or d["DirectoryId"] in wanted]
    return {"Directories": [dict(d) for d in found]}


def _describe_bundles(fleet: Fleet, body: dict[str, Any]) -> dict[str, Any]:
    if body.get("NextToken"):
        raise _invalid("The value for NextToken is not valid.")
    wanted, owner = body.get("BundleIds"), body.get("Owner")
    if wanted and owner:
        raise _invalid("BundleIds and Owner cannot be combined.")
    found = [
        b
        for b in fleet.bundles
        if (not wanted or b["BundleId"] in wanted) and (not owner or b["Owner"] == owner)
    ]
    return {"Bundles": [dict(b) for b in found]}


def _describe_snapshots(fleet: Fleet, body: dict[str, Any]) -> dict[str, Any]:
    ws = fleet.require(body["WorkspaceId"])
    rebuild = [{"SnapshotTime": ws.snapshot_time}]
    restore = [{"SnapshotTime": ws.snapshot_time - 12 * 3600 * n} for n in range(3)]
    return {"RebuildSnapshots": rebuild, "RestoreSnapshots": restore}


def _tagged(fleet: Fleet, resource_id: str) -> dict[str, str]:
    ws = fleet.get(resource_id) if resource_id.startswith("ws-") else None
    if ws is None:
        raise ApiError(
            "ResourceNotFoundException", f"The resource {resource_id} could not be found."
        )
    return ws.tags


def _describe_tags(fleet: Fleet, body: dict[str, Any]) -> dict[str, Any]:
    tags = _tagged(fleet, body["ResourceId"])
    return {"TagList": [{"Key": k, "Value": v} for k, v in tags.items()]}


def _create_tags(fleet: Fleet, body: dict[str, Any]) -> dict[str, Any]:
    tags = _tagged(fleet, body["ResourceId"])
    new = {t["Key"]: t.get("Value", "") for t in body["Tags"]}
    if any(key.lower().startswith("aws:") for key in new):
        raise _invalid("Tag keys starting with 'aws:' are reserved.")
    if len(tags.keys() | new.keys()) > 50:
        raise ApiError("ResourceLimitExceededException", "Your resource limits have been exceeded.")
    tags.update(new)
    return {}


def _delete_tags(fleet: Fleet, body: dict[str, Any]) -> dict[str, Any]:
    tags = _tagged(fleet, body["ResourceId"])
    for key in body["TagKeys"]:
        tags.pop(key, None)
    return {}


def _create_workspaces(fleet: Fleet, body: dict[str, Any]) -> dict[str, Any]:
    pending, failed = fleet.create(body["Workspaces"])
    return {"FailedRequests": failed, "PendingRequests": pending}


def _restore(fleet: Fleet, body: dict[str, Any]) -> dict[str, Any]:
    fleet.restore(body["WorkspaceId"])
    return {}


def _migrate(fleet: Fleet, body: dict[str, Any]) -> dict[str, Any]:
    source = body["SourceWorkspaceId"]
    target = fleet.migrate(source, body["BundleId"])
    return {"SourceWorkspaceId": source, "TargetWorkspaceId": target}


def _modify_properties(fleet: Fleet, body: dict[str, Any]) -> dict[str, Any]:
    fleet.modify_properties(body["WorkspaceId"], body.get("WorkspaceProperties") or {})
    return {}


def _modify_state(fleet: Fleet, body: dict[str, Any]) -> dict[str, Any]:
    fleet.modify_state(body["WorkspaceId"], body["WorkspaceState"])
    return {}


def _describe_images(fleet: Fleet, body: dict[str, Any]) -> dict[str, Any]:
    return fleet.images.describe(body)


def _update_bundle(fleet: Fleet, body: dict[str, Any]) -> dict[str, Any]:
    return fleet.update_bundle(body)


HANDLERS: dict[str, Handler] = {
    **{op: _batch(op) for op in _BATCH_MEMBER},
    "CreateStandbyWorkspaces": create_standby,
    "CreateTags": _create_tags,
    "CreateWorkspaces": _create_workspaces,
    "DeleteTags": _delete_tags,
    "DescribeTags": _describe_tags,
    "DescribeWorkspaceBundles": _describe_bundles,
    "DescribeWorkspaceDirectories": _describe_directories,
    "DescribeWorkspaceSnapshots": _describe_snapshots,
    "DescribeWorkspaces": _describe_workspaces,
    "DescribeWorkspacesConnectionStatus": _describe_connection_status,
    "MigrateWorkspace": _migrate,
    "ModifyWorkspaceProperties": _modify_properties,
    "ModifyWorkspaceState": _modify_state,
    "RestoreWorkspace": _restore,
    "DescribeWorkspaceImages": _describe_images,
    "UpdateWorkspaceBundle": _update_bundle,
}
