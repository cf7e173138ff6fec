"""A simulated WorkSpace: its attributes, its running transition, and its description as
DescribeWorkspaces answers it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["WorkSpace"]


@dataclass(slots=True)
class WorkSpace:
    id: str
    directory_id: str
    user_name: str
    bundle_id: str
    workspace_name: str
    computer_name: str
    ip_address: str
    subnet_id: str
    state: str
    running_mode: str
    auto_stop_timeout: int | None
    compute_type: str
    root_gib: int
    user_gib: int
    protocols: list[str]
    connection_state: str
    last_connection: float | None
    snapshot_time: float
    tags: dict[str, str] = field(default_factory=dict)
    end_state: str | None = None  # the state the running transition ends in ("" = vanish)
    deadline: float = 0.0
    started: float = 0.0
    on_done: dict[str, Any] | None = None  # properties applied when the transition ends
    #: RelatedWorkspaces: a standby names its primary (Type PRIMARY), a primary its standby
    related: list[dict[str, str]] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        props: dict[str, Any] = {
            "RunningMode": self.running_mode,
            "RootVolumeSizeGib": self.root_gib,
            "UserVolumeSizeGib": self.user_gib,
            "ComputeTypeName": self.compute_type,
            "Protocols": list(self.protocols),
            "OperatingSystemName": "WINDOWS_SERVER_2022",
        }
        if self.auto_stop_timeout is not None:
            props["RunningModeAutoStopTimeoutInMinutes"] = self.auto_stop_timeout
        out: dict[str, Any] = {
            "WorkspaceId": self.id,
            "DirectoryId": self.directory_id,
            "UserName": self.user_name,
            "IpAddress": self.ip_address,
            "State": self.state,
            "BundleId": self.bundle_id,
            "SubnetId": self.subnet_id,
            "ComputerName": self.computer_name,
            "UserVolumeEncryptionEnabled": False,
            "RootVolumeEncryptionEnabled": False,
            "WorkspaceName": self.workspace_name,
            "WorkspaceProperties": props,
        }
        if self.related:
            out["RelatedWorkspaces"] = [dict(r) for r in self.related]
        if self.state == "UPDATING" and self.on_done:
            out["ModificationStates"] = [
                {
                    "Resource": "COMPUTE_TYPE" if "compute_type" in self.on_done else "ROOT_VOLUME",
                    "State": "UPDATE_IN_PROGRESS",
                }
            ]
        return out
