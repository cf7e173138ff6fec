"""The action catalogue: one :class:`ActionSpec` per fleet action.

Everything here is pure data and pure functions of data: which WorkSpaces are eligible, which
calls one batch needs and how their answer reads, which API batch size applies (read from
botocore's model), which WorkSpaces to describe to verify an item and what their description
means, and what counts as evidence that a call happened when a job resumes after a crash. The
runner is generic over these specs; the actions that differ from the plain "one call over a list
of WorkSpace ids, then watch their state" shape override a few methods:

    migrate      one call per WorkSpace; the answer names a new WorkSpace, which is verified;
                 reconciled by looking for the user's WorkSpace with the target bundle
    modify       skipped when already as wanted; verified by reading the properties back
    maintenance  ModifyWorkspaceState; eligibility depends on on|off
    tag          CreateTags and/or DeleteTags, one WorkSpace per call; no transition to verify
    create       rows of a CSV (placeholder keys ``new:<directory>/<user>``); PendingRequests
                 followed to AVAILABLE, FailedRequests recorded per row
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from fleetops.aws.model import list_member_max, member_pattern, service_model
from fleetops.catalogue.recipes import (
    ANY_SCOPE,
    DEFAULT_SETTLE,
    ladder_of,
    parse_duration,
    parse_ladder,
    parse_scoped_ids,
    scoped_value,
)
from fleetops.errors import UsageError
from fleetops.states import UNVERIFIED

__all__ = [
    "ACTIONS",
    "GONE",
    "UNVERIFIED",
    "ActionSpec",
    "Outcome",
    "Param",
    "RecipeSpec",
    "Request",
    "RolloutSpec",
    "Verdict",
    "all_params",
    "create_key",
    "get_action",
    "read_users_csv",
]

#: The pseudo-state of a WorkSpace that DescribeWorkspaces no longer returns.
GONE = "GONE"
ALREADY_DESIRED = "already in the desired state"

Workspace = Mapping[str, Any]
Params = Mapping[str, Any]

_MANAGED_RUNNING_MODES = frozenset({"AUTO_STOP", "MANUAL"})
_BLOCKED_BY_MAINTENANCE = frozenset({"reboot", "start", "stop", "rebuild", "restore"})
_PAST = {"stop": "stopped", "start": "started"}


@dataclass(frozen=True)
class Verdict:
    """What one observation of an item's WorkSpace(s) means during verification.

    Describe calls are eventually consistent: right after an accepted call the old state can
    still show for a while, and a new WorkSpace can be "not found". So an item succeeds only on
    evidence observed after the call (``evidence``); the end state seen without any evidence yet
    (``unproven``) or a new WorkSpace not found yet (``missing``) is waited on, and only
    :meth:`ActionSpec.judge_in_time` turns those into an outcome once waiting longer cannot help.
    """

    done: bool
    succeeded: bool = False
    reason: str | None = None
    #: This observation proves the call took effect: the transitional state, an end state
    #: other than the resting state seen at plan time, the new properties read back, gone after
    #: terminate, the new WorkSpace found.
    evidence: bool = False
    #: Waiting: the end state shows but no evidence was ever seen — the call may not have
    #: started yet (a lagging Describe), or its transition was shorter than the polls.
    unproven: bool = False
    #: Waiting: the new WorkSpace (create, migrate) is not found (yet).
    missing: bool = False
    #: Done, succeeded, but never verified: the end state was reached and no evidence came in
    #: the time it should have (recorded with the error code :data:`UNVERIFIED`).
    unverified: bool = False


_WAIT = Verdict(done=False)
_WAIT_EVIDENCE = Verdict(done=False, evidence=True)
_WAIT_UNPROVEN = Verdict(done=False, unproven=True)
_WAIT_MISSING = Verdict(done=False, missing=True)
_OK = Verdict(done=True, succeeded=True, evidence=True)

#: States a WorkSpace leaves by itself: an end state reached from one of these (a reboot that
#: was under way at plan time, say) is not evidence of this job's call.
_MOVING_STATES = frozenset(
    {
        "PENDING",
        "STARTING",
        "REBOOTING",
        "REBUILDING",
        "RESTORING",
        "STOPPING",
        "UPDATING",
        "TERMINATING",
        "MAINTENANCE",
    }
)


def _resting_change(state: str, prev_state: str | None) -> bool:
    """Is ``state`` a change from the resting state seen at plan time (evidence)?"""
    return prev_state is not None and prev_state not in _MOVING_STATES and state != prev_state


@dataclass(frozen=True)
class Request:
    """One API call of a batch: the operation and its parameters."""

    operation: str
    params: dict[str, Any]


@dataclass(frozen=True)
class Outcome:
    """What an accepted call's answer says per item key: failures, and results (new ids)."""

    failed: dict[str, tuple[str, str]]
    results: dict[str, str]


def _state(ws: Workspace | None) -> str:
    return GONE if ws is None else str(ws.get("State", ""))


def _running_mode(ws: Workspace) -> str | None:
    props = ws.get("WorkspaceProperties") or {}
    mode = props.get("RunningMode")
    return str(mode) if mode is not None else None


def _failed_requests(response: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    return {
        str(f.get("WorkspaceId")): (
            str(f.get("ErrorCode") or "Unknown"),
            str(f.get("ErrorMessage") or ""),
        )
        for f in response.get("FailedRequests") or []
    }


@dataclass(frozen=True)
class Param:
    """One parameter of an action, named once for every front end.

    ``key`` is its name in a job's params and in a job file's ``params``; ``flag`` the ``run``
    flag that sets it (empty: the positional argument after the action, as in
    ``maintenance on``); ``kind`` says how a value is read (each front end knows the kinds:
    ``text``, ``int``, ``bundle_id``, ``running_mode``, ``compute_type``, ``protocols``,
    ``on_off``, ``pairs`` (KEY=VALUE, repeatable), ``keys`` (repeatable), ``path``).
    ``what`` and ``hint`` word the messages (``migrate needs --to-bundle wsb-…``).
    """

    key: str
    flag: str
    kind: str
    what: str
    hint: str

    @property
    def positional(self) -> bool:
        return not self.flag

    def as_flag(self) -> str:
        return self.hint if self.positional else f"{self.flag} {self.hint}"

    def as_field(self) -> str:
        return f"params.{self.key}"

    def read(self, value: Any) -> Any:
        """A flag's raw value → the job's parameter (``set`` a mapping, ``maintenance`` a
        bool, a path absolute); a value that cannot be read is a :class:`UsageError`."""
        if self.kind == "on_off":
            mode = str(value).strip().lower()
            if mode not in ("on", "off"):
                raise UsageError(f"{self.key} takes on or off, not {value!r}")
            return mode == "on"
        if self.kind == "pairs":
            pairs: dict[str, str] = {}
            for text in value:
                key, sep, item = str(text).partition("=")
                if not sep or not key:
                    raise UsageError(f"{self.flag} {text!r} must be KEY=VALUE")
                pairs[key] = item
            return pairs
        if self.kind == "keys":
            return [str(item) for item in value]
        if self.kind == "path":
            return str(Path(value).expanduser().resolve())
        if self.kind == "ladder":
            return parse_ladder(value)
        if self.kind == "duration":
            return parse_duration(value)
        if self.kind == "switch":
            return bool(value)
        if self.kind == "scoped_ids":
            return parse_scoped_ids(self.flag, value)
        return value


_MODIFY_PARAMS = (
    Param("running_mode", "--running-mode", "running_mode", "the new running mode", "MODE"),
    Param("auto_stop_timeout", "--auto-stop-timeout", "int", "auto-stop timeout, min", "MIN"),
    Param("compute_type", "--compute-type", "compute_type", "the new compute type", "TYPE"),
    Param("root_volume", "--root-volume", "int", "root volume size", "GIB"),
    Param("user_volume", "--user-volume", "int", "user volume size", "GIB"),
    Param("protocols", "--protocols", "protocols", "streaming protocols", "PCOIP|WSP"),
)


@dataclass(frozen=True)
class ActionSpec:
    """One fleet action.

    ``operation``/``request_member`` name the API call and its list member (None for the
    one-WorkSpace-per-call operations, whose request is the parameters themselves).
    """

    name: str
    operation: str
    request_member: str | None
    eligible_states: frozenset[str]
    transitional_states: frozenset[str]
    end_states: frozenset[str]
    evidence_states: frozenset[str]
    destructive: bool = False
    interrupts_session: bool = False
    needs_snapshot: bool = False
    gone_is_success: bool = False
    running_modes: frozenset[str] | None = None  # None: any running mode
    already_done_states: frozenset[str] = frozenset()
    failure_states: frozenset[str] = frozenset({"ERROR", "UNHEALTHY"})
    #: A call that fails ambiguously (time-out, 5xx after retries) may simply be sent again.
    #: False for the destructive actions and for create (a second create is a second WorkSpace).
    retry_safe: bool = True
    #: Accepted calls are verified by describing the WorkSpace(s) until they settle.
    verifies: bool = True
    #: Resume finds evidence by DescribeWorkspaces(DirectoryId, UserName), not by id.
    reconcile_by_user: bool = False
    #: Which snapshot list guards the action (RebuildSnapshots hold the user volume).
    snapshot_kind: str = "RebuildSnapshots"
    #: What the action takes besides its targets: the CLI's flags and the job file's
    #: ``params`` are made from this, and nothing else.
    params: tuple[Param, ...] = ()
    #: ``all``: every param is needed; ``any``: at least one.
    requires: str = "all"
    #: One line for ``run --help``.
    summary: str = ""
    #: The states selected when a run names neither states nor WorkSpaces (recover: UNHEALTHY).
    default_states: tuple[str, ...] = ()

    # -- the catalogue: parameters, flags, fields, messages -----------------------------------

    def param(self, key: str) -> Param | None:
        return next((p for p in self.params if p.key == key), None)

    def missing_params(self, given: Set[str], *, style: str = "flag") -> str | None:
        """The message for parameters that ``given`` lacks (None: enough are given).
        ``style`` ``flag`` words it for the command line, ``field`` for a job file."""
        if not self.params:
            return None
        keys = {p.key for p in self.params}
        if self.requires == "any" and given & keys:
            return None
        if self.requires == "all" and keys <= given:
            return None
        lacking = [p for p in self.params if p.key not in given] if self.requires == "all" else []
        if style == "field":
            if lacking and len(self.params) == 1:
                p = lacking[0]
                return f"{self.name} needs {p.as_field()} ({p.what}, {p.hint})"
            names = [p.as_field() for p in self.params]
        else:
            if lacking and len(self.params) == 1:
                p = lacking[0]
                usage = f" (fleetops run {self.name} {p.hint} ...)" if p.positional else ""
                return f"{self.name} needs {p.as_flag()}{usage}"
            names = [p.as_flag() for p in self.params]
        if len(names) == 2:
            return f"{self.name} needs {names[0]} and/or {names[1]}"
        return f"{self.name} needs at least one of {', '.join(names)}"

    def unknown_param(self, key: str, *, style: str = "flag") -> str:
        """The message for a parameter that does not belong to this action."""
        if style == "field":
            takes = (
                f"takes {', '.join(sorted(p.key for p in self.params))}"
                if self.params
                else "takes no params"
            )
            return f"not a parameter of {self.name} ({takes})"
        found = next((p for p in all_params() if p.key == key), None)
        shown = (found.flag or repr(found.hint)) if found is not None else key
        return f"{shown} does not apply to {self.name}"

    def params_from(self, values: Mapping[str, Any], *, partial: bool = False) -> dict[str, Any]:
        """Raw flag values (keyed by :attr:`Param.key`; None or empty: not given) → the job's
        params. A value for another action's parameter is refused; ``partial`` (flags over a
        job file's params) requires nothing."""
        given = {k: v for k, v in values.items() if v not in (None, [], ())}
        out: dict[str, Any] = {}
        for key in sorted(given):
            param = self.param(key)
            if param is None:
                raise UsageError(self.unknown_param(key))
            out[key] = param.read(given[key])
        if not partial:
            missing = self.missing_params(set(out))
            if missing is not None:
                raise UsageError(missing)
        return out

    # -- batching --------------------------------------------------------------------------

    @property
    def max_batch(self) -> int:
        """How many WorkSpaces one call may carry, from botocore's service model (a scalar
        WorkSpace member, as in RestoreWorkspace or CreateTags, is one per call)."""
        if self.request_member is None:
            return 1
        return list_member_max(self.operation, self.request_member)

    @property
    def batchable(self) -> bool:
        return self.request_member is not None

    def calls_per_batch(self, params: Params) -> int:
        return 1

    def entry(self, key: str, params: Params, row: Mapping[str, Any] | None) -> dict[str, Any]:
        """One WorkSpace's entry of the request (the whole request for a scalar operation)."""
        return {"WorkspaceId": key}

    def build_request(self, workspace_ids: list[str], params: Params) -> dict[str, Any]:
        """The API parameters for one call over ``workspace_ids``."""
        return self.requests(workspace_ids, params, {})[0].params

    def requests(
        self, keys: Sequence[str], params: Params, rows: Mapping[str, Mapping[str, Any]]
    ) -> list[Request]:
        """The calls, in order, that act on one batch of item keys."""
        if self.request_member is None:
            if len(keys) != 1:
                raise ValueError(f"{self.operation} takes one WorkSpace per call")
            return [Request(self.operation, self.entry(keys[0], params, rows.get(keys[0])))]
        entries = [self.entry(key, params, rows.get(key)) for key in keys]
        return [Request(self.operation, {self.request_member: entries})]

    def interpret(self, keys: Sequence[str], response: Mapping[str, Any]) -> Outcome:
        """Per-item failures (FailedRequests) and results of an accepted call."""
        return Outcome(failed=_failed_requests(response), results={})

    # -- planning --------------------------------------------------------------------------

    def validate_params(self, params: Params) -> None:
        """Raise :class:`UsageError` for parameters the action cannot use (before any write)."""
        missing = self.missing_params({k for k, v in params.items() if v not in (None, "", [], {})})
        if missing is not None:
            raise UsageError(missing)

    def refused_options(self, waves: bool, no_wait: bool) -> str | None:
        """Why the job options given (``--waves``, ``--no-wait``) do not apply to this action
        (None: they do)."""
        return None

    def interrupts(self, params: Params) -> bool:
        """Would acting end a connected user's session?"""
        return self.interrupts_session

    def targets_for(self, targets: Any, params: Params) -> Any:
        """The job's :class:`~fleetops.catalogue.targets.Targets` as the action reads them:
        :attr:`default_states` when a run names neither states nor WorkSpaces."""
        if self.default_states and not (targets.states or targets.workspace_ids):
            return replace(targets, states=self.default_states)
        return targets

    def targets_in(self, targets: Any, params: Params, scope: str) -> Any:
        """The targets the action reads in one scope (``"region"`` or ``"account/region"``) of
        the job: the job's own, but for an action whose params name an id per scope."""
        return targets

    def eligible_for(self, params: Params) -> frozenset[str]:
        return self.eligible_states

    def skip_reason(self, ws: Workspace, params: Params | None = None) -> str | None:
        """Why ``ws`` is not eligible for this action (None: eligible). Pure."""
        state = str(ws.get("State", ""))
        params = params or {}
        if state in self.already_done_states:
            return f"already {state}"
        if state == "ADMIN_MAINTENANCE" and self.name in _BLOCKED_BY_MAINTENANCE:
            return f"state ADMIN_MAINTENANCE blocks {self.name}"
        eligible = self.eligible_for(params)
        if state not in eligible:
            wanted = ", ".join(sorted(eligible))
            return f"state {state} is not eligible for {self.name} (needs {wanted})"
        if self.running_modes is not None:
            mode = _running_mode(ws)
            if mode not in self.running_modes:
                verb = _PAST.get(self.name, f"{self.name}ed")
                return f"running mode {mode} cannot be {verb} (needs AUTO_STOP or MANUAL)"
        return None

    # -- verification ----------------------------------------------------------------------

    def watch_ids(self, key: str, result: str | None) -> tuple[str, ...]:
        """The WorkSpaces to describe to verify an item (the first is the one judged)."""
        return (key,)

    def judge_observed(
        self,
        observed: Sequence[Workspace | None],
        prev_state: str | None,
        params: Params,
        seen: bool = True,
    ) -> Verdict:
        """What the descriptions of :meth:`watch_ids` (None: not found) mean, ``seen`` saying
        whether evidence was observed at an earlier poll since the call. Pure."""
        return self.judge(_state(observed[0]), prev_state, seen)

    def judge(self, state: str, prev_state: str | None, seen: bool = True) -> Verdict:
        """What observing ``state`` (or :data:`GONE`) after the call means. Pure.

        The end state succeeds only with evidence: seen earlier (``seen``), or the end state is
        itself a change from the resting state seen at plan time (start: STOPPED → AVAILABLE).
        The end state equal to the plan-time state without evidence (a reboot's AVAILABLE before
        REBOOTING ever showed) means "not started yet" as far as anyone can tell: ``unproven``.
        A failure state equal to the state seen at plan time may likewise mean the transition
        has not started yet, so it is waited on, not failed at once.
        """
        if state == GONE:
            if self.gone_is_success:
                return _OK
            return Verdict(done=True, succeeded=False, reason="the WorkSpace no longer exists")
        if state in self.transitional_states:
            return _WAIT_EVIDENCE
        if state in self.end_states:
            if seen or _resting_change(state, prev_state):
                return _OK
            return _WAIT_UNPROVEN
        # A failure state after evidence was seen (REBOOTING, then UNHEALTHY again) is the
        # action's failure too, whatever the state at plan time.
        if state in self.failure_states and (state != prev_state or seen):
            return Verdict(
                done=True, succeeded=False, reason=f"the WorkSpace went {state}", evidence=True
            )
        return _WAIT

    def judge_in_time(
        self,
        verdict: Verdict,
        observed: Sequence[Workspace | None],
        *,
        waited: float,
        evidence_wait: float,
        appear_wait: float,
    ) -> Verdict:
        """The waiting verdicts that ran out of time, ``waited`` seconds after the call. Pure.

        End state without evidence for ``evidence_wait`` seconds (well past when the transition
        should have shown): succeeded but :data:`UNVERIFIED`. A new WorkSpace still not found
        after ``appear_wait`` seconds: failed. Anything else is unchanged.
        """
        if verdict.done:
            return verdict
        if verdict.unproven and waited >= evidence_wait:
            state = _state(observed[0])
            return Verdict(
                done=True,
                succeeded=True,
                unverified=True,
                reason=(
                    f"{state} {int(waited)} s after the call, but no sign of the {self.name} was "
                    f"ever seen (no {'/'.join(sorted(self.transitional_states)) or 'change'}): "
                    "it may have been faster than the polls, or not have happened"
                ),
            )
        if verdict.missing and waited >= appear_wait:
            return Verdict(done=True, succeeded=False, reason=self.timeout_reason(observed, waited))
        return verdict

    def timeout_reason(self, observed: Sequence[Workspace | None], waited: float) -> str:
        return f"still {_state(observed[0])} {int(waited)} s after the call"

    # -- resume ----------------------------------------------------------------------------

    def has_evidence(self, state: str) -> bool:
        """On resume: does ``state`` prove that the in-flight call reached the API?"""
        if state == GONE:
            return self.gone_is_success
        return state in self.evidence_states

    def evidence(self, ws: Workspace | None, params: Params) -> bool:
        """On resume: does the WorkSpace's description prove the call reached the API?"""
        return self.has_evidence(_state(ws))

    def user_evidence(
        self, key: str, workspaces: Sequence[Workspace], params: Params
    ) -> str | None:
        """For :attr:`reconcile_by_user` actions: the id proving the call happened, or None."""
        return None

    # -- create ----------------------------------------------------------------------------

    def plan_rows(self, params: Params) -> list[dict[str, Any]] | None:
        """Items that come from the parameters instead of selectors (create), else None."""
        return None


# -- migrate -------------------------------------------------------------------------------


@dataclass(frozen=True)
class MigrateSpec(ActionSpec):
    def entry(self, key: str, params: Params, row: Mapping[str, Any] | None) -> dict[str, Any]:
        return {"SourceWorkspaceId": key, "BundleId": params["to_bundle"]}

    def validate_params(self, params: Params) -> None:
        super().validate_params(params)
        bundle = params.get("to_bundle")
        pattern = member_pattern("BundleId")
        if not isinstance(bundle, str) or (pattern and not pattern.fullmatch(bundle)):
            raise UsageError(f"migrate needs --to-bundle wsb-… (not {bundle!r})")

    def skip_reason(self, ws: Workspace, params: Params | None = None) -> str | None:
        if params and ws.get("BundleId") == params.get("to_bundle"):
            return f"already on bundle {params['to_bundle']}"
        return super().skip_reason(ws, params)

    def interpret(self, keys: Sequence[str], response: Mapping[str, Any]) -> Outcome:
        target = response.get("TargetWorkspaceId")
        if not target:
            return Outcome(
                failed={keys[0]: ("NoTargetWorkspace", "MigrateWorkspace named no new WorkSpace")},
                results={},
            )
        return Outcome(failed={}, results={keys[0]: str(target)})

    def watch_ids(self, key: str, result: str | None) -> tuple[str, ...]:
        return (result, key) if result else (key,)

    def judge_observed(
        self,
        observed: Sequence[Workspace | None],
        prev_state: str | None,
        params: Params,
        seen: bool = True,
    ) -> Verdict:
        """The new WorkSpace found is the evidence; not found, it may just not be visible yet
        (the source still there, or already gone): ``missing`` until the time runs out."""
        target = observed[0]
        if target is not None:
            state = _state(target)
            if state == "AVAILABLE" and target.get("BundleId") == params.get("to_bundle"):
                return _OK
            if state in self.failure_states:
                return Verdict(
                    done=True,
                    succeeded=False,
                    reason=f"the new WorkSpace went {state}",
                    evidence=True,
                )
            return _WAIT_EVIDENCE
        return _WAIT_MISSING

    def timeout_reason(self, observed: Sequence[Workspace | None], waited: float) -> str:
        target = observed[0]
        source = observed[1] if len(observed) > 1 else None
        if target is None and source is not None:
            return (
                f"migration did not happen: the source is still {_state(source)} on bundle "
                f"{source.get('BundleId')} {int(waited)} s after the call"
            )
        if target is None:
            return f"neither the new WorkSpace nor its source found {int(waited)} s after the call"
        return f"the new WorkSpace is still {_state(target)} {int(waited)} s after the call"

    def user_evidence(
        self, key: str, workspaces: Sequence[Workspace], params: Params
    ) -> str | None:
        for ws in workspaces:
            if ws.get("WorkspaceId") != key and ws.get("BundleId") == params.get("to_bundle"):
                return str(ws["WorkspaceId"])
        return None


# -- modify --------------------------------------------------------------------------------

_PROPERTY_OF = {
    "running_mode": "RunningMode",
    "auto_stop_timeout": "RunningModeAutoStopTimeoutInMinutes",
    "compute_type": "ComputeTypeName",
    "root_volume": "RootVolumeSizeGib",
    "user_volume": "UserVolumeSizeGib",
    "protocols": "Protocols",
}


def wanted_properties(params: Params) -> dict[str, Any]:
    """Job parameters → WorkspaceProperties (protocols as a list, enums upper-case)."""
    props: dict[str, Any] = {}
    for name, prop in _PROPERTY_OF.items():
        value = params.get(name)
        if value is None:
            continue
        if name == "protocols":
            parts = value.split(",") if isinstance(value, str) else list(value)
            value = [str(p).strip().upper() for p in parts if str(p).strip()]
        elif name in ("running_mode", "compute_type"):
            value = str(value).upper()
        else:
            value = int(value)
        props[prop] = value
    return props


def _differences(ws: Workspace, wanted: Mapping[str, Any]) -> list[str]:
    current = ws.get("WorkspaceProperties") or {}
    out = []
    for prop, value in wanted.items():
        have = current.get(prop)
        if prop == "Protocols":
            if sorted(have or []) != sorted(value):
                out.append(prop)
        elif have != value:
            out.append(prop)
    return out


@dataclass(frozen=True)
class ModifySpec(ActionSpec):
    def entry(self, key: str, params: Params, row: Mapping[str, Any] | None) -> dict[str, Any]:
        return {"WorkspaceId": key, "WorkspaceProperties": wanted_properties(params)}

    def validate_params(self, params: Params) -> None:
        super().validate_params(params)
        if not wanted_properties(params):
            raise UsageError("modify needs at least one property to change")

    def interrupts(self, params: Params) -> bool:
        # Changing the compute type restarts the WorkSpace; the other properties do not.
        return params.get("compute_type") is not None

    def skip_reason(self, ws: Workspace, params: Params | None = None) -> str | None:
        if ws.get("State") in self.eligible_states and not _differences(
            ws, wanted_properties(params or {})
        ):
            return ALREADY_DESIRED
        return super().skip_reason(ws, params)

    def judge_observed(
        self,
        observed: Sequence[Workspace | None],
        prev_state: str | None,
        params: Params,
        seen: bool = True,
    ) -> Verdict:
        """The new values read back are the evidence (they differed at plan time, or the item
        would have been skipped); the old ones mean "not applied yet", whatever the state."""
        ws = observed[0]
        state = _state(ws)
        if ws is None:
            return Verdict(done=True, succeeded=False, reason="the WorkSpace no longer exists")
        if state in self.transitional_states:
            return _WAIT_EVIDENCE
        if not _differences(ws, wanted_properties(params)):
            return _OK
        # A failure state after evidence was seen (REBOOTING, then UNHEALTHY again) is the
        # action's failure too, whatever the state at plan time.
        if state in self.failure_states and (state != prev_state or seen):
            return Verdict(
                done=True, succeeded=False, reason=f"the WorkSpace went {state}", evidence=True
            )
        return _WAIT

    def timeout_reason(self, observed: Sequence[Workspace | None], waited: float) -> str:
        ws = observed[0]
        if ws is None or _state(ws) in self.transitional_states:
            return super().timeout_reason(observed, waited)
        return f"properties not applied {int(waited)} s after the call (still {_state(ws)})"

    def evidence(self, ws: Workspace | None, params: Params) -> bool:
        if ws is None:
            return False
        return _state(ws) in self.transitional_states or not _differences(
            ws, wanted_properties(params)
        )


# -- maintenance ---------------------------------------------------------------------------


def _maintenance_target(params: Params) -> str:
    return "ADMIN_MAINTENANCE" if params.get("maintenance") else "AVAILABLE"


@dataclass(frozen=True)
class MaintenanceSpec(ActionSpec):
    def entry(self, key: str, params: Params, row: Mapping[str, Any] | None) -> dict[str, Any]:
        return {"WorkspaceId": key, "WorkspaceState": _maintenance_target(params)}

    def validate_params(self, params: Params) -> None:
        super().validate_params(params)
        if not isinstance(params.get("maintenance"), bool):
            raise UsageError("maintenance needs on or off")

    def eligible_for(self, params: Params) -> frozenset[str]:
        if params.get("maintenance"):
            return frozenset({"AVAILABLE", "STOPPED"})
        return frozenset({"ADMIN_MAINTENANCE"})

    def skip_reason(self, ws: Workspace, params: Params | None = None) -> str | None:
        target = _maintenance_target(params or {})
        if ws.get("State") == target:
            return f"already {target}"
        return super().skip_reason(ws, params)

    def judge_observed(
        self,
        observed: Sequence[Workspace | None],
        prev_state: str | None,
        params: Params,
        seen: bool = True,
    ) -> Verdict:
        """The target state is the evidence when the plan saw another one (the plan skips a
        WorkSpace already there); the plan-time state means "not applied yet"."""
        state = _state(observed[0])
        if state == _maintenance_target(params):
            return _OK if seen or state != prev_state else _WAIT_UNPROVEN
        if state == GONE:
            return Verdict(done=True, succeeded=False, reason="the WorkSpace no longer exists")
        return _WAIT

    def evidence(self, ws: Workspace | None, params: Params) -> bool:
        return _state(ws) == _maintenance_target(params)


# -- tag -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TagSpec(ActionSpec):
    """CreateTags and DeleteTags are synchronous: an accepted call is the end of the item (a
    DescribeTags per WorkSpace to read them back would double the quota spent for nothing)."""

    def calls_per_batch(self, params: Params) -> int:
        return int(bool(params.get("set"))) + int(bool(params.get("remove")))

    def validate_params(self, params: Params) -> None:
        super().validate_params(params)
        tags = params.get("set") or {}
        if not isinstance(tags, Mapping):
            raise UsageError(f"tags to set must be KEY=VALUE pairs, not {tags!r}")
        for key in tags:
            if str(key).lower().startswith("aws:"):
                raise UsageError(f"tag key {key!r}: keys starting with aws: are reserved")

    def requests(
        self, keys: Sequence[str], params: Params, rows: Mapping[str, Mapping[str, Any]]
    ) -> list[Request]:
        (key,) = keys
        out = []
        if params.get("set"):
            tags = [{"Key": k, "Value": str(v)} for k, v in params["set"].items()]
            out.append(Request("CreateTags", {"ResourceId": key, "Tags": tags}))
        if params.get("remove"):
            out.append(
                Request("DeleteTags", {"ResourceId": key, "TagKeys": list(params["remove"])})
            )
        return out

    def interpret(self, keys: Sequence[str], response: Mapping[str, Any]) -> Outcome:
        return Outcome(failed={}, results={})

    def skip_reason(self, ws: Workspace, params: Params | None = None) -> str | None:
        state = str(ws.get("State", ""))
        if state in ("TERMINATING", "TERMINATED"):
            return f"state {state}: nothing to tag"
        return None


# -- create --------------------------------------------------------------------------------

_CSV_REQUIRED = ("directory_id", "user_name", "bundle_id")
_CSV_OPTIONAL = ("running_mode", "tags")


def create_key(directory_id: str, user_name: str) -> str:
    """The placeholder item key of a WorkSpace still to be created."""
    return f"new:{directory_id}/{user_name}"


def read_users_csv(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a ``create --from`` CSV, validated; a problem is a :class:`UsageError`
    naming the file and line.

    Columns: directory_id, user_name, bundle_id, running_mode (optional), tags (optional,
    ``K=V;K2=V2``). Each row becomes ``{"key", "directory_id", "user_name", "bundle_id",
    "running_mode", "tags"}``.
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise UsageError(f"cannot read {file}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise UsageError(f"{file} is not UTF-8 text") from exc
    reader = csv.DictReader(text.splitlines())
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in _CSV_REQUIRED if c not in header]
    if missing:
        raise UsageError(f"{file}:1: missing column(s) {', '.join(missing)}")
    unknown = [c for c in header if c not in _CSV_REQUIRED + _CSV_OPTIONAL]
    if unknown:
        raise UsageError(f"{file}:1: unknown column(s) {', '.join(unknown)}")
    reader.fieldnames = header
    directory_re = member_pattern("DirectoryId")
    bundle_re = member_pattern("BundleId")
    modes = frozenset(service_model().shape_for("RunningMode").enum or ())
    rows: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for raw in reader:
        line = reader.line_num
        values = {k: (v or "").strip() for k, v in raw.items() if k is not None}
        if None in raw:
            raise UsageError(f"{file}:{line}: more fields than columns")
        directory, user, bundle = (values.get(c, "") for c in _CSV_REQUIRED)
        if not (directory or user or bundle):
            continue
        if directory_re and not directory_re.fullmatch(directory):
            raise UsageError(f"{file}:{line}: directory_id {directory!r} is not a directory id")
        if bundle_re and not bundle_re.fullmatch(bundle):
            raise UsageError(f"{file}:{line}: bundle_id {bundle!r} is not a bundle id")
        if not user or len(user) > 63:
            raise UsageError(f"{file}:{line}: user_name {user!r} must be 1 to 63 characters")
        mode = values.get("running_mode", "").upper() or None
        if mode is not None and mode not in modes:
            raise UsageError(
                f"{file}:{line}: running_mode {mode!r} is not one of {', '.join(sorted(modes))}"
            )
        tags: dict[str, str] = {}
        for pair in filter(None, (p.strip() for p in values.get("tags", "").split(";"))):
            tag_key, sep, tag_value = pair.partition("=")
            if not sep or not tag_key.strip():
                raise UsageError(f"{file}:{line}: tag {pair!r} must be KEY=VALUE")
            tags[tag_key.strip()] = tag_value.strip()
        key = create_key(directory, user)
        if key in seen:
            raise UsageError(
                f"{file}:{line}: user {user} in {directory} is already on line {seen[key]}"
            )
        seen[key] = line
        rows.append(
            {
                "key": key,
                "directory_id": directory,
                "user_name": user,
                "bundle_id": bundle,
                "running_mode": mode,
                "tags": tags,
            }
        )
    if not rows:
        raise UsageError(f"{file}: no rows to create")
    return rows


@dataclass(frozen=True)
class CreateSpec(ActionSpec):
    def validate_params(self, params: Params) -> None:
        super().validate_params(params)
        read_users_csv(str(params["from"]))

    def plan_rows(self, params: Params) -> list[dict[str, Any]] | None:
        return read_users_csv(str(params["from"]))

    def skip_reason(self, ws: Workspace, params: Params | None = None) -> str | None:
        return None

    def entry(self, key: str, params: Params, row: Mapping[str, Any] | None) -> dict[str, Any]:
        if row is None:
            raise ValueError(f"no CSV row for {key}")
        request: dict[str, Any] = {
            "DirectoryId": row["directory_id"],
            "UserName": row["user_name"],
            "BundleId": row["bundle_id"],
        }
        if row.get("running_mode"):
            request["WorkspaceProperties"] = {"RunningMode": row["running_mode"]}
        if row.get("tags"):
            request["Tags"] = [{"Key": k, "Value": v} for k, v in row["tags"].items()]
        return request

    def interpret(self, keys: Sequence[str], response: Mapping[str, Any]) -> Outcome:
        results = {
            create_key(str(ws.get("DirectoryId")), str(ws.get("UserName"))): str(ws["WorkspaceId"])
            for ws in response.get("PendingRequests") or []
            if ws.get("WorkspaceId")
        }
        failed: dict[str, tuple[str, str]] = {}
        for failure in response.get("FailedRequests") or []:
            request = failure.get("WorkspaceRequest") or {}
            key = create_key(str(request.get("DirectoryId")), str(request.get("UserName")))
            failed[key] = (
                str(failure.get("ErrorCode") or "Unknown"),
                str(failure.get("ErrorMessage") or ""),
            )
        for key in keys:
            if key not in results and key not in failed:
                failed[key] = ("NotInResponse", "CreateWorkspaces did not answer for this row")
        return Outcome(failed=failed, results=results)

    def watch_ids(self, key: str, result: str | None) -> tuple[str, ...]:
        return (result,) if result else (key,)

    def judge_observed(
        self,
        observed: Sequence[Workspace | None],
        prev_state: str | None,
        params: Params,
        seen: bool = True,
    ) -> Verdict:
        """The new WorkSpace found is the evidence; not found, it may just not be visible yet."""
        if observed[0] is None:
            return _WAIT_MISSING
        verdict = self.judge(_state(observed[0]), None, seen=True)
        return verdict if verdict.done else _WAIT_EVIDENCE

    def timeout_reason(self, observed: Sequence[Workspace | None], waited: float) -> str:
        if observed[0] is None:
            return f"the new WorkSpace was not found {int(waited)} s after the call"
        return super().timeout_reason(observed, waited)

    def user_evidence(
        self, key: str, workspaces: Sequence[Workspace], params: Params
    ) -> str | None:
        return str(workspaces[0]["WorkspaceId"]) if workspaces else None


def _power_actions() -> list[ActionSpec]:
    """The power actions: one batched call over a list of ids, then watch the state."""
    return [
        ActionSpec(
            name="reboot",
            summary="reboot (AVAILABLE, UNHEALTHY)",
            operation="RebootWorkspaces",
            request_member="RebootWorkspaceRequests",
            eligible_states=frozenset({"AVAILABLE", "UNHEALTHY"}),
            transitional_states=frozenset({"REBOOTING"}),
            end_states=frozenset({"AVAILABLE"}),
            evidence_states=frozenset({"REBOOTING"}),
            interrupts_session=True,
        ),
        ActionSpec(
            name="start",
            summary="start STOPPED AUTO_STOP/MANUAL WorkSpaces",
            operation="StartWorkspaces",
            request_member="StartWorkspaceRequests",
            eligible_states=frozenset({"STOPPED"}),
            transitional_states=frozenset({"STARTING"}),
            end_states=frozenset({"AVAILABLE"}),
            evidence_states=frozenset({"STARTING", "AVAILABLE"}),
            running_modes=_MANAGED_RUNNING_MODES,
            already_done_states=frozenset({"AVAILABLE", "STARTING"}),
        ),
        ActionSpec(
            name="stop",
            summary="stop AUTO_STOP/MANUAL WorkSpaces",
            operation="StopWorkspaces",
            request_member="StopWorkspaceRequests",
            eligible_states=frozenset({"AVAILABLE", "IMPAIRED", "UNHEALTHY", "ERROR"}),
            transitional_states=frozenset({"STOPPING"}),
            end_states=frozenset({"STOPPED"}),
            evidence_states=frozenset({"STOPPING", "STOPPED"}),
            failure_states=frozenset({"ERROR"}),
            running_modes=_MANAGED_RUNNING_MODES,
            already_done_states=frozenset({"STOPPED", "STOPPING"}),
            interrupts_session=True,
        ),
    ]


def _destructive_actions() -> list[ActionSpec]:
    """The destructive actions: terminate, and those that restore the user volume from a
    snapshot (rebuild, restore, migrate)."""
    return [
        ActionSpec(
            name="terminate",
            summary="terminate (destructive)",
            operation="TerminateWorkspaces",
            request_member="TerminateWorkspaceRequests",
            eligible_states=frozenset(
                {
                    "PENDING",
                    "AVAILABLE",
                    "IMPAIRED",
                    "UNHEALTHY",
                    "REBOOTING",
                    "STARTING",
                    "REBUILDING",
                    "RESTORING",
                    "MAINTENANCE",
                    "ADMIN_MAINTENANCE",
                    "STOPPING",
                    "STOPPED",
                    "ERROR",
                    "UPDATING",
                }
            ),  # every state but SUSPENDED (and those already terminating)
            transitional_states=frozenset({"TERMINATING"}),
            end_states=frozenset({"TERMINATED"}),
            evidence_states=frozenset({"TERMINATING", "TERMINATED"}),
            failure_states=frozenset({"ERROR"}),
            already_done_states=frozenset({"TERMINATING", "TERMINATED"}),
            destructive=True,
            interrupts_session=True,
            gone_is_success=True,
            # Terminate is idempotent in effect: sending it twice terminates once.
            retry_safe=True,
        ),
        ActionSpec(
            name="rebuild",
            summary="rebuild from the last snapshot (destructive)",
            operation="RebuildWorkspaces",
            request_member="RebuildWorkspaceRequests",
            eligible_states=frozenset({"AVAILABLE", "ERROR", "UNHEALTHY", "STOPPED", "REBOOTING"}),
            transitional_states=frozenset({"REBUILDING"}),
            end_states=frozenset({"AVAILABLE"}),
            evidence_states=frozenset({"REBUILDING"}),
            destructive=True,
            interrupts_session=True,
            needs_snapshot=True,
            retry_safe=False,
        ),
        ActionSpec(
            name="restore",
            summary="restore from the last snapshot (destructive)",
            operation="RestoreWorkspace",
            request_member=None,
            eligible_states=frozenset({"AVAILABLE", "ERROR", "UNHEALTHY", "STOPPED"}),
            transitional_states=frozenset({"RESTORING"}),
            end_states=frozenset({"AVAILABLE"}),
            evidence_states=frozenset({"RESTORING"}),
            destructive=True,
            interrupts_session=True,
            needs_snapshot=True,
            retry_safe=False,
            snapshot_kind="RestoreSnapshots",
        ),
        MigrateSpec(
            name="migrate",
            summary="migrate to another bundle (destructive)",
            params=(Param("to_bundle", "--to-bundle", "bundle_id", "the new bundle", "wsb-…"),),
            operation="MigrateWorkspace",
            request_member=None,
            eligible_states=frozenset({"AVAILABLE", "STOPPED", "ERROR"}),
            transitional_states=frozenset({"PENDING"}),
            end_states=frozenset({"AVAILABLE"}),
            evidence_states=frozenset(),
            destructive=True,
            interrupts_session=True,
            needs_snapshot=True,
            retry_safe=False,
            reconcile_by_user=True,
        ),
    ]


def _properties_actions() -> list[ActionSpec]:
    """The actions that change what a WorkSpace is, not whether it runs: properties, the
    maintenance state, tags."""
    return [
        ModifySpec(
            name="modify",
            summary="modify WorkSpace properties",
            params=_MODIFY_PARAMS,
            requires="any",
            operation="ModifyWorkspaceProperties",
            request_member=None,
            eligible_states=frozenset({"AVAILABLE", "STOPPED"}),
            transitional_states=frozenset({"UPDATING"}),
            end_states=frozenset({"AVAILABLE", "STOPPED"}),
            evidence_states=frozenset({"UPDATING"}),
            failure_states=frozenset({"ERROR"}),
        ),
        MaintenanceSpec(
            name="maintenance",
            summary="admin maintenance mode on|off",
            params=(Param("maintenance", "", "on_off", "on or off", "on|off"),),
            operation="ModifyWorkspaceState",
            request_member=None,
            eligible_states=frozenset({"AVAILABLE", "STOPPED", "ADMIN_MAINTENANCE"}),
            transitional_states=frozenset(),
            end_states=frozenset({"ADMIN_MAINTENANCE", "AVAILABLE"}),
            evidence_states=frozenset(),
        ),
        TagSpec(
            name="tag",
            summary="set and/or remove tags",
            params=(
                Param("set", "--set", "pairs", "tags to set", "K=V"),
                Param("remove", "--remove", "keys", "tag keys to remove", "K"),
            ),
            requires="any",
            operation="CreateTags",
            request_member=None,
            eligible_states=frozenset(),
            transitional_states=frozenset(),
            end_states=frozenset(),
            evidence_states=frozenset(),
            verifies=False,
        ),
    ]


def _create_actions() -> list[ActionSpec]:
    """The action that makes new WorkSpaces, from the rows of a users CSV."""
    return [
        CreateSpec(
            name="create",
            summary="create WorkSpaces from a users CSV",
            params=(Param("from", "--from", "path", "a users CSV file", "users.csv"),),
            operation="CreateWorkspaces",
            request_member="Workspaces",
            eligible_states=frozenset(),
            transitional_states=frozenset({"PENDING"}),
            end_states=frozenset({"AVAILABLE"}),
            evidence_states=frozenset(),
            failure_states=frozenset({"ERROR"}),
            retry_safe=False,
            reconcile_by_user=True,
        ),
    ]


@dataclass(frozen=True)
class RecipeSpec(ActionSpec):
    """A recipe: several actions of the catalogue in a row, one step at a time per WorkSpace
    (:mod:`fleetops.catalogue.recipes`; the engine's :mod:`fleetops.engine.steps` runs them).

    As an action it is what planning sees: the first rung's eligibility less its healthy end
    state (a WorkSpace already AVAILABLE needs no recovery), the connected guard of rungs that
    end a session; the snapshot guard belongs to each destructive rung and is checked when a
    WorkSpace reaches it."""

    def rungs(self, params: Params) -> list[ActionSpec]:
        """The actions of the job's ladder, in order."""
        return [ACTIONS[name] for name in ladder_of(params)]

    def destructive_rungs(self, params: Params) -> list[str]:
        return [rung.name for rung in self.rungs(params) if rung.destructive]

    def eligible_for(self, params: Params) -> frozenset[str]:
        return self.rungs(params)[0].eligible_states - self.end_states

    def missing_params(self, given: Set[str], *, style: str = "flag") -> str | None:
        return None  # the ladder and the settle time have defaults

    def validate_params(self, params: Params) -> None:
        ladder_of(params)
        if params.get("settle") is not None:
            parse_duration(params["settle"])

    def refused_options(self, waves: bool, no_wait: bool) -> str | None:
        # each WorkSpace climbs on the evidence of its own rung: nothing to wave or leave unseen
        given = [flag for flag, on in (("--waves", waves), ("--no-wait", no_wait)) if on]
        if not given:
            return None
        return (
            f"{self.name} climbs each WorkSpace's ladder on the evidence of every rung: "
            f"{' and '.join(given)} do not apply"
        )

    def plan_note(self, params: Params, eligible: int) -> str:
        """What the plan and the confirmation say of the rungs a WorkSpace may reach."""
        ladder = ", ".join(rung.name for rung in self.rungs(params))
        risky = self.destructive_rungs(params)
        note = f"ladder {ladder}: each WorkSpace climbs a rung only while it is not AVAILABLE"
        if risky:
            note += (
                f"; it may reach {' and '.join(risky)} (destructive: data newer than the "
                f"last snapshot is lost), up to {eligible} WorkSpaces"
            )
        return note


@dataclass(frozen=True)
class RolloutSpec(ActionSpec):
    """Rolling out a new image: the bundle pointed at it (UpdateWorkspaceBundle, once, before
    any rebuild; the image it had recorded first), then the bundle's WorkSpaces rebuilt, in
    waves, with the rebuild's guards; aborted with ``rollback_on_abort``, the bundle points at
    the recorded image again (:mod:`fleetops.engine.rollout`). Its targets are the bundle's
    WorkSpaces (other selectors narrow them; ``--exclude-tag`` is the opt-out)."""

    def missing_params(self, given: Set[str], *, style: str = "flag") -> str | None:
        lacking = [p for p in self.params if p.key in ("bundle", "image") and p.key not in given]
        if not lacking:
            return None
        names = [p.as_field() if style == "field" else p.as_flag() for p in lacking]
        return f"rollout needs {' and '.join(names)}"

    def validate_params(self, params: Params) -> None:
        super().validate_params(params)
        ids = (("bundle", "BundleId", "wsb-…"), ("image", "WorkspaceImageId", "wsi-…"))
        for key, shape, hint in ids:
            value = params.get(key)
            pattern = member_pattern(shape)
            try:
                by_scope = parse_scoped_ids(f"--{key}", value)
            except (TypeError, AttributeError):
                by_scope = ""  # neither an id nor a mapping of scope to id
            values = list(by_scope.values()) if isinstance(by_scope, dict) else [by_scope]
            for one in values:
                if not one or (pattern and not pattern.search(one)):
                    raise UsageError(f"rollout needs --{key} [SCOPE=]{hint} (not {one!r})")

    def targets_for(self, targets: Any, params: Params) -> Any:
        bundle = params.get("bundle")
        if isinstance(bundle, Mapping):  # a bundle per scope: see targets_in
            bundle = bundle.get(ANY_SCOPE) if list(bundle) == [ANY_SCOPE] else None
        return replace(targets, bundle_id=bundle or targets.bundle_id)

    def targets_in(self, targets: Any, params: Params, scope: str) -> Any:
        """The WorkSpaces of the scope's own bundle."""
        bundle = scoped_value(params.get("bundle"), scope)
        return replace(targets, bundle_id=bundle or targets.bundle_id)


def _rollout_actions() -> list[ActionSpec]:
    """Rolling out an image over a bundle's WorkSpaces."""
    rebuild = next(spec for spec in _destructive_actions() if spec.name == "rebuild")
    return [
        RolloutSpec(
            **{
                **{f: getattr(rebuild, f) for f in rebuild.__dataclass_fields__},
                "name": "rollout",
                "summary": "point a bundle at a new image, then rebuild its WorkSpaces "
                "(destructive; waves, rollback)",
                "params": (
                    Param("bundle", "--bundle", "scoped_ids",
                          "the bundle, per scope (SCOPE: a region or ACCOUNT/REGION)",
                          "[SCOPE=]wsb-…"),
                    Param("image", "--image", "scoped_ids",
                          "the new image, per scope (SCOPE: a region or ACCOUNT/REGION)",
                          "[SCOPE=]wsi-…"),
                    Param("rollback_on_abort", "--rollback-on-abort", "switch",
                          "on abort, point the bundle back at its old image", "yes"),
                ),
            }
        ),
    ]  # fmt: skip


def _recipe_actions() -> list[ActionSpec]:
    """The recipes: several actions in a row per WorkSpace."""
    return [
        RecipeSpec(
            name="recover",
            summary="recover UNHEALTHY WorkSpaces: reboot, then restore, then rebuild "
            "(destructive rungs), each only while not AVAILABLE",
            params=(
                Param("ladder", "--ladder", "ladder", "the rungs, lightest first",
                      "reboot,restore,rebuild"),
                Param("settle", "--settle", "duration",
                      f"how long a rung may take to bring AVAILABLE (default {DEFAULT_SETTLE:g} s)",
                      "10m"),
            ),
            operation="RebootWorkspaces",
            request_member="RebootWorkspaceRequests",
            eligible_states=frozenset({"UNHEALTHY"}),
            transitional_states=frozenset({"REBOOTING", "RESTORING", "REBUILDING"}),
            end_states=frozenset({"AVAILABLE"}),
            evidence_states=frozenset({"REBOOTING", "RESTORING", "REBUILDING"}),
            already_done_states=frozenset({"AVAILABLE"}),
            default_states=("UNHEALTHY",),
            destructive=True,
            interrupts_session=True,
            retry_safe=False,
        ),
    ]  # fmt: skip


def _actions() -> dict[str, ActionSpec]:
    """The catalogue, family by family, in the order ``run --help`` lists it."""
    specs = [
        *_power_actions(),
        *_destructive_actions(),
        *_properties_actions(),
        *_create_actions(),
        *_recipe_actions(),
        *_rollout_actions(),
    ]
    return {spec.name: spec for spec in specs}


ACTIONS: dict[str, ActionSpec] = _actions()


def all_params() -> list[Param]:
    """Every parameter of the catalogue, once per key (first action's wording), in order."""
    seen: dict[str, Param] = {}
    for spec in ACTIONS.values():
        for param in spec.params:
            seen.setdefault(param.key, param)
    return list(seen.values())


def get_action(name: str) -> ActionSpec:
    """The catalogue's action ``name``; an unknown name is a :class:`UsageError` suggesting the
    closest known one."""
    try:
        return ACTIONS[name]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(name.strip().lower(), list(ACTIONS), n=1)
        hint = f"did you mean {close[0]}?" if close else f"one of {', '.join(ACTIONS)}"
        raise UsageError(f"unknown action {name!r} ({hint})") from None
