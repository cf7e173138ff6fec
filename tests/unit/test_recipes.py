"""The recipes' pure parts: a rollout's bundle and image per scope (flags, job files, what each
scope gets, what is refused), what ``jobs show`` says of a rollout, and which failed steps of
recover climb."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from fleetops.catalogue.jobfile import load_job_file
from fleetops.catalogue.recipes import (
    climbs,
    image_problem,
    parse_scoped_ids,
    rollout_scopes,
    scope_keys,
    scoped_value,
)
from fleetops.catalogue.specs import RunRequest, Where, build_spec
from fleetops.engine.rollout import rollout_state
from fleetops.errors import JobFileError, UsageError
from fleetops.report.text import rollout_lines

JOBS = Path(__file__).resolve().parents[2] / "jobs"
A, B = "111122223333", "444455556666"


def test_flags_read_as_one_id_or_a_mapping_of_scope_to_id() -> None:
    assert parse_scoped_ids("--bundle", ["wsb-aaaaaaaaa"]) == "wsb-aaaaaaaaa"
    assert parse_scoped_ids("--bundle", "wsb-aaaaaaaaa") == "wsb-aaaaaaaaa"
    assert parse_scoped_ids(
        "--bundle", ["us-east-1=wsb-aaaaaaaaa", f"{A}/eu-west-1=wsb-bbbbbbbbb", "wsb-ccccccccc"]
    ) == {"us-east-1": "wsb-aaaaaaaaa", f"{A}/eu-west-1": "wsb-bbbbbbbbb", "*": "wsb-ccccccccc"}


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (["us-east-1=wsb-a", "us-east-1=wsb-b"], "gives scope us-east-1 twice"),
        (["wsb-a", "wsb-b"], "gives a bare value twice"),
        (["useast=wsb-a"], "the scope must be a region"),
        (["123/us-east-1=wsb-a"], "the scope must be a region"),
        (["us-east-1="], "the id is missing"),
    ],
)
def test_bad_flags_are_one_line(given: list[str], message: str) -> None:
    with pytest.raises(UsageError) as refused:
        parse_scoped_ids("--bundle", given)
    assert message in str(refused.value)
    assert str(refused.value).startswith("--bundle")


def test_each_scope_takes_its_account_region_then_its_region_then_the_bare_value() -> None:
    value = {f"{A}/eu-west-1": "wsi-1", "eu-west-1": "wsi-2", "*": "wsi-3"}
    assert scoped_value(value, f"{A}/eu-west-1") == "wsi-1"
    assert scoped_value(value, f"{B}/eu-west-1") == "wsi-2"
    assert scoped_value(value, "us-east-1") == "wsi-3"
    assert scoped_value({"eu-west-1": "wsi-2"}, "us-east-1") is None
    assert scoped_value("wsi-9", f"{B}/us-east-1") == "wsi-9"
    assert scope_keys(["us-east-1", "eu-west-1"], None) == ["us-east-1", "eu-west-1"]
    assert scope_keys(["us-east-1"], [A, B]) == [f"{A}/us-east-1", f"{B}/us-east-1"]


def test_rollout_scopes_refuses_a_scope_not_targeted_or_left_without_ids() -> None:
    scopes = scope_keys(["us-east-1"], [A, B])
    params: dict[str, Any] = {
        "bundle": {f"{A}/us-east-1": "wsb-a", f"{B}/us-east-1": "wsb-b"},
        "image": "wsi-shared",  # an image shared with both accounts keeps its id
    }
    assert rollout_scopes(params, scopes) == {
        f"{A}/us-east-1": ("wsb-a", "wsi-shared"),
        f"{B}/us-east-1": ("wsb-b", "wsi-shared"),
    }
    with pytest.raises(UsageError, match=r"does not target eu-west-1 \(its scopes: "):
        rollout_scopes({**params, "image": {"eu-west-1": "wsi-x", "*": "wsi-y"}}, scopes)
    with pytest.raises(UsageError, match="does not target 999999999999/us-east-1"):
        rollout_scopes({**params, "bundle": {"999999999999/us-east-1": "wsb-z"}}, scopes)
    with pytest.raises(UsageError, match=f"rollout has no bundle for {B}/us-east-1: add"):
        rollout_scopes({**params, "bundle": {f"{A}/us-east-1": "wsb-a"}}, scopes)


def test_an_image_must_be_there_and_available() -> None:
    answer = {"Images": [{"ImageId": "wsi-1", "State": "PENDING"}]}
    assert image_problem(answer, "wsi-1", "eu-west-1") == (
        "image wsi-1 is PENDING, not AVAILABLE, in eu-west-1: nothing was rolled out"
    )
    assert "not found in eu-west-1" in (image_problem({"Images": []}, "wsi-1", "eu-west-1") or "")
    assert (
        image_problem({"Images": [{"ImageId": "wsi-1", "State": "AVAILABLE"}]}, "wsi-1", "x")
        is None
    )


def test_run_flags_build_a_spec_per_scope() -> None:
    request = RunRequest(
        action="rollout",
        params={
            "bundle": ("us-east-1=wsb-0a1b2c3d4", "eu-west-1=wsb-5e6f7g8h9"),
            "image": ("us-east-1=wsi-0a1b2c3d4", "eu-west-1=wsi-5e6f7g8h9"),
        },
        where=Where(region=("us-east-1", "eu-west-1")),
    )
    spec = build_spec(request)
    assert spec.params["bundle"] == {"us-east-1": "wsb-0a1b2c3d4", "eu-west-1": "wsb-5e6f7g8h9"}
    assert spec.targets.bundle_id is None  # each scope reads its own (targets_in)
    from fleetops.catalogue.actions import get_action

    action = get_action("rollout")
    assert action.targets_in(spec.targets, spec.params, "eu-west-1").bundle_id == "wsb-5e6f7g8h9"
    one = build_spec(
        RunRequest(
            action="rollout",
            params={"bundle": ("wsb-0a1b2c3d4",), "image": ("wsi-0a1b2c3d4",)},
            where=Where(region=("us-east-1",)),
        )
    )
    assert one.params["bundle"] == "wsb-0a1b2c3d4" and one.targets.bundle_id == "wsb-0a1b2c3d4"
    with pytest.raises(UsageError, match=r"rollout needs --image \[SCOPE=\]wsi-… \(not 'nope'\)"):
        build_spec(
            RunRequest(
                action="rollout",
                params={"bundle": ("wsb-0a1b2c3d4",), "image": ("us-east-1=nope",)},
                where=Where(region=("us-east-1",)),
            )
        )


def test_the_job_file_takes_a_mapping_of_scope_to_id(tmp_path: Path) -> None:
    job = load_job_file(JOBS / "rollout-two-regions.yaml")
    params = job.to_params()
    assert params["bundle"] == {"us-east-1": "wsb-0a1b2c3d4", "eu-west-1": "wsb-5e6f7g8h9"}
    assert params["rollback_on_abort"] is True
    assert rollout_scopes(params, job.regions())["eu-west-1"] == ("wsb-5e6f7g8h9", "wsi-5e6f7g8h9")
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        textwrap.dedent(
            """\
            action: rollout
            targets: {}
            params:
              bundle:
                useast: wsb-0a1b2c3d4
              image: wsi-0a1b2c3d4
            region: us-east-1
            """
        ),
        encoding="utf-8",
    )
    with pytest.raises(JobFileError) as refused:
        load_job_file(bad)
    assert "bad.yaml:4" in str(refused.value) and "the scope must be a region" in str(refused.value)


def _params(rollout: dict[str, Any] | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {
        "bundle": {"us-east-1": "wsb-a", "eu-west-1": "wsb-b"},
        "image": {"us-east-1": "wsi-a2", "eu-west-1": "wsi-b2"},
    }
    if rollout is not None:
        params["rollout"] = rollout
    return params


def test_jobs_show_of_a_rollout_over_two_regions() -> None:
    facts = {
        "rolling_back": True,
        "scopes": {
            "us-east-1": {"old_image_id": "wsi-a1", "bundle_updated": True, "rolled_back": True},
            "eu-west-1": {"old_image_id": "wsi-b1"},
        },
    }
    shown = rollout_state(_params(facts), ["us-east-1", "eu-west-1"])
    assert shown["rolled_back"] is True  # any scope rolled back
    assert shown["bundle_id"] is None and shown["new_image_id"] is None  # they differ
    assert shown["scopes"][1] == {
        "account": None,
        "region": "eu-west-1",
        "bundle_id": "wsb-b",
        "old_image_id": "wsi-b1",
        "new_image_id": "wsi-b2",
        "rolled_back": False,
    }
    assert rollout_lines(shown) == [
        "us-east-1: bundle wsb-a wsi-a1 → wsi-a2 (rolled back)",
        "eu-west-1: bundle wsb-b wsi-b1 → wsi-b2",
    ]
    unrun = rollout_state(_params(), ["us-east-1", "eu-west-1"], [A])
    assert [row["old_image_id"] for row in unrun["scopes"]] == [None, None]
    assert rollout_lines(unrun)[0] == f"{A}/us-east-1: bundle wsb-a ? → wsi-a2"


def test_jobs_show_of_a_one_scope_rollout_keeps_its_four_keys() -> None:
    params = {"bundle": "wsb-a", "image": "wsi-a2"}
    legacy = {**params, "rollout": {"old_image_id": "wsi-a1", "rolled_back": True}}
    expected = {
        "bundle_id": "wsb-a",
        "old_image_id": "wsi-a1",
        "new_image_id": "wsi-a2",
        "rolled_back": True,
    }
    assert rollout_state(legacy, ["us-east-1"]) == expected
    recorded = {**params, "rollout": {"scopes": {"us-east-1": {"old_image_id": "wsi-a1",
                                                               "rolled_back": True}}}}  # fmt: skip
    assert rollout_state(recorded, ["us-east-1"]) == expected
    assert rollout_lines(expected) == ["bundle wsb-a wsi-a1 → wsi-a2 (rolled back)"]
    assert rollout_state({"ladder": ["reboot"]}, ["us-east-1"]) == {}


@pytest.mark.parametrize(
    ("state", "code", "expected"),
    [
        ("failed", "VerificationFailed", True),  # carried out, not healed: the next rung
        ("failed", "VerifyTimeout", True),
        ("failed", "InvalidUserConfiguration.Workspace", False),  # refused: ends failed
        ("failed", "ThrottlingException", False),  # never sent
        ("failed", None, False),
        ("skipped", "SnapshotGuard", True),
        ("skipped", None, False),
        ("succeeded", None, False),
        ("in_doubt", None, False),
    ],
)
def test_which_failed_steps_climb(state: str, code: str | None, expected: bool) -> None:
    assert climbs(state, code) is expected
