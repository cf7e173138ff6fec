"""The catalogue is the single source of action names and parameters (fleetops.catalogue.actions)
and of target selectors (fleetops.catalogue.targets): the ``run`` command and job files accept
exactly what it lists, under the names it gives, and say what is missing or misplaced with its
messages."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fleetops.catalogue.actions import ACTIONS, ActionSpec, Param, all_params
from fleetops.catalogue.jobfile import ACTIONS as JOBFILE_ACTIONS
from fleetops.catalogue.jobfile import ParamsSection, TargetsSection, load_job_file
from fleetops.catalogue.specs import RunRequest, Where, build_spec
from fleetops.catalogue.targets import SELECTORS, Selector, Targets
from fleetops.cli import run as cli_run
from fleetops.cli.app import app
from fleetops.cli.run_options import SELECTOR_FLAGS
from fleetops.errors import JobFileError, UsageError

CONN = ["--region", "us-east-1", "--endpoint-url", "http://127.0.0.1:9"]
WS = "ws-abcdefgh1"


def _csv(tmp_path: Path) -> Path:
    path = tmp_path / "users.csv"
    path.write_text("directory_id,user_name,bundle_id\nd-0123456789,alice,wsb-0123456789\n")
    return path


def _value(param: Param, tmp_path: Path) -> str:
    """A valid command-line value of each kind of parameter."""
    if param.kind == "scoped_ids":  # a rollout's bundle or image, for one region
        return f"us-east-1={param.hint.removeprefix('[SCOPE=]').replace('…', '0123456789')}"
    return {
        "int": "50",
        "bundle_id": "wsb-012345678",
        "running_mode": "AUTO_STOP",
        "compute_type": "STANDARD",
        "protocols": "WSP",
        "on_off": "on",
        "pairs": "team=finance",
        "keys": "old-tag",
        "path": str(_csv(tmp_path)),
        "ladder": "reboot,restore",
        "duration": "10m",
        "image_id": "wsi-0123456789",
        "switch": "true",
    }.get(param.kind, "x")


def _argv(spec: ActionSpec, params: list[Param], tmp_path: Path) -> list[str]:
    argv = ["run", spec.name]
    for param in params:
        value = _value(param, tmp_path)
        if param.kind == "switch":
            argv.append(param.flag)
            continue
        argv += [value] if param.positional else [param.flag, value]
    return [*argv, "--workspace-id", WS, *CONN]


@pytest.fixture
def requests(monkeypatch: pytest.MonkeyPatch) -> list[RunRequest]:
    """The requests the ``run`` command builds from its flags (nothing is run)."""
    seen: list[RunRequest] = []

    def capture(request: RunRequest, **flags: Any) -> int:
        seen.append(request)
        return 0

    monkeypatch.setattr(cli_run, "run_request", capture)
    return seen


def test_job_files_name_exactly_the_catalogue_actions() -> None:
    assert JOBFILE_ACTIONS == tuple(ACTIONS)


def test_job_file_params_are_exactly_the_catalogue_params() -> None:
    fields = {field.alias or name for name, field in ParamsSection.model_fields.items()}
    assert fields == {p.key for p in all_params()}


def test_run_help_lists_every_action_and_parameter_flag() -> None:
    result = CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for name in ACTIONS:
        assert f"{name}:" in result.output
    for param in all_params():
        assert (param.flag or param.hint) in result.output, param


@pytest.mark.parametrize("name", [name for name, spec in ACTIONS.items() if spec.params])
def test_cli_accepts_every_parameter_of_each_action(
    name: str, tmp_path: Path, requests: list[RunRequest]
) -> None:
    spec = ACTIONS[name]
    result = CliRunner().invoke(app, _argv(spec, list(spec.params), tmp_path))
    assert result.exit_code == 0, result.output
    built = build_spec(requests[-1])
    assert set(built.params) == {p.key for p in spec.params}
    assert built.action == name


@pytest.mark.parametrize("name", list(ACTIONS))
def test_cli_refuses_the_parameters_of_other_actions(
    name: str, tmp_path: Path, requests: list[RunRequest]
) -> None:
    spec = ACTIONS[name]
    shared = ("--running-mode", "--compute-type")  # also selectors: valid for every action
    others = [p for p in all_params() if spec.param(p.key) is None and p.flag not in shared]
    argv = _argv(spec, [*spec.params, *others], tmp_path)
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 0, result.output
    takes_word = any(p.positional for p in spec.params)
    for param in others:
        values = dict(requests[-1].params)
        keep = {p.key for p in spec.params} | {param.key}
        request = RunRequest(
            action=requests[-1].action,
            selectors=requests[-1].selectors,
            params={k: v for k, v in values.items() if k in keep},
            where=requests[-1].where,
            # the word after the action belongs to this action's positional, or is the refused one
            argument=requests[-1].argument if param.positional or takes_word else None,
        )
        with pytest.raises(UsageError) as caught:
            build_spec(request)
        if param.positional:
            assert f"unexpected argument {_value(param, tmp_path)!r}" in str(caught.value)
        else:
            assert str(caught.value) == spec.unknown_param(param.key)


@pytest.mark.parametrize(
    "name",
    [name for name, spec in ACTIONS.items() if spec.missing_params(set()) is not None],
)
def test_missing_parameters_say_the_catalogue_message(
    name: str, tmp_path: Path, requests: list[RunRequest]
) -> None:
    spec = ACTIONS[name]
    result = CliRunner().invoke(app, _argv(spec, [], tmp_path))
    assert result.exit_code == 0, result.output
    with pytest.raises(UsageError) as caught:
        build_spec(requests[-1])
    assert str(caught.value) == spec.missing_params(set())
    job = tmp_path / "job.yaml"
    job.write_text(f"action: {name}\ntargets: {{workspace_ids: [{WS}]}}\n")
    with pytest.raises(JobFileError) as refused:
        load_job_file(job)
    assert str(refused.value).endswith(str(spec.missing_params(set(), style="field")))


def _yaml_value(param: Param, tmp_path: Path) -> str:
    value = _value(param, tmp_path)
    return f"[{value}]" if param.kind in ("pairs", "keys") else repr(value)


@pytest.mark.parametrize("name", list(ACTIONS))
def test_job_file_accepts_exactly_the_parameters_of_each_action(name: str, tmp_path: Path) -> None:
    spec = ACTIONS[name]
    job = tmp_path / "job.yaml"
    lines = [f"  {p.key}: {_yaml_value(p, tmp_path)}" for p in spec.params]
    params = "params:\n" + "\n".join(lines) + "\n" if lines else ""
    job.write_text(f"action: {name}\n{params}targets: {{workspace_ids: [{WS}]}}\n")
    assert set(load_job_file(job).to_params()) == {p.key for p in spec.params}
    for other in all_params():
        if spec.param(other.key) is not None:
            continue
        head = params or "params:\n"
        job.write_text(
            f"action: {name}\n{head}  {other.key}: "
            f"{_yaml_value(other, tmp_path)}\ntargets: {{workspace_ids: [{WS}]}}\n"
        )
        with pytest.raises(JobFileError) as refused:
            load_job_file(job)
        assert str(refused.value).endswith(spec.unknown_param(other.key, style="field"))


# -- the selectors (fleetops.catalogue.targets): one declaration each, every front end made of it


def _selector_value(selector: Selector, tmp_path: Path) -> str:
    """A valid value of each kind of selector."""
    ids = tmp_path / "ids.txt"
    ids.write_text(f"{WS}\n")
    return {
        "workspace_ids": WS,
        "path": str(ids),
        "directory_id": "d-1234567890",
        "bundle_id": "wsb-012345678",
        "states": "AVAILABLE",
        "running_mode": "AUTO_STOP",
        "compute_type": "STANDARD",
        "text": "alice*",
        "pairs": "team=finance",
        "days": "3",
    }[selector.kind]


def test_selectors_are_the_targets_fields_and_the_job_file_targets() -> None:
    keys = [selector.key for selector in SELECTORS]
    assert keys == [f.name for f in dataclasses.fields(Targets)]
    assert list(TargetsSection.model_fields) == keys
    assert [p.name for p in SELECTOR_FLAGS] == keys


@pytest.mark.parametrize("selector", SELECTORS, ids=lambda s: s.key)
def test_each_selector_flag_reaches_the_targets(
    selector: Selector, tmp_path: Path, requests: list[RunRequest]
) -> None:
    value = _selector_value(selector, tmp_path)
    argv = ["run", "reboot", selector.flag, value, *CONN]
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 0, result.output
    assert set(requests[-1].selectors) == {selector.key}
    targets = build_spec(requests[-1]).targets
    assert getattr(targets, selector.key)
    assert Targets.from_dict(json.loads(json.dumps(targets.as_dict()))) == targets
    assert Targets.build(**targets.as_raw()) == targets
    help_text = CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "200"}).output
    assert selector.flag in help_text


@pytest.mark.parametrize("selector", SELECTORS, ids=lambda s: s.key)
def test_each_selector_is_a_job_file_field(selector: Selector, tmp_path: Path) -> None:
    value = _selector_value(selector, tmp_path)
    job = tmp_path / "job.yaml"
    job.write_text(f"action: reboot\ntargets:\n  {selector.key}: {value!r}\n")
    assert getattr(load_job_file(job).to_targets(), selector.key)
    job.write_text(f"action: reboot\ntargets:\n  {selector.key}x: {value!r}\n")
    with pytest.raises(JobFileError) as refused:
        load_job_file(job)
    assert f"targets.{selector.key}x: unknown key (did you mean {selector.key}?)" in str(
        refused.value
    )


def test_a_selector_flag_that_is_also_a_parameter_is_the_parameter_of_an_action_taking_it() -> None:
    where = Where(region=("us-east-1",), endpoint_url=("http://127.0.0.1:9",))
    ask = {"running_mode": "MANUAL"}
    modify = build_spec(RunRequest("modify", selectors=ask, where=where))
    assert (modify.params, modify.targets.running_mode) == (ask, None)
    reboot = build_spec(RunRequest("reboot", selectors=ask, params=ask, where=where))
    assert (reboot.params, reboot.targets.running_mode) == ({}, "MANUAL")
