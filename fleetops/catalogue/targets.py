"""Selectors → a stream of WorkSpaces, using the cheapest calls that answer them.

DescribeWorkspaces takes either up to 25 ids or one filter (DirectoryId, BundleId, UserName with
DirectoryId, WorkspaceName), pages of at most 25, and no tag filter. So:

* explicit ids → DescribeWorkspaces by 25 ids;
* a directory → the DirectoryId filter (with UserName when ``--user`` is a plain name);
* otherwise a bundle → the BundleId filter; otherwise every WorkSpace in the region;
* state, running mode, compute type, bundle and user globs are then checked locally (free);
* tags cost one DescribeTags per WorkSpace, so they are fetched last, only for survivors;
* idleness and connected users come from DescribeWorkspacesConnectionStatus, 25 ids a call.
"""

from __future__ import annotations

import fnmatch
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from fleetops.aws.model import integer_member_max, list_member_max, member_pattern
from fleetops.errors import AwsError, UsageError

__all__ = [
    "Candidate",
    "Targets",
    "epoch",
    "read_ids_file",
    "resolve",
    "validate_bundle_id",
    "validate_directory_id",
    "validate_workspace_id",
]

Workspace = dict[str, Any]


class CallFn(Protocol):
    def __call__(
        self, operation: str, ids: Sequence[str], /, **params: Any
    ) -> Awaitable[Mapping[str, Any]]: ...


def _validator(shape: str, what: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        pattern = member_pattern(shape)
        if pattern is not None and not pattern.fullmatch(value):
            raise UsageError(f"{what} {value!r} is not valid (expected {pattern.pattern})")
        return value

    return check


validate_workspace_id = _validator("WorkspaceId", "WorkSpace id")
validate_bundle_id = _validator("BundleId", "bundle id")
validate_directory_id = _validator("DirectoryId", "directory id")


def read_ids_file(path: str | Path) -> list[str]:
    """One id per line; blank lines and ``#`` comments ignored; duplicates dropped (order kept).

    A bad id is a :class:`UsageError` naming the file and line.
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read ids file {file}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise UsageError(f"ids file {file} is not UTF-8 text") from exc
    pattern = member_pattern("WorkspaceId")
    seen: dict[str, None] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if pattern is not None and not pattern.fullmatch(line):
            raise UsageError(f"{file}:{number}: {line[:80]!r} is not a WorkSpace id")
        seen.setdefault(line, None)
    return list(seen)


def _parse_tag(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise UsageError(f"tag {text!r} must be KEY=VALUE")
    return key, value


@dataclass(frozen=True)
class Targets:
    """Which WorkSpaces a job is about. Selectors combine with AND."""

    workspace_ids: tuple[str, ...] = ()
    directory_id: str | None = None
    bundle_id: str | None = None
    states: tuple[str, ...] = ()
    running_mode: str | None = None
    compute_type: str | None = None
    user: str | None = None
    tags: tuple[tuple[str, str], ...] = ()
    exclude_tags: tuple[tuple[str, str], ...] = ()
    idle_days: float | None = None
    ids_file: str | None = None  # recorded for history; its ids are in workspace_ids

    @classmethod
    def build(
        cls,
        *,
        workspace_ids: Sequence[str] = (),
        ids_file: str | None = None,
        directory_id: str | None = None,
        bundle_id: str | None = None,
        states: Sequence[str] = (),
        running_mode: str | None = None,
        compute_type: str | None = None,
        user: str | None = None,
        tags: Sequence[str] = (),
        exclude_tags: Sequence[str] = (),
        idle_days: float | None = None,
    ) -> Targets:
        """Validate raw selector values (from flags or a job file)."""
        ids = [validate_workspace_id(i) for i in workspace_ids]
        if ids_file is not None:
            ids.extend(read_ids_file(ids_file))
        unique = tuple(dict.fromkeys(ids))
        if (ids_file is not None or workspace_ids) and not unique:
            raise UsageError(f"ids file {ids_file} holds no WorkSpace ids")
        if directory_id is not None:
            validate_directory_id(directory_id)
        if bundle_id is not None:
            validate_bundle_id(bundle_id)
        if idle_days is not None and idle_days <= 0:
            raise UsageError("--idle-days must be a positive number of days")
        known_states = _enum_values("WorkspaceState")
        for state in states:
            if known_states and state.upper() not in known_states:
                raise UsageError(f"unknown WorkSpace state {state!r}")
        modes = _enum_values("RunningMode")
        if running_mode is not None and modes and running_mode.upper() not in modes:
            raise UsageError(f"unknown running mode {running_mode!r} ({', '.join(sorted(modes))})")
        computes = _enum_values("Compute")
        if compute_type is not None and computes and compute_type.upper() not in computes:
            raise UsageError(f"unknown compute type {compute_type!r}")
        return cls(
            workspace_ids=unique,
            ids_file=ids_file,
            directory_id=directory_id,
            bundle_id=bundle_id,
            states=tuple(s.upper() for s in states),
            running_mode=running_mode.upper() if running_mode else None,
            compute_type=compute_type.upper() if compute_type else None,
            user=user,
            tags=tuple(_parse_tag(t) for t in tags),
            exclude_tags=tuple(_parse_tag(t) for t in exclude_tags),
            idle_days=idle_days,
        )

    @property
    def selects_all(self) -> bool:
        """No selector at all: every WorkSpace in the region."""
        return not (
            self.workspace_ids
            or self.directory_id
            or self.bundle_id
            or self.states
            or self.running_mode
            or self.compute_type
            or self.user
            or self.tags
            or self.idle_days
        )

    def as_dict(self) -> dict[str, Any]:
        """For the job record. A long id list is stored whole: resume needs no file."""
        data = asdict(self)
        return {key: value for key, value in data.items() if value not in (None, (), [])}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Targets:
        values = dict(data)
        for key in ("workspace_ids", "states"):
            if key in values:
                values[key] = tuple(values[key])
        for key in ("tags", "exclude_tags"):
            if key in values:
                values[key] = tuple(tuple(pair) for pair in values[key])
        return cls(**values)

    # -- local predicates (free) ----------------------------------------------------------

    def matches_locally(self, ws: Mapping[str, Any]) -> bool:
        props = ws.get("WorkspaceProperties") or {}
        if self.states and ws.get("State") not in self.states:
            return False
        if self.running_mode and props.get("RunningMode") != self.running_mode:
            return False
        if self.compute_type and props.get("ComputeTypeName") != self.compute_type:
            return False
        if self.bundle_id and ws.get("BundleId") != self.bundle_id:
            return False
        if self.directory_id and ws.get("DirectoryId") != self.directory_id:
            return False
        return not (
            self.user
            and not fnmatch.fnmatchcase(str(ws.get("UserName", "")).lower(), self.user.lower())
        )

    @property
    def needs_tags(self) -> bool:
        return bool(self.tags or self.exclude_tags)

    def matches_tags(self, tags: Mapping[str, str]) -> bool:
        if any(tags.get(key) != value for key, value in self.tags):
            return False
        return not any(tags.get(key) == value for key, value in self.exclude_tags)


def _enum_values(shape: str) -> frozenset[str]:
    from fleetops.aws.model import service_model

    try:
        return frozenset(service_model().shape_for(shape).enum or ())
    except Exception:
        return frozenset()


@dataclass
class Candidate:
    """A WorkSpace that passed the selectors, with what the plan learned about it."""

    workspace: Workspace
    connection_state: str | None = None
    last_connection: float | None = None
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def workspace_id(self) -> str:
        return str(self.workspace["WorkspaceId"])


def _is_plain(user: str) -> bool:
    return not any(ch in user for ch in "*?[")


async def _describe_pages(targets: Targets, call: CallFn) -> AsyncIterator[list[Workspace]]:
    """Raw DescribeWorkspaces pages, by the cheapest route."""
    if targets.workspace_ids:
        size = list_member_max("DescribeWorkspaces", "WorkspaceIds")
        ids = targets.workspace_ids
        for start in range(0, len(ids), size):
            chunk = list(ids[start : start + size])
            response = await call("DescribeWorkspaces", chunk, WorkspaceIds=chunk)
            yield list(response.get("Workspaces", []))
        return
    params: dict[str, Any] = {"Limit": integer_member_max("DescribeWorkspaces", "Limit")}
    if targets.directory_id:
        params["DirectoryId"] = targets.directory_id
        if targets.user and _is_plain(targets.user):
            params["UserName"] = targets.user
    elif targets.bundle_id:
        params["BundleId"] = targets.bundle_id
    token: str | None = None
    while True:
        if token:
            params["NextToken"] = token
        response = await call("DescribeWorkspaces", (), **params)
        yield list(response.get("Workspaces", []))
        token = response.get("NextToken")
        if not token:
            return


#: Candidates held in one chunk at most (when few of them need a connection-status lookup).
CHUNK_MAX = 500


async def select_chunks(
    targets: Targets, call: CallFn, *, counts: Callable[[Candidate], bool] | None = None
) -> AsyncGenerator[list[Candidate], None]:
    """The WorkSpaces that pass the free, local selectors, in chunks holding at most 25 that
    ``counts`` accepts (every candidate when None): one full DescribeWorkspacesConnectionStatus
    call's worth, the others riding along. Ids given explicitly but not found come last, as
    candidates whose ``State`` is ``"NOT_FOUND"``."""
    wanted_ids = set(targets.workspace_ids)
    size = list_member_max("DescribeWorkspacesConnectionStatus", "WorkspaceIds")
    pending: list[Candidate] = []
    counted = 0
    async for page in _describe_pages(targets, call):
        for ws in page:
            wanted_ids.discard(str(ws.get("WorkspaceId")))
            if not targets.matches_locally(ws):
                continue
            cand = Candidate(workspace=ws)
            pending.append(cand)
            counted += 1 if counts is None or counts(cand) else 0
            if counted >= size or len(pending) >= CHUNK_MAX:
                yield pending
                pending, counted = [], 0
    if pending:
        yield pending
    if wanted_ids:
        missing = [
            Candidate(workspace={"WorkspaceId": ws_id, "State": "NOT_FOUND"})
            for ws_id in targets.workspace_ids
            if ws_id in wanted_ids
        ]
        for start in range(0, len(missing), 500):
            yield missing[start : start + 500]


async def enrich(
    targets: Targets,
    chunk: list[Candidate],
    call: CallFn,
    *,
    want_connection: bool = False,
    status_for: Callable[[Candidate], bool] | None = None,
    now: Callable[[], float] = time.time,
) -> list[Candidate]:
    """Apply the selectors that cost calls to one chunk, cheapest first.

    ``want_connection`` asks for connection state too (the connected-user guardrail), for the
    candidates ``status_for`` accepts (those the action would act on); idleness asks for it
    anyway. A status call answers 25 WorkSpaces and a DescribeTags one: idleness filters before
    tags are fetched; otherwise tags filter before statuses are asked.
    """
    need_status = want_connection or targets.idle_days is not None

    async def fetch_tags(chunk: list[Candidate]) -> list[Candidate]:
        kept = []
        for cand in chunk:
            ws_id = cand.workspace_id
            try:
                response = await call("DescribeTags", [ws_id], ResourceId=ws_id)
            except AwsError as exc:
                if exc.code == "ResourceNotFoundException":
                    continue  # terminated since it was described: nothing to select
                raise
            cand.tags = {t["Key"]: t.get("Value", "") for t in response.get("TagList", [])}
            if targets.matches_tags(cand.tags):
                kept.append(cand)
        return kept

    async def fetch_status(chunk: list[Candidate]) -> None:
        ids = [
            c.workspace_id
            for c in chunk
            if c.workspace.get("State") != "NOT_FOUND"
            and (targets.idle_days is not None or status_for is None or status_for(c))
        ]
        if not ids:
            return
        response = await call("DescribeWorkspacesConnectionStatus", ids, WorkspaceIds=ids)
        by_id = {s["WorkspaceId"]: s for s in response.get("WorkspacesConnectionStatus", [])}
        for cand in chunk:
            status = by_id.get(cand.workspace_id)
            if status is not None:
                cand.connection_state = status.get("ConnectionState")
                cand.last_connection = epoch(status.get("LastKnownUserConnectionTimestamp"))

    def idle(chunk: list[Candidate]) -> list[Candidate]:
        horizon = now() - (targets.idle_days or 0) * 86400
        return [
            c
            for c in chunk
            if c.workspace.get("State") == "NOT_FOUND"
            or (
                c.connection_state != "CONNECTED"
                and (c.last_connection is None or c.last_connection <= horizon)
            )
        ]

    if targets.idle_days is not None:
        await fetch_status(chunk)
        chunk = idle(chunk)
    if targets.needs_tags:
        chunk = await fetch_tags(chunk)
    if need_status and targets.idle_days is None and chunk:
        await fetch_status(chunk)
    return chunk


async def resolve(
    targets: Targets,
    call: CallFn,
    *,
    want_connection: bool = False,
    status_for: Callable[[Candidate], bool] | None = None,
    now: Callable[[], float] = time.time,
) -> AsyncIterator[list[Candidate]]:
    """Stream the selected WorkSpaces, a chunk at a time (never the whole fleet in memory), one
    call after the other. The planner runs :func:`select_chunks` and :func:`enrich` as a
    pipeline instead; this is the simple form, for callers that need no speed."""
    async for chunk in select_chunks(targets, call):
        out = await enrich(
            targets, chunk, call, want_connection=want_connection, status_for=status_for, now=now
        )
        if out:
            yield out


def epoch(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    timestamp = getattr(value, "timestamp", None)
    if callable(timestamp):
        return float(timestamp())
    return None
