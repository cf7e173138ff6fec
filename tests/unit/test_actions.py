"""The catalogue's pure rules: requests, answers, verdicts and evidence, without I/O."""

from __future__ import annotations

import time
from typing import Any

import pytest

from fleetops.actions import ACTIONS, get_action
from fleetops.options import JobOptions
from fleetops.planner import snapshot_reason


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
