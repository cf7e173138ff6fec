"""Selectors → a stream of WorkSpaces, using the cheapest calls that answer them.

Each selector is declared once, as a field of :class:`Targets` (a :class:`Selector`: its
flag, its kind of value, its help, how it filters); the ``run`` flags, the job file's
``targets`` fields, the run request's keywords and the job's recorded targets are generated
from these declarations, so a new selector is one field.

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
import logging
import time
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import aclosing
from dataclasses import asdict, dataclass, field, fields, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

import anyio
from anyio.abc import TaskGroup

from fleetops.aws.codes import split_code
from fleetops.aws.model import integer_member_max, list_member_max, member_pattern
from fleetops.errors import AwsError, CredentialsError, UsageError

log = logging.getLogger(__name__)

__all__ = [
    "SELECTORS",
    "SELECTOR_BY_KEY",
    "SELECTOR_KEYS",
    "Candidate",
    "Selector",
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


def _enum_values(shape: str) -> frozenset[str]:
    from fleetops.aws.model import service_model

    try:
        return frozenset(service_model().shape_for(shape).enum or ())
    except Exception:
        return frozenset()


# -- the selectors -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Selector:
    """One target selector, declared once (as a field of :class:`Targets`) for every front end.

    ``key`` is its name everywhere but the command line: the :class:`Targets` field, the job
    file's ``targets.<key>``, the keyword of :meth:`Targets.build` and of a run request's
    ``selectors``, the key of the job's recorded ``targets``. ``flag`` is the ``run`` flag and
    ``help`` its help. ``kind`` says how a value is read (each front end knows the kinds, as for
    :class:`~fleetops.catalogue.actions.Param`): ``workspace_ids``, ``states`` and ``pairs``
    (KEY=VALUE) are repeatable; ``path``, ``directory_id``, ``bundle_id``, ``running_mode``,
    ``compute_type``, ``text`` and ``days`` (a positive number) are one value.

    How it filters: ``matches`` checks a described WorkSpace locally (free); ``matches_tags``
    checks its tags (one DescribeTags per WorkSpace, asked for the survivors only). The
    selectors that choose the DescribeWorkspaces route (ids, directory, bundle, a plain user
    name) and idleness (connection status) are read by name where those calls are made.
    ``narrows`` is False for a selector that alone does not narrow "every WorkSpace" (an
    opt-out, or the ids file whose ids are the ``workspace_ids``).
    """

    flag: str
    kind: str
    help: str
    matches: Callable[[Any, Mapping[str, Any]], bool] | None = None
    matches_tags: Callable[[Any, Mapping[str, str]], bool] | None = None
    narrows: bool = True
    key: str = ""  # the field's name, set when the catalogue is read

    @property
    def repeatable(self) -> bool:
        return self.kind in _REPEATABLE

    def read(self, raw: Any) -> Any:
        """A raw value (a flag's, a job file's) → the :class:`Targets` field's value; a value
        that cannot be read is a :class:`UsageError`."""
        return _READERS[self.kind](self, raw)

    def restore(self, recorded: Any) -> Any:
        """The value as recorded (JSON: lists) → the field's value (tuples)."""
        if self.kind == "pairs":
            return tuple(tuple(pair) for pair in recorded)
        return tuple(recorded) if self.repeatable else recorded

    def unread(self, value: Any) -> Any:
        """The field's value → a raw value :meth:`read` takes back (tags as ``K=V``)."""
        if self.kind == "pairs":
            return [f"{key}={item}" for key, item in value]
        return list(value) if self.repeatable else value


_REPEATABLE = frozenset({"workspace_ids", "states", "pairs"})


def _enum_reader(shape: str, what: str, *, list_known: bool = False) -> Callable[[str], str]:
    def read(value: str) -> str:
        known = _enum_values(shape)
        if known and value.upper() not in known:
            listed = f" ({', '.join(sorted(known))})" if list_known else ""
            raise UsageError(f"unknown {what} {value!r}{listed}")
        return value.upper()

    return read


def _positive_days(selector: Selector, value: Any) -> Any:
    if value <= 0:
        raise UsageError(f"{selector.flag} must be a positive number of days")
    return value


_read_state = _enum_reader("WorkspaceState", "WorkSpace state")
_read_running_mode = _enum_reader("RunningMode", "running mode", list_known=True)
_read_compute_type = _enum_reader("Compute", "compute type")

#: How each kind of selector value is read (and checked).
_READERS: dict[str, Callable[[Selector, Any], Any]] = {
    "workspace_ids": lambda _, ids: tuple(validate_workspace_id(i) for i in ids),
    "path": lambda _, path: str(path),
    "directory_id": lambda _, value: validate_directory_id(value),
    "bundle_id": lambda _, value: validate_bundle_id(value),
    "states": lambda _, states: tuple(_read_state(s) for s in states),
    "running_mode": lambda _, value: _read_running_mode(value),
    "compute_type": lambda _, value: _read_compute_type(value),
    "text": lambda _, value: value,
    "pairs": lambda _, pairs: tuple(_parse_tag(t) for t in pairs),
    "days": _positive_days,
}


def _selector(
    flag: str,
    kind: str,
    help: str,
    *,
    matches: Callable[[Any, Mapping[str, Any]], bool] | None = None,
    matches_tags: Callable[[Any, Mapping[str, str]], bool] | None = None,
    narrows: bool = True,
) -> Any:
    """A :class:`Targets` field that is a selector; its default is "not given"."""
    declared = Selector(flag, kind, help, matches, matches_tags, narrows)
    return field(default=() if kind in _REPEATABLE else None, metadata={"selector": declared})


def _member_is(member: str) -> Callable[[Any, Mapping[str, Any]], bool]:
    return lambda value, ws: ws.get(member) == value


def _property_is(prop: str) -> Callable[[Any, Mapping[str, Any]], bool]:
    return lambda value, ws: (ws.get("WorkspaceProperties") or {}).get(prop) == value


def _state_in(states: tuple[str, ...], ws: Mapping[str, Any]) -> bool:
    return ws.get("State") in states


def _user_matches(glob: str, ws: Mapping[str, Any]) -> bool:
    return fnmatch.fnmatchcase(str(ws.get("UserName", "")).lower(), glob.lower())


def _has_tags(pairs: tuple[tuple[str, str], ...], tags: Mapping[str, str]) -> bool:
    return all(tags.get(key) == value for key, value in pairs)


def _lacks_tags(pairs: tuple[tuple[str, str], ...], tags: Mapping[str, str]) -> bool:
    return not any(tags.get(key) == value for key, value in pairs)


@dataclass(frozen=True)
class Targets:
    """Which WorkSpaces a job is about. Selectors combine with AND.

    Each field is a selector, declared here once (:class:`Selector`): the ``run`` flags, the job
    file's ``targets`` fields and the job's recorded targets are made from these fields, in
    this order, and nothing else. A new selector is one field.
    """

    workspace_ids: tuple[str, ...] = _selector(
        "--workspace-id", "workspace_ids", "A WorkSpace id (repeatable)."
    )
    #: Recorded for history; its ids are in ``workspace_ids`` (resume needs no file).
    ids_file: str | None = _selector(
        "--ids-file", "path", "A file of WorkSpace ids, one a line, # comments.", narrows=False
    )
    directory_id: str | None = _selector(
        "--directory-id", "directory_id", "Select a directory.", matches=_member_is("DirectoryId")
    )
    bundle_id: str | None = _selector(
        "--bundle-id", "bundle_id", "Select a bundle.", matches=_member_is("BundleId")
    )
    states: tuple[str, ...] = _selector(
        "--state", "states", "Select a state (repeatable).", matches=_state_in
    )
    running_mode: str | None = _selector(
        "--running-mode",
        "running_mode",
        "Select a running mode (modify: the new running mode).",
        matches=_property_is("RunningMode"),
    )
    compute_type: str | None = _selector(
        "--compute-type",
        "compute_type",
        "Select a compute type (modify: the new one).",
        matches=_property_is("ComputeTypeName"),
    )
    user: str | None = _selector("--user", "text", "Select users by glob.", matches=_user_matches)
    tags: tuple[tuple[str, str], ...] = _selector(
        "--tag", "pairs", "Select by tag K=V (repeatable).", matches_tags=_has_tags
    )
    exclude_tags: tuple[tuple[str, str], ...] = _selector(
        "--exclude-tag",
        "pairs",
        "Leave out tag K=V (opt-out).",
        matches_tags=_lacks_tags,
        narrows=False,
    )
    idle_days: float | None = _selector(
        "--idle-days", "days", "Select WorkSpaces unused for N days."
    )

    @classmethod
    def build(cls, **given: Any) -> Targets:
        """Validate raw selector values (from flags or a job file), keyed by
        :attr:`Selector.key`; None or empty is not given. The ids of ``ids_file`` join the
        ``workspace_ids`` (duplicates dropped, order kept)."""
        unknown = sorted(given.keys() - SELECTOR_KEYS)
        if unknown:
            raise TypeError(f"Targets.build() got an unexpected keyword argument {unknown[0]!r}")
        values: dict[str, Any] = {}
        for selector in SELECTORS:
            raw = given.get(selector.key)
            if raw is not None and raw != () and raw != []:
                values[selector.key] = selector.read(raw)
        ids = list(values.get("workspace_ids", ()))
        ids_file = values.get("ids_file")
        if ids_file is not None:
            ids.extend(read_ids_file(ids_file))
            if not ids:
                raise UsageError(f"ids file {ids_file} holds no WorkSpace ids")
        if ids:
            values["workspace_ids"] = tuple(dict.fromkeys(ids))
        return cls(**values)

    def _given(self) -> Iterator[tuple[Selector, Any]]:
        """The selectors given, with their values."""
        for selector in SELECTORS:
            value = getattr(self, selector.key)
            if value:
                yield selector, value

    @property
    def selects_all(self) -> bool:
        """No selector at all: every WorkSpace in the region."""
        return not any(selector.narrows for selector, _ in self._given())

    def as_dict(self) -> dict[str, Any]:
        """For the job record. A long id list is stored whole: resume needs no file."""
        data = asdict(self)
        return {key: value for key, value in data.items() if value not in (None, (), [])}

    def as_raw(self) -> dict[str, Any]:
        """The selectors given, as :meth:`build` takes them (a job file's, that flags override)."""
        return {key: SELECTOR_BY_KEY[key].unread(value) for key, value in self.as_dict().items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Targets:
        known = SELECTOR_BY_KEY
        return cls(**{k: known[k].restore(v) if k in known else v for k, v in data.items()})

    # -- filters (called once per WorkSpace described: the selectors given are found once) -----

    @cached_property
    def _local_checks(self) -> tuple[tuple[Callable[[Any, Mapping[str, Any]], bool], Any], ...]:
        return tuple((s.matches, value) for s, value in self._given() if s.matches is not None)

    @cached_property
    def _tag_checks(self) -> tuple[tuple[Callable[[Any, Mapping[str, str]], bool], Any], ...]:
        return tuple(
            (s.matches_tags, value) for s, value in self._given() if s.matches_tags is not None
        )

    def matches_locally(self, ws: Mapping[str, Any]) -> bool:
        """Does a described WorkSpace pass the free, local selectors?"""
        for check, value in self._local_checks:  # a loop: twice as fast as all() over a genexpr
            if not check(value, ws):
                return False
        return True

    @property
    def needs_tags(self) -> bool:
        return bool(self._tag_checks)

    def matches_tags(self, tags: Mapping[str, str]) -> bool:
        return all(check(value, tags) for check, value in self._tag_checks)


#: Every selector, in the order of the ``run`` flags and the job file's fields.
SELECTORS: tuple[Selector, ...] = tuple(
    replace(f.metadata["selector"], key=f.name) for f in fields(Targets)
)
SELECTOR_KEYS = frozenset(selector.key for selector in SELECTORS)
SELECTOR_BY_KEY: dict[str, Selector] = {selector.key: selector for selector in SELECTORS}


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


#: DescribeWorkspaces calls a plan keeps going at once (id chunks, or one page stream a
#: directory); the scope's call slots and the quota bound them further.
PAGE_STREAMS = 4


async def _describe_pages(targets: Targets, call: CallFn) -> AsyncGenerator[list[Workspace], None]:
    """Raw DescribeWorkspaces pages, by the cheapest route, read in parallel streams: id chunks
    when the ids are known, one stream a directory for the whole fleet. The order is the same
    whatever the timing: the chunks' order; the directories' pages taken in turn."""
    if targets.workspace_ids:
        size = list_member_max("DescribeWorkspaces", "WorkspaceIds")
        ids = targets.workspace_ids
        chunks = [list(ids[start : start + size]) for start in range(0, len(ids), size)]
        async with aclosing(_in_order(chunks, call, PAGE_STREAMS)) as pages:
            async for page in pages:
                yield page
        return
    params: dict[str, Any] = {"Limit": integer_member_max("DescribeWorkspaces", "Limit")}
    if targets.directory_id:
        params["DirectoryId"] = targets.directory_id
        if targets.user and _is_plain(targets.user):
            params["UserName"] = targets.user
    elif targets.bundle_id:
        params["BundleId"] = targets.bundle_id
    else:
        directories = await _directories(call)
        if len(directories) > 1:
            async with aclosing(_in_turn(directories, params, call, PAGE_STREAMS)) as turns:
                async for page in turns:
                    yield page
            return
    async with aclosing(_paged(call, params)) as pages:
        async for page in pages:
            yield page


async def _listing(
    call: CallFn, operation: str, key: str, params: Mapping[str, Any]
) -> AsyncGenerator[list[Any], None]:
    """One listing of ``operation``, page after page (NextToken): each page's ``key`` list."""
    params = dict(params)
    while True:
        response = await call(operation, (), **params)
        yield list(response.get(key, []))
        token = response.get("NextToken")
        if not token:
            return
        params["NextToken"] = token


def _paged(call: CallFn, params: Mapping[str, Any]) -> AsyncGenerator[list[Workspace], None]:
    """One DescribeWorkspaces listing, page after page."""
    return _listing(call, "DescribeWorkspaces", "Workspaces", params)


async def _directories(call: CallFn) -> list[str]:
    """The registered directories' ids, or [] when they cannot be listed (the whole fleet is
    then read as one listing: a role may lack DescribeWorkspaceDirectories)."""
    found: list[str] = []
    try:
        pages = _listing(call, "DescribeWorkspaceDirectories", "Directories", {})
        async with aclosing(pages):
            async for page in pages:
                found += [str(d["DirectoryId"]) for d in page]
        return found
    except CredentialsError:
        raise  # the job pauses, as for any call
    except AwsError as exc:
        log.info("directories not listed (%s): the fleet is read as one listing", exc)
        return []


async def _in_order(
    chunks: list[list[str]], call: CallFn, streams: int
) -> AsyncGenerator[list[Workspace], None]:
    """Each chunk of ids described, ``streams`` at a time, yielded in the chunks' order."""
    results: dict[int, list[Workspace]] = {}
    ready = {i: anyio.Event() for i in range(len(chunks))}
    window = anyio.Semaphore(streams)

    async def describe(index: int) -> None:
        chunk = chunks[index]
        response = await call("DescribeWorkspaces", chunk, WorkspaceIds=chunk)
        results[index] = list(response.get("Workspaces", []))
        ready[index].set()

    async def feed(tg: TaskGroup) -> None:
        for index in range(len(chunks)):
            await window.acquire()  # released as its page is yielded: memory stays bounded
            tg.start_soon(describe, index)

    async with anyio.create_task_group() as tg:
        tg.start_soon(feed, tg)
        for index in range(len(chunks)):
            await ready[index].wait()
            window.release()
            yield results.pop(index)


async def _in_turn(
    directories: list[str], params: Mapping[str, Any], call: CallFn, streams: int
) -> AsyncGenerator[list[Workspace], None]:
    """Each directory's pages read by a stream of its own (``streams`` at a time, a page or two
    ahead), yielded in turn: the first page of each directory, then the second, …"""
    gate = anyio.Semaphore(streams)
    queues = []

    async def gated(operation: str, ids: Any, /, **kw: Any) -> Mapping[str, Any]:
        async with gate:  # at most ``streams`` pages asked at once, whatever the directories
            return await call(operation, ids, **kw)

    async def read(directory: str, send: Any) -> None:
        async with send, aclosing(_paged(gated, {**params, "DirectoryId": directory})) as pages:
            async for page in pages:
                await send.send(page)

    async with anyio.create_task_group() as tg:
        for directory in directories:
            send, receive = anyio.create_memory_object_stream[list[Workspace]](1)
            queues.append(receive)
            tg.start_soon(read, directory, send)
        while queues:
            for receive in list(queues):
                try:
                    page = await receive.receive()
                except anyio.EndOfStream:
                    queues.remove(receive)
                    receive.close()
                    continue
                yield page


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
    async with aclosing(_describe_pages(targets, call)) as pages:
        async for page in pages:
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
                if split_code(exc.code)[0] == "ResourceNotFound":
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
