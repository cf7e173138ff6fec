"""The simulated fleet: generated WorkSpaces, their lazy lifecycle and every operation's rules.

Pure and synchronous: no I/O, no asyncio. A transition is stored as (end state, deadline) on the
WorkSpace and applied when the WorkSpace is next read (``_settle``), so 100,000 WorkSpaces in
flight cost no tasks and no timers. Terminated WorkSpaces are removed when settled.

Per-item error codes (FailedRequests ``ErrorCode``): dotted, as the field sees them (see
``_edges``), else from the API reference's error list:

- unknown id: ``ResourceNotFound.Workspace``
- wrong state, or ADMIN_MAINTENANCE for reboot/start/stop/rebuild:
  ``InvalidResourceState.Workspace``
- a WorkSpace told to refuse (``Simulator.refuse``): the code it was given (e.g.
  ``InvalidUserConfiguration.Workspace``), for every batch operation, until told otherwise
- start/stop of an ALWAYS_ON WorkSpace: ``OperationNotSupportedException``
- injected transient failure (``item_failure_rate``): ``InternalFailure`` (the reference's
  common error for "an unknown error"; nothing more specific is documented); the WorkSpace is
  left unchanged
- CreateWorkspaces: ``ResourceNotFound.Directory`` / ``ResourceNotFound.Bundle`` (as moto answers),
  ``AutoStopTimeoutIsNotApplicableForAnAlwaysOnWorkspace``

Single-WorkSpace operations answer HTTP 400 instead: RestoreWorkspace in a wrong state
``OperationNotSupportedException`` (its documented errors have no InvalidResourceState);
MigrateWorkspace ``OperationInProgressException`` while a transition runs, else
``OperationNotSupportedException``; ModifyWorkspaceProperties ``OperationInProgressException``
while UPDATING, else ``InvalidResourceStateException``; ModifyWorkspaceState
``InvalidResourceStateException``; unknown ids ``ResourceNotFoundException`` everywhere. With
``in_progress_first`` N, the first N ModifyWorkspaceProperties / MigrateWorkspace calls per
WorkSpace answer ``OperationInProgressException``.
"""

from __future__ import annotations

import base64
import bisect
import math
import random
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from fleetops.sim._edges import NOT_FOUND, STATE_REFUSED, refuse_while_busy
from fleetops.sim._health import heals
from fleetops.sim._history import GONE_STATE, History
from fleetops.sim._images import Images
from fleetops.sim._rules import BATCH_RULES, STUCK_REBOOT_SECONDS, failure
from fleetops.sim._validate import ApiError
from fleetops.sim._workspace import WorkSpace

__all__ = ["STUCK_REBOOT_SECONDS", "Fleet", "FleetConfig", "WorkSpace"]

ACCOUNT_ID = "123456789012"
_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"
_HEX = "0123456789abcdef"
_TEAMS = ("finance", "support", "engineering", "sales", "hr", "legal")
_ENVS = ("prod", "prod", "prod", "staging", "dev")
_COMPUTE = ("VALUE", "STANDARD", "STANDARD", "PERFORMANCE", "POWER", "POWERPRO")
_MSG_NOT_FOUND = "The resource could not be found."
_MSG_STATE = "The state of the resource is not valid for this operation."
_MSG_UNSUPPORTED = "This operation is not supported."
_MSG_REFUSED = "The WorkSpace cannot accept this request."
_MSG_TRANSIENT = (
    "The request processing has failed because of an unknown error, exception or failure."
)
_MSG_IN_PROGRESS = (
    "The properties of this WorkSpace are currently being modified. Try again in a moment."
)


@dataclass(frozen=True, slots=True)
class FleetConfig:
    """The knobs the fleet reads (a copy lives in the Simulator; replaced by configure())."""

    seed: int = 0
    item_failure_rate: float = 0.0
    stuck_reboot_rate: float = 0.0
    transition_seconds: float = 2.0
    #: Seconds DescribeWorkspaces lags behind the truth (see ``_history``); 0: none.
    describe_lag: float = 0.0
    #: The share of UNHEALTHY WorkSpaces a reboot / a restore heals (see ``_health``).
    reboot_heal_fraction: float = 1.0
    restore_heal_fraction: float = 1.0
    #: The share of rebuilds that end in ERROR instead of AVAILABLE (a broken image, say).
    rebuild_error_fraction: float = 0.0
    #: The first N ModifyWorkspaceProperties / MigrateWorkspace calls per WorkSpace answer
    #: OperationInProgressException (0: never).
    in_progress_first: int = 0


def _token(after: str) -> str:
    return base64.urlsafe_b64encode(f"v1|{after}".encode()).decode()


def _untoken(token: str) -> str:
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
    except (ValueError, UnicodeError):
        text = ""
    prefix, _, after = text.partition("|")
    if prefix != "v1" or not after:
        raise ApiError("InvalidParameterValuesException", "The value for NextToken is not valid.")
    return after


class Fleet:
    """Every WorkSpace, directory, bundle, and the rules of each operation."""

    def __init__(
        self,
        workspaces: int,
        config: FleetConfig,
        clock: Callable[[], float],
        directories: int = 4,
        bundles: int = 3,
        connected_fraction: float = 0.1,
        stale_snapshot_fraction: float = 0.05,
    ) -> None:
        self.config = config
        self.clock = clock
        self._gen = random.Random(config.seed)
        self._faults = random.Random(config.seed + 1)
        self._nonce = 0
        self.history = History()
        self.region = "us-east-1"  # named in RelatedWorkspaces (the simulator sets its own)
        self.busy_answers: dict[str, int] = {}  # WorkSpace id → OperationInProgress answers
        self.refusals: dict[str, str] = {}  # WorkSpace id → the code its batch calls answer
        self.by_id: dict[str, WorkSpace] = {}
        self.order: list[str] = []  # sorted ids: the pagination order
        now = clock()
        self.directories = [self._directory(i) for i in range(directories)]
        self.bundles = [self._bundle(i, now) for i in range(bundles)]
        self._directory_ids = {d["DirectoryId"] for d in self.directories}
        self._bundle_by_id = {b["BundleId"]: b for b in self.bundles}
        self.images = Images(config.seed, self.bundles, ACCOUNT_ID, now)
        for index in range(workspaces):
            ws = self._generate(index, now, connected_fraction, stale_snapshot_fraction)
            self.by_id[ws.id] = ws
        self.order = sorted(self.by_id)

    # -- generation ---------------------------------------------------------------------------

    def _chars(self, alphabet: str, count: int) -> str:
        return "".join(self._gen.choice(alphabet) for _ in range(count))

    @property
    def directory_ids(self) -> frozenset[str]:
        return frozenset(self._directory_ids)

    def new_workspace_id(self) -> str:
        return self._new_id()

    def add_workspace(self, ws: WorkSpace) -> None:
        """A WorkSpace that exists at once (a standby), recorded in the Describe history."""
        self._add(ws)

    def _new_id(self) -> str:
        while True:
            ws_id = "ws-" + self._chars(_B36, 10)
            if ws_id not in self.by_id:
                return ws_id

    def _directory(self, index: int) -> dict[str, Any]:
        directory_id = "d-" + self._chars(_HEX, 10)
        return {
            "DirectoryId": directory_id,
            "Alias": f"corp{index}",
            "DirectoryName": f"corp{index}.example.com",
            "RegistrationCode": f"SLiad+{self._chars(_B36, 6).upper()}",
            "SubnetIds": [f"subnet-{self._chars(_HEX, 8)}", f"subnet-{self._chars(_HEX, 8)}"],
            "DnsIpAddresses": [f"10.{index}.0.10", f"10.{index}.0.11"],
            "CustomerUserName": "Administrator",
            "DirectoryType": "SIMPLE_AD",
            "WorkspaceSecurityGroupId": f"sg-{self._chars(_HEX, 8)}",
            "State": "REGISTERED",
            "Tenancy": "SHARED",
            "WorkspaceType": "PERSONAL",
        }

    def _bundle(self, index: int, now: float) -> dict[str, Any]:
        compute = ("STANDARD", "PERFORMANCE", "POWER", "VALUE", "POWERPRO")[index % 5]
        return {
            "BundleId": "wsb-" + self._chars(_B36, 9),
            "Name": f"fleet-{compute.lower()}-{index}",
            "Owner": ACCOUNT_ID,
            "Description": f"Generated {compute} bundle {index}",
            "ImageId": "wsi-" + self._chars(_B36, 9),
            "RootStorage": {"Capacity": "80"},
            "UserStorage": {"Capacity": "50"},
            "ComputeType": {"Name": compute},
            "LastUpdatedTime": now - 86400 * (10 + index),
            "CreationTime": now - 86400 * (100 + index),
            "State": "AVAILABLE",
            "BundleType": "REGULAR",
        }

    def _generate(self, index: int, now: float, connected: float, stale: float) -> WorkSpace:
        rnd = self._gen
        directory = self.directories[index % len(self.directories)]
        bundle = self.bundles[rnd.randrange(len(self.bundles))]
        mode = rnd.choices(("AUTO_STOP", "ALWAYS_ON", "MANUAL"), (80, 15, 5))[0]
        state = rnd.choices(("AVAILABLE", "STOPPED", "UNHEALTHY", "ERROR"), (85, 10, 3, 2))[0]
        if mode == "ALWAYS_ON" and state == "STOPPED":
            state = "AVAILABLE"
        is_connected = state == "AVAILABLE" and rnd.random() < connected
        last = now - rnd.uniform(0, 60 * 86400)
        snapshot_age = rnd.uniform(12, 72) if rnd.random() < stale else rnd.uniform(0, 12)
        user = f"user{index + 1:04d}"
        tags = {"team": rnd.choice(_TEAMS), "env": rnd.choice(_ENVS)}
        if rnd.random() < 0.05:
            tags["fleetops:skip"] = "true"
        return WorkSpace(
            id=self._new_id(),
            directory_id=directory["DirectoryId"],
            user_name=user,
            bundle_id=bundle["BundleId"],
            workspace_name=f"{user}-desktop",
            computer_name=f"WSAMZN-{self._chars(_B36, 8).upper()}",
            ip_address=f"10.{index % 64}.{(index // 250) % 256}.{index % 250 + 4}",
            subnet_id=directory["SubnetIds"][index % 2],
            state=state,
            running_mode=mode,
            auto_stop_timeout=60 if mode == "AUTO_STOP" else None,
            compute_type=bundle["ComputeType"]["Name"]
            if rnd.random() < 0.8
            else rnd.choice(_COMPUTE),
            root_gib=rnd.choice((80, 80, 175)),
            user_gib=rnd.choice((10, 50, 50, 100)),
            protocols=["WSP"] if rnd.random() < 0.7 else ["PCOIP"],
            connection_state="CONNECTED" if is_connected else "DISCONNECTED",
            last_connection=now if is_connected else last,
            snapshot_time=now - snapshot_age * 3600,
            tags=tags,
        )

    # -- lifecycle ----------------------------------------------------------------------------

    def get(self, ws_id: str) -> WorkSpace | None:
        """The WorkSpace, settled to the present, or None if unknown or gone."""
        ws = self.by_id.get(ws_id)
        if ws is not None and ws.end_state is not None and self.clock() >= ws.deadline:
            return self._settle(ws)
        return ws

    def _settle(self, ws: WorkSpace) -> WorkSpace | None:
        before = ws.describe()
        if ws.end_state == "":
            self._remove(ws.id)
            self._record(ws, before, at=ws.deadline, gone=True)
            return None
        assert ws.end_state is not None
        ws.state = ws.end_state
        if ws.on_done:
            for name, value in ws.on_done.items():
                setattr(ws, name, value)
        ws.end_state, ws.on_done = None, None
        self._record(ws, before, at=ws.deadline)
        return ws

    def _record(
        self, ws: WorkSpace, before: dict[str, Any] | None, *, at: float, gone: bool = False
    ) -> None:
        """Remember a change of ``ws`` (``before``: its description just before, None if new)."""
        self.history.record(
            ws.id,
            at,
            GONE_STATE if gone else ws.state,
            before,
            None if gone else ws.describe(),
            self.config.describe_lag,
        )

    def visible(self, ws_id: str) -> dict[str, Any] | None:
        """The WorkSpace as DescribeWorkspaces shows it: the truth, or with a Describe lag the
        truth as it was ``describe_lag`` seconds ago (None: not found)."""
        ws = self.get(ws_id)
        current = ws.describe() if ws is not None else None
        return self.history.view(ws_id, current, self.clock() - self.config.describe_lag)

    def timeline(self, ws_id: str) -> list[tuple[float, str]]:
        """Every real state the WorkSpace entered since the fleet was made, and when."""
        self.get(ws_id)  # a transition that has ended is recorded at its deadline
        return self.history.timeline(ws_id)

    def _remove(self, ws_id: str) -> None:
        del self.by_id[ws_id]
        pos = bisect.bisect_left(self.order, ws_id)
        if pos < len(self.order) and self.order[pos] == ws_id:
            del self.order[pos]

    def _add(self, ws: WorkSpace) -> None:
        self.by_id[ws.id] = ws
        bisect.insort(self.order, ws.id)

    def _duration(self, ws_id: str) -> float:
        self._nonce += 1
        digest = zlib.crc32(f"{self.config.seed}:{ws_id}:{self._nonce}".encode())
        jitter = 0.75 + 0.5 * (digest / 0xFFFFFFFF)
        return self.config.transition_seconds * jitter

    def _begin(
        self,
        ws: WorkSpace,
        during: str,
        end: str,
        *,
        stuck: bool = False,
        on_done: dict[str, Any] | None = None,
        new: bool = False,
    ) -> None:
        now = self.clock()
        before = None if new else ws.describe()
        ws.state = during
        ws.end_state = end
        ws.started = now
        ws.deadline = math.inf if stuck else now + self._duration(ws.id)
        ws.on_done = on_done
        self._record(ws, before, at=now)

    def set_state(self, ws_id: str, state: str) -> None:
        ws = self.get(ws_id)
        if ws is None:
            raise KeyError(ws_id)
        before = ws.describe()
        ws.state, ws.end_state, ws.on_done = state, None, None
        self._record(ws, before, at=self.clock())

    def set_connection(self, ws_id: str, state: str) -> None:
        """A user connects (``CONNECTED``) to a WorkSpace or logs off (``DISCONNECTED``)."""
        ws = self.get(ws_id)
        if ws is None:
            raise KeyError(ws_id)
        if state not in ("CONNECTED", "DISCONNECTED"):
            raise ValueError(f"connection state {state!r}: CONNECTED or DISCONNECTED")
        ws.connection_state = state
        if state == "CONNECTED":
            ws.last_connection = self.clock()

    def states(self) -> dict[str, int]:
        histogram: dict[str, int] = {}
        for ws_id in list(self.order):
            ws = self.get(ws_id)
            if ws is not None:
                histogram[ws.state] = histogram.get(ws.state, 0) + 1
        return histogram

    def _transient(self) -> bool:
        rate = self.config.item_failure_rate
        return rate > 0 and self._faults.random() < rate

    # -- batch operations ---------------------------------------------------------------------

    def change(self, operation: str, ids: list[str]) -> list[dict[str, str]]:
        """Reboot/Start/Stop/Rebuild/Terminate: the FailedRequests list for these ids."""
        failed: list[dict[str, str]] = []
        rule = BATCH_RULES[operation]
        for ws_id in ids:
            ws = self.get(ws_id)
            if ws is None:
                failed.append(failure(ws_id, NOT_FOUND, _MSG_NOT_FOUND))
                continue
            code = self.refusals.get(ws_id) or rule(self, ws)
            if code is None and self._transient():
                code = "InternalFailure"
            if code is not None:
                message = {
                    STATE_REFUSED: _MSG_STATE,
                    "OperationNotSupportedException": _MSG_UNSUPPORTED,
                    "InternalFailure": _MSG_TRANSIENT,
                }.get(code, _MSG_REFUSED)
                failed.append(failure(ws_id, code, message))
                continue
            self._accept(operation, ws)
        return failed

    def _accept(self, operation: str, ws: WorkSpace) -> None:
        if operation == "RebootWorkspaces":
            rate = self.config.stuck_reboot_rate
            stuck = rate > 0 and self._faults.random() < rate
            ws.connection_state = "DISCONNECTED"
            self._begin(ws, "REBOOTING", self._healed(operation, ws), stuck=stuck)
        elif operation == "StartWorkspaces":
            self._begin(ws, "STARTING", "AVAILABLE")
        elif operation == "StopWorkspaces":
            ws.connection_state = "DISCONNECTED"
            self._begin(ws, "STOPPING", "STOPPED")
        elif operation == "RebuildWorkspaces":
            ws.connection_state = "DISCONNECTED"
            self._begin(ws, "REBUILDING", self._rebuilt(ws))
        elif operation == "TerminateWorkspaces":
            if ws.state != "TERMINATING":
                self._begin(ws, "TERMINATING", "")
        elif operation == "RestoreWorkspace":
            ws.connection_state = "DISCONNECTED"
            self._begin(ws, "RESTORING", self._healed(operation, ws))

    def _rebuilt(self, ws: WorkSpace) -> str:
        """The end state of a rebuild: ERROR for the share ``rebuild_error_fraction``."""
        fraction = self.config.rebuild_error_fraction
        fails = fraction > 0 and heals(self.config.seed, ws.id, "RebuildWorkspaces", fraction)
        return "ERROR" if fails else "AVAILABLE"

    def update_bundle(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.images.update_bundle(self._bundle_by_id, body, self.clock())

    def _healed(self, operation: str, ws: WorkSpace) -> str:
        """The end state of a reboot or restore: an UNHEALTHY WorkSpace may stay so."""
        if ws.state != "UNHEALTHY":
            return "AVAILABLE"
        config = self.config
        fraction = (
            config.reboot_heal_fraction
            if operation == "RebootWorkspaces"
            else config.restore_heal_fraction
        )
        return "AVAILABLE" if heals(config.seed, ws.id, operation, fraction) else "UNHEALTHY"

    def create(self, requests: list[dict[str, Any]]) -> tuple[list[Any], list[Any]]:
        pending: list[dict[str, Any]] = []
        failed: list[dict[str, Any]] = []
        for request in requests:
            code, message = self._create_error(request)
            if code is None and self._transient():
                code, message = "InternalFailure", _MSG_TRANSIENT
            if code is not None:
                failed.append(
                    {"WorkspaceRequest": request, "ErrorCode": code, "ErrorMessage": message}
                )
                continue
            ws = self._new_workspace(request)
            self._add(ws)
            self._begin(ws, "PENDING", "AVAILABLE", new=True)
            pending.append(ws.describe())
        return pending, failed

    def _create_error(self, request: dict[str, Any]) -> tuple[str | None, str]:
        if request["DirectoryId"] not in self._directory_ids:
            return (
                "ResourceNotFound.Directory",
                "The specified directory could not be found in the specified region.",
            )
        if request["BundleId"] not in self._bundle_by_id:
            return "ResourceNotFound.Bundle", "The specified bundle could not be found."
        props = request.get("WorkspaceProperties") or {}
        if props.get("RunningMode") == "ALWAYS_ON" and props.get(
            "RunningModeAutoStopTimeoutInMinutes"
        ):
            return (
                "AutoStopTimeoutIsNotApplicableForAnAlwaysOnWorkspace",
                "RunningModeAutoStopTimeoutInMinutes is not applicable for WorkSpace with "
                "running mode set to ALWAYS_ON.",
            )
        return None, ""

    def _new_workspace(self, request: dict[str, Any]) -> WorkSpace:
        props = request.get("WorkspaceProperties") or {}
        bundle = self._bundle_by_id[request["BundleId"]]
        directory = next(d for d in self.directories if d["DirectoryId"] == request["DirectoryId"])
        mode = props.get("RunningMode", "ALWAYS_ON")
        octet = self._gen.randrange(4, 250)
        return WorkSpace(
            id=self._new_id(),
            directory_id=request["DirectoryId"],
            user_name=request["UserName"],
            bundle_id=request["BundleId"],
            workspace_name=request.get("WorkspaceName") or f"{request['UserName']}-desktop",
            computer_name=f"WSAMZN-{self._chars(_B36, 8).upper()}",
            ip_address=f"10.200.{self._gen.randrange(256)}.{octet}",
            subnet_id=directory["SubnetIds"][0],
            state="PENDING",
            running_mode=mode,
            auto_stop_timeout=props.get(
                "RunningModeAutoStopTimeoutInMinutes", 60 if mode == "AUTO_STOP" else None
            ),
            compute_type=props.get("ComputeTypeName", bundle["ComputeType"]["Name"]),
            root_gib=props.get("RootVolumeSizeGib", int(bundle["RootStorage"]["Capacity"])),
            user_gib=props.get("UserVolumeSizeGib", int(bundle["UserStorage"]["Capacity"])),
            protocols=list(props.get("Protocols", ["WSP"])),
            connection_state="UNKNOWN",
            last_connection=None,
            snapshot_time=self.clock(),
            tags={t["Key"]: t.get("Value", "") for t in request.get("Tags") or []},
        )

    # -- single-WorkSpace operations ----------------------------------------------------------

    def require(self, ws_id: str) -> WorkSpace:
        ws = self.get(ws_id)
        if ws is None:
            raise ApiError(
                "ResourceNotFoundException", f"The WorkSpace {ws_id} could not be found."
            )
        return ws

    def restore(self, ws_id: str) -> None:
        ws = self.require(ws_id)
        if ws.state not in {"AVAILABLE", "ERROR", "UNHEALTHY", "STOPPED"}:
            raise ApiError(
                "OperationNotSupportedException",
                f"WorkSpace {ws_id} cannot be restored in state {ws.state}.",
            )
        if self._transient():
            raise ApiError("InternalFailure", _MSG_TRANSIENT, 500)
        self._accept("RestoreWorkspace", ws)

    def migrate(self, ws_id: str, bundle_id: str) -> str:
        ws = self.require(ws_id)
        refuse_while_busy(self, ws_id)
        if bundle_id not in self._bundle_by_id:
            raise ApiError(
                "ResourceNotFoundException", f"The bundle {bundle_id} could not be found."
            )
        if ws.end_state is not None:
            raise ApiError("OperationInProgressException", _MSG_IN_PROGRESS)
        if ws.state not in {"AVAILABLE", "STOPPED", "ERROR"}:
            raise ApiError(
                "OperationNotSupportedException",
                f"WorkSpace {ws_id} cannot be migrated in state {ws.state}.",
            )
        if bundle_id == ws.bundle_id:
            raise ApiError(
                "InvalidParameterValuesException",
                "The target bundle is the bundle of the source WorkSpace.",
            )
        bundle = self._bundle_by_id[bundle_id]
        target = replace(
            ws,
            id=self._new_id(),
            bundle_id=bundle_id,
            compute_type=bundle["ComputeType"]["Name"],
            computer_name=f"WSAMZN-{self._chars(_B36, 8).upper()}",
            tags=dict(ws.tags),
            protocols=list(ws.protocols),
            connection_state="UNKNOWN",
        )
        self._add(target)
        self._begin(target, "PENDING", "AVAILABLE", new=True)
        ws.connection_state = "DISCONNECTED"
        self._begin(ws, "TERMINATING", "")
        return target.id

    def modify_properties(self, ws_id: str, props: dict[str, Any]) -> None:
        ws = self.require(ws_id)
        refuse_while_busy(self, ws_id)
        if ws.state == "UPDATING":
            raise ApiError("OperationInProgressException", _MSG_IN_PROGRESS)
        if ws.state not in {"AVAILABLE", "STOPPED"}:
            raise ApiError("InvalidResourceStateException", _MSG_STATE)
        mapping = {
            "RunningMode": "running_mode",
            "RunningModeAutoStopTimeoutInMinutes": "auto_stop_timeout",
            "ComputeTypeName": "compute_type",
            "RootVolumeSizeGib": "root_gib",
            "UserVolumeSizeGib": "user_gib",
            "Protocols": "protocols",
        }
        changes = {mapping[k]: v for k, v in props.items() if k in mapping}
        if not changes:
            raise ApiError("InvalidParameterValuesException", "No WorkSpace property to modify.")
        mode = changes.get("running_mode", ws.running_mode)
        if mode == "ALWAYS_ON":
            if "auto_stop_timeout" in changes:
                raise ApiError(
                    "InvalidParameterValuesException",
                    "RunningModeAutoStopTimeoutInMinutes is not applicable for "
                    "WorkSpace with running mode set to ALWAYS_ON.",
                )
            changes["auto_stop_timeout"] = None
        elif mode == "AUTO_STOP" and ws.auto_stop_timeout is None:
            changes.setdefault("auto_stop_timeout", 60)
        if ws.state == "STOPPED" and mode == "ALWAYS_ON":
            # an AlwaysOn WorkSpace cannot stay stopped: AWS starts it
            self._begin(ws, "UPDATING", "AVAILABLE", on_done=changes)
        else:
            self._begin(ws, "UPDATING", ws.state, on_done=changes)

    def modify_state(self, ws_id: str, target: str) -> None:
        ws = self.require(ws_id)
        before = ws.describe()
        if target == "ADMIN_MAINTENANCE" and ws.state in {
            "AVAILABLE",
            "STOPPED",
            "ADMIN_MAINTENANCE",
        }:
            ws.state = "ADMIN_MAINTENANCE"
        elif target == "AVAILABLE" and ws.state in {"ADMIN_MAINTENANCE", "AVAILABLE"}:
            ws.state = "AVAILABLE"
        else:
            raise ApiError("InvalidResourceStateException", _MSG_STATE)
        self._record(ws, before, at=self.clock())

    # -- describes ----------------------------------------------------------------------------

    def page(
        self, token: str | None, limit: int, keep: Callable[[WorkSpace], bool] | None = None
    ) -> tuple[list[WorkSpace], str | None]:
        """One page in id order after the token; the next token when more may follow."""
        pos = bisect.bisect_right(self.order, _untoken(token)) if token else 0
        found: list[WorkSpace] = []
        while pos < len(self.order):
            ws = self.get(self.order[pos])
            if ws is None:  # settled away: the list shrank under us
                continue
            pos += 1
            if keep is None or keep(ws):
                found.append(ws)
                if len(found) == limit:
                    break
        more = len(found) == limit and any(keep is None or keep(ws) for ws in self._iter_from(pos))
        return found, (_token(found[-1].id) if more else None)

    def visible_page(
        self, token: str | None, limit: int, keep: Callable[[WorkSpace], bool] | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """:meth:`page` as DescribeWorkspaces shows it (see :meth:`visible`). With a Describe lag,
        WorkSpaces created within the lag are left out (not yet visible), and the ones terminated
        within it are already missing from a listing (they are still found by id)."""
        if self.config.describe_lag <= 0:
            found, next_token = self.page(token, limit, keep)
            return [ws.describe() for ws in found], next_token

        def shown(ws: WorkSpace) -> bool:
            return (keep is None or keep(ws)) and self.visible(ws.id) is not None

        found, next_token = self.page(token, limit, shown)
        views = (self.visible(ws.id) for ws in found)
        return [view for view in views if view is not None], next_token

    def _iter_from(self, pos: int) -> Iterator[WorkSpace]:
        while pos < len(self.order):
            ws = self.get(self.order[pos])
            if ws is None:
                continue
            pos += 1
            yield ws
