"""The catalogue's pure rules: requests, answers, verdicts and evidence, without I/O."""

from __future__ import annotations

import time
from typing import Any

import pytest

from fleetops.catalogue.actions import ACTIONS, get_action
from fleetops.catalogue.options import JobOptions
from fleetops.engine.planner import snapshot_reason


def ws(ws_id: str = "ws-aaaaaaaa01", state: str = "AVAILABLE", **props: Any) -> dict[str, Any]:
    bundle = props.pop("BundleId", "wsb-old000001")
    return {
        "WorkspaceId": ws_id,
        "State": state,
        "BundleId": bundle,
        "UserName": "u1",
        "DirectoryId": "d-1234567890",
        "WorkspaceProperties": {"RunningMode": "AUTO_STOP", **props},
    }


def test_batch_sizes_come_from_the_model() -> None:
    sizes = {name: spec.max_batch for name, spec in ACTIONS.items()}
    assert sizes == {
        "reboot": 25,
        "start": 25,
        "stop": 25,
        "terminate": 25,
        "rebuild": 1,
        "restore": 1,
        "migrate": 1,
        "modify": 1,
        "maintenance": 1,
        "tag": 1,
        "create": 25,
        "recover": 25,  # a recipe: each of its rungs batches as its own action does
        "rollout": 1,  # a rollout's rebuilds
    }


def test_migrate_request_answer_and_verdicts() -> None:
    migrate = get_action("migrate")
    params = {"to_bundle": "wsb-new000001"}
    (request,) = migrate.requests(["ws-aaaaaaaa01"], params, {})
    assert request.operation == "MigrateWorkspace"
    assert request.params == {"SourceWorkspaceId": "ws-aaaaaaaa01", "BundleId": "wsb-new000001"}
    outcome = migrate.interpret(["ws-aaaaaaaa01"], {"TargetWorkspaceId": "ws-bbbbbbbb01"})
    assert outcome.results == {"ws-aaaaaaaa01": "ws-bbbbbbbb01"}
    assert migrate.watch_ids("ws-aaaaaaaa01", "ws-bbbbbbbb01") == ("ws-bbbbbbbb01", "ws-aaaaaaaa01")
    target = ws("ws-bbbbbbbb01", BundleId="wsb-new000001")
    source = ws()
    assert migrate.judge_observed((target, None), "AVAILABLE", params).succeeded
    pending = ws("ws-bbbbbbbb01", "PENDING", BundleId="wsb-new000001")
    assert not migrate.judge_observed((pending, source), "AVAILABLE", params).done
    # Failed silently: no new WorkSpace, the source still there on its old bundle.
    assert not migrate.judge_observed((None, source), "AVAILABLE", params).done
    reason = migrate.timeout_reason((None, source), 3600)
    assert "migration did not happen" in reason and "wsb-old000001" in reason
    assert migrate.skip_reason(ws(BundleId="wsb-new000001"), params) == (
        "already on bundle wsb-new000001"
    )
    # Resume: the user's WorkSpace on the target bundle is the evidence.
    assert migrate.user_evidence("ws-aaaaaaaa01", [source, target], params) == "ws-bbbbbbbb01"
    assert migrate.user_evidence("ws-aaaaaaaa01", [source], params) is None


def test_modify_equal_properties_skip_and_read_back() -> None:
    modify = get_action("modify")
    params = {"running_mode": "always_on", "protocols": "WSP", "user_volume": 50}
    (request,) = modify.requests(["ws-aaaaaaaa01"], params, {})
    assert request.params["WorkspaceProperties"] == {
        "RunningMode": "ALWAYS_ON",
        "Protocols": ["WSP"],
        "UserVolumeSizeGib": 50,
    }
    done = ws(RunningMode="ALWAYS_ON", Protocols=["WSP"], UserVolumeSizeGib=50)
    assert modify.skip_reason(done, params) == "already in the desired state"
    assert modify.skip_reason(ws(Protocols=["WSP"], UserVolumeSizeGib=50), params) is None
    assert modify.judge_observed((done,), "AVAILABLE", params).succeeded
    assert not modify.judge_observed(({**done, "State": "UPDATING"},), "AVAILABLE", params).done
    assert not modify.interrupts(params)
    assert modify.interrupts({"compute_type": "POWER"})


def test_maintenance_and_tag_and_stop_rules() -> None:
    maintenance = get_action("maintenance")
    on, off = {"maintenance": True}, {"maintenance": False}
    assert maintenance.skip_reason(ws(), on) is None
    assert maintenance.skip_reason(ws(), off) == "already AVAILABLE"
    assert maintenance.skip_reason(ws(state="ADMIN_MAINTENANCE"), on) == "already ADMIN_MAINTENANCE"
    tag = get_action("tag")
    calls = tag.requests(["ws-aaaaaaaa01"], {"set": {"a": "1"}, "remove": ["b"]}, {})
    assert [c.operation for c in calls] == ["CreateTags", "DeleteTags"]
    assert tag.calls_per_batch({"set": {"a": "1"}}) == 1 and not tag.verifies
    stop = get_action("stop")
    assert stop.skip_reason(ws(RunningMode="ALWAYS_ON")) == (
        "running mode ALWAYS_ON cannot be stopped (needs AUTO_STOP or MANUAL)"
    )


def test_create_answer_maps_rows_by_directory_and_user() -> None:
    create = get_action("create")
    keys = ["new:d-1234567890/u1", "new:d-1234567890/u2", "new:d-1234567890/u3"]
    outcome = create.interpret(
        keys,
        {
            "PendingRequests": [
                {"WorkspaceId": "ws-cccccccc01", "DirectoryId": "d-1234567890", "UserName": "u1"}
            ],
            "FailedRequests": [
                {
                    "WorkspaceRequest": {"DirectoryId": "d-1234567890", "UserName": "u2"},
                    "ErrorCode": "ResourceNotFound.Bundle",
                    "ErrorMessage": "no bundle",
                }
            ],
        },
    )
    assert outcome.results == {keys[0]: "ws-cccccccc01"}
    assert outcome.failed[keys[1]] == ("ResourceNotFound.Bundle", "no bundle")
    assert outcome.failed[keys[2]][0] == "NotInResponse"


@pytest.mark.parametrize(
    ("age_h", "expected"),
    [(3.0, None), (14.21, "last snapshot 14.2 h old (> --max-snapshot-age 12)")],
)
def test_snapshot_age_reason(age_h: float, expected: str | None) -> None:
    now = time.time()
    answer = {"RebuildSnapshots": [{"SnapshotTime": now - age_h * 3600}]}
    assert snapshot_reason(get_action("rebuild"), answer, JobOptions(), now) == expected
    none = snapshot_reason(get_action("restore"), {"RestoreSnapshots": []}, JobOptions(), now)
    assert none is not None and none.startswith("no snapshot to restore from")


# -- verdicts under eventual consistency ------------------------------------------------------
# Each row: action, params, what the describe answered (a state, or None: not found), the state
# seen at plan time, whether evidence was seen at an earlier poll, and the expected verdict as
# one word: ok | fail | wait (nothing proven) | evidence (waiting, proof seen) | unproven (the end
# state without proof) | missing (a new WorkSpace not found yet).

ON, OFF = {"maintenance": True}, {"maintenance": False}
MIGRATE = {"to_bundle": "wsb-new000001"}
MODIFY = {"running_mode": "always_on"}


def _verdict_word(action: str, params: dict[str, Any], observed: Any, prev: str, seen: bool) -> str:
    spec = get_action(action)
    if isinstance(observed, str) and observed != "GONE":
        observed = (ws(state=observed),)
    elif observed == "GONE":
        observed = (None,)
    verdict = spec.judge_observed(observed, prev, params, seen)
    flags = [verdict.evidence, verdict.unproven, verdict.missing]
    assert sum(flags) <= 1 or verdict.done, verdict
    if verdict.done:
        assert not (verdict.unproven or verdict.missing or verdict.unverified)
        assert verdict.evidence or not verdict.succeeded  # success only on evidence
        return "ok" if verdict.succeeded else "fail"
    if verdict.evidence:
        return "evidence"
    if verdict.unproven:
        return "unproven"
    return "missing" if verdict.missing else "wait"


_TARGET_NEW = ws("ws-bbbbbbbb01", BundleId="wsb-new000001")
_TARGET_PENDING = ws("ws-bbbbbbbb01", "PENDING", BundleId="wsb-new000001")
_TARGET_ERROR = ws("ws-bbbbbbbb01", "ERROR", BundleId="wsb-new000001")
_MODIFIED = (ws(RunningMode="ALWAYS_ON"),)
_NOT_YET = (ws(RunningMode="AUTO_STOP"),)


@pytest.mark.parametrize(
    ("action", "params", "observed", "prev", "seen", "expected"),
    [
        # reboot: AVAILABLE → AVAILABLE, only REBOOTING (or an earlier sight of it) proves it
        ("reboot", {}, "AVAILABLE", "AVAILABLE", False, "unproven"),
        ("reboot", {}, "AVAILABLE", "AVAILABLE", True, "ok"),
        ("reboot", {}, "REBOOTING", "AVAILABLE", False, "evidence"),
        ("reboot", {}, "AVAILABLE", "UNHEALTHY", False, "ok"),  # a change from plan time
        ("reboot", {}, "UNHEALTHY", "UNHEALTHY", False, "wait"),  # not started yet
        ("reboot", {}, "UNHEALTHY", "AVAILABLE", True, "fail"),
        ("reboot", {}, "GONE", "AVAILABLE", True, "fail"),
        # rebuild / restore: same end state as start
        ("rebuild", {}, "AVAILABLE", "AVAILABLE", False, "unproven"),
        ("rebuild", {}, "REBUILDING", "AVAILABLE", False, "evidence"),
        ("rebuild", {}, "AVAILABLE", "ERROR", False, "ok"),
        ("rebuild", {}, "AVAILABLE", "REBOOTING", False, "unproven"),  # the reboot just ended
        ("rebuild", {}, "AVAILABLE", "REBOOTING", True, "ok"),
        ("restore", {}, "AVAILABLE", "AVAILABLE", False, "unproven"),
        ("restore", {}, "RESTORING", "AVAILABLE", False, "evidence"),
        ("restore", {}, "AVAILABLE", "STOPPED", False, "ok"),
        ("restore", {}, "ERROR", "AVAILABLE", True, "fail"),
        # start / stop: the end state differs from the start
        ("start", {}, "STOPPED", "STOPPED", False, "wait"),
        ("start", {}, "STARTING", "STOPPED", False, "evidence"),
        ("start", {}, "AVAILABLE", "STOPPED", False, "ok"),
        ("stop", {}, "AVAILABLE", "AVAILABLE", False, "wait"),
        ("stop", {}, "STOPPED", "AVAILABLE", False, "ok"),
        ("stop", {}, "ERROR", "ERROR", False, "wait"),
        ("stop", {}, "ERROR", "AVAILABLE", True, "fail"),
        # terminate: gone is success, the old state is "not yet"
        ("terminate", {}, "GONE", "AVAILABLE", False, "ok"),
        ("terminate", {}, "TERMINATING", "AVAILABLE", False, "evidence"),
        ("terminate", {}, "AVAILABLE", "AVAILABLE", False, "wait"),
        # maintenance: the target state is a change from plan time
        ("maintenance", ON, "ADMIN_MAINTENANCE", "AVAILABLE", False, "ok"),
        ("maintenance", ON, "AVAILABLE", "AVAILABLE", False, "wait"),
        ("maintenance", ON, "ADMIN_MAINTENANCE", "ADMIN_MAINTENANCE", False, "unproven"),
        ("maintenance", OFF, "AVAILABLE", "ADMIN_MAINTENANCE", False, "ok"),
        ("maintenance", OFF, "ADMIN_MAINTENANCE", "ADMIN_MAINTENANCE", False, "wait"),
        ("maintenance", OFF, "GONE", "ADMIN_MAINTENANCE", False, "fail"),
        # modify: the new value read back is the proof, the old one "not applied yet"
        ("modify", MODIFY, _MODIFIED, "AVAILABLE", False, "ok"),
        ("modify", MODIFY, _NOT_YET, "AVAILABLE", False, "wait"),
        ("modify", MODIFY, _NOT_YET, "AVAILABLE", True, "wait"),
        ("modify", MODIFY, "UPDATING", "AVAILABLE", False, "evidence"),
        ("modify", MODIFY, "GONE", "AVAILABLE", False, "fail"),
        # migrate: the new WorkSpace, found, is the proof; not found, it may not be visible yet
        ("migrate", MIGRATE, (_TARGET_NEW, ws()), "AVAILABLE", False, "ok"),
        ("migrate", MIGRATE, (_TARGET_PENDING, ws()), "AVAILABLE", False, "evidence"),
        ("migrate", MIGRATE, (_TARGET_ERROR, None), "AVAILABLE", False, "fail"),
        ("migrate", MIGRATE, (None, ws()), "AVAILABLE", False, "missing"),
        ("migrate", MIGRATE, (None, None), "AVAILABLE", False, "missing"),
        # create: likewise
        ("create", {}, (None,), None, False, "missing"),
        ("create", {}, (_TARGET_PENDING,), None, False, "evidence"),
        ("create", {}, (ws("ws-bbbbbbbb01"),), None, False, "ok"),
        ("create", {}, (_TARGET_ERROR,), None, False, "fail"),
    ],
)
def test_verdict_needs_evidence_after_the_call(
    action: str, params: dict[str, Any], observed: Any, prev: str, seen: bool, expected: str
) -> None:
    assert _verdict_word(action, params, observed, prev, seen) == expected


@pytest.mark.parametrize(
    ("action", "observed", "waited", "expected"),
    [
        ("reboot", "AVAILABLE", 19.9, "unproven"),  # keep polling: it may not have started
        ("reboot", "AVAILABLE", 20.0, "unverified"),
        ("reboot", "AVAILABLE", 600.0, "unverified"),
        ("reboot", "REBOOTING", 600.0, "evidence"),  # the verify timeout is another matter
        ("rebuild", "AVAILABLE", 25.0, "unverified"),
        ("create", None, 59.9, "missing"),
        ("create", None, 60.0, "fail"),
        ("migrate", None, 60.0, "fail"),
        ("start", "AVAILABLE", 0.5, "ok"),  # already done stays done
    ],
)
def test_waiting_verdicts_run_out_of_time(
    action: str, observed: str | None, waited: float, expected: str
) -> None:
    spec = get_action(action)
    seen = (None,) if observed is None else (ws(state=observed),)
    if action == "migrate":
        seen = (None, ws(BundleId="wsb-old000001"))
    prev = "STOPPED" if action == "start" else "AVAILABLE"
    params = MIGRATE if action == "migrate" else {}
    verdict = spec.judge_in_time(
        spec.judge_observed(seen, prev, params, False),
        seen,
        waited=waited,
        evidence_wait=20.0,
        appear_wait=60.0,
    )
    if verdict.unverified:
        assert verdict.done and verdict.succeeded
        assert verdict.reason is not None and f"{int(waited)} s after the call" in verdict.reason
        word = "unverified"
    elif verdict.done:
        word = "ok" if verdict.succeeded else "fail"
        if not verdict.succeeded:
            assert verdict.reason is not None and "60 s after the call" in verdict.reason
    else:
        word = "unproven" if verdict.unproven else "missing" if verdict.missing else "evidence"
    assert word == expected


def test_unverified_reason_names_the_transition_never_seen() -> None:
    reboot = get_action("reboot")
    observed = (ws(),)
    verdict = reboot.judge_in_time(
        reboot.judge_observed(observed, "AVAILABLE", {}, False),
        observed,
        waited=42.0,
        evidence_wait=30.0,
        appear_wait=60.0,
    )
    assert verdict.reason == (
        "AVAILABLE 42 s after the call, but no sign of the reboot was ever seen (no REBOOTING): "
        "it may have been faster than the polls, or not have happened"
    )
