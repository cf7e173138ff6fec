"""Job files: what loads, what is refused, and the one line that says where and why."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleetops.catalogue.jobfile import JobFile, load_job_file
from fleetops.catalogue.options import JobOptions
from fleetops.errors import JobFileError

JOBS = Path(__file__).resolve().parents[2] / "jobs"


def write(tmp_path: Path, text: str, name: str = "job.yaml") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def error_of(path: Path) -> str:
    with pytest.raises(JobFileError) as caught:
        load_job_file(path)
    message = str(caught.value)
    assert "\n" not in message
    assert caught.value.exit_code == 2
    return message


# -- the shipped examples ------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(p.name for p in JOBS.glob("*.yaml")))
def test_every_example_loads(name: str) -> None:
    job = load_job_file(JOBS / name)
    assert job.description
    assert job.regions()
    job.to_targets()
    assert isinstance(job.to_options(), JobOptions)


def test_examples_say_what_the_issue_asks() -> None:
    names = {p.name for p in JOBS.glob("*.yaml")}
    assert names >= {
        "nightly-stop-idle.yaml",
        "reboot-unhealthy.yaml",
        "migrate-directory-waves.yaml",
        "rebuild-from-ids.yaml",
        "tag-backfill.yaml",
    }
    stop = load_job_file(JOBS / "nightly-stop-idle.yaml").to_targets()
    assert (stop.running_mode, stop.idle_days) == ("AUTO_STOP", 3)
    assert load_job_file(JOBS / "reboot-unhealthy.yaml").to_targets().states == ("UNHEALTHY",)
    migrate = load_job_file(JOBS / "migrate-directory-waves.yaml")
    options = migrate.to_options()
    assert options.waves == (5, 50, None) and options.max_errors == "2%"
    assert migrate.to_params()["to_bundle"].startswith("wsb-")
    rebuild = load_job_file(JOBS / "rebuild-from-ids.yaml").to_targets()
    assert len(rebuild.workspace_ids) == 3
    tag = load_job_file(JOBS / "tag-backfill.yaml")
    assert tag.to_params()["set"]["owner-team"] == "finance"
    assert tag.regions() == ["us-east-1", "eu-west-1"]


# -- errors: file, line, field -------------------------------------------------------------------


def test_malformed_yaml_names_the_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        action: reboot
        targets:
          states: [UNHEALTHY
        options:
          rate: 2
        """,
    )
    message = error_of(path)
    assert re.match(rf"^{re.escape(str(path))}:\d+: ", message), message
    assert int(message.split(":")[1]) in {3, 4}  # PyYAML notices at the next token


def test_unknown_key_names_its_line_and_suggests(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        action: reboot
        targets:
          states: [UNHEALTHY]
        options:
          rate: 2
          concurency: 4
        """,
    )
    assert (
        error_of(path) == f"{path}:6: options.concurency: unknown key (did you mean concurrency?)"
    )


def test_unknown_top_level_key(tmp_path: Path) -> None:
    path = write(tmp_path, "action: reboot\ntargets: {}\nregoin: us-east-1\n")
    assert error_of(path) == f"{path}:3: regoin: unknown key (did you mean region?)"


def test_bad_value_names_its_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        # a comment line counts
        action: reboot
        targets:
          directory_id: d-1234567890
        options:
          burst: 5
          rate: 0
        """,
    )
    assert error_of(path) == f"{path}:7: options.rate: Input should be greater than 0"


def test_bad_list_item_names_its_own_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        action: reboot
        targets:
          workspace_ids:
            - ws-0a1b2c3d4e
            - ws-0a1b2c3d5f
            - not-a-workspace
        """,
    )
    message = error_of(path)
    assert message.startswith(f"{path}:6: targets.workspace_ids[2]: WorkSpace id 'not-a-workspace'")


def test_several_errors_report_the_first_line_and_count_the_rest(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        action: reboot
        targets:
          states: [SLEEPY]
        options:
          rate: -1
          burst: 0
        """,
    )
    message = error_of(path)
    assert message.startswith(f"{path}:3: targets.states[0]: unknown WorkSpace state 'SLEEPY'")
    assert message.endswith("(and 2 more)")


def test_missing_required_fields(tmp_path: Path) -> None:
    assert error_of(write(tmp_path, "targets: {}\n")).endswith(":1: action: required")
    assert error_of(write(tmp_path, "action: reboot\n")).endswith(":1: targets: required")


@pytest.mark.parametrize("section", ["targets", "params", "options"])
def test_a_section_that_is_not_a_mapping_says_so_without_naming_a_class(
    tmp_path: Path, section: str
) -> None:
    head = "" if section == "targets" else "targets: {}\n"
    path = write(tmp_path, f"action: reboot\n{head}{section}: [a]\n")
    line = 3 if head else 2
    assert error_of(path) == f"{path}:{line}: {section}: Input should be a valid dictionary"


def test_unknown_action(tmp_path: Path) -> None:
    path = write(tmp_path, "targets: {}\naction: reboto\n")
    assert error_of(path) == f"{path}:2: action: unknown action 'reboto' (did you mean reboot?)"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ":1: a job file is a mapping"),
        ("- action: reboot\n", ":1: a job file is a mapping"),
        ("action: reboot\naction: stop\ntargets: {}\n", ":2: action: duplicate key"),
    ],
)
def test_document_shape(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in error_of(write(tmp_path, text))


def test_params_belong_to_their_action(tmp_path: Path) -> None:
    path = write(tmp_path, "action: reboot\nparams:\n  to_bundle: wsb-012345678\ntargets: {}\n")
    assert (
        error_of(path) == f"{path}:3: params.to_bundle: not a parameter of reboot (takes no params)"
    )
    path = write(tmp_path, "action: migrate\ntargets: {directory_id: d-1234567890}\n")
    assert error_of(path) == (
        f"{path}:1: action: migrate needs params.to_bundle (the new bundle, wsb-…)"
    )
    path = write(tmp_path, "action: tag\nparams: {}\ntargets: {}\n")
    assert error_of(path) == f"{path}:2: params: tag needs params.set and/or params.remove"


def test_missing_file(tmp_path: Path) -> None:
    message = error_of(tmp_path / "nope.yaml")
    assert message.startswith(f"{tmp_path / 'nope.yaml'}: cannot read the job file")


# -- forms accepted ------------------------------------------------------------------------------


def test_ids_file_is_relative_to_the_job_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, "ws-0a1b2c3d4e\n# comment\nws-0a1b2c3d5f\n", "team/ids.txt")
    path = write(tmp_path, "action: rebuild\ntargets:\n  ids_file: ids.txt\n", "team/job.yaml")
    monkeypatch.chdir(tmp_path)  # elsewhere than the job file
    job = load_job_file(Path("team/job.yaml"))
    assert job.to_targets().workspace_ids == ("ws-0a1b2c3d4e", "ws-0a1b2c3d5f")
    missing = write(tmp_path, "action: rebuild\ntargets:\n  ids_file: gone.txt\n", "team/bad.yaml")
    message = error_of(missing)
    assert message.startswith(f"{missing}:3: targets.ids_file: cannot read ids file")
    bad = write(tmp_path, "ws-0a1b2c3d4e\nnot-an-id\n", "team/bad-ids.txt")
    path = write(tmp_path, f"action: rebuild\ntargets:\n  ids_file: {bad.name}\n", "team/b2.yaml")
    assert f"targets.ids_file: {bad}:2: 'not-an-id' is not a WorkSpace id" in error_of(path)


@pytest.mark.parametrize(
    ("waves", "expected"),
    [
        ('"5,50,all"', (5, 50, None)),
        ("[5, 50, all]", (5, 50, None)),
        ("[10]", (10,)),
        ("25", (25,)),
        ('"5,25%,all"', (5, "25%", None)),
        ('["12.5%", all]', ("12.5%", None)),
    ],
)
def test_waves_forms(tmp_path: Path, waves: str, expected: tuple[int | str | None, ...]) -> None:
    path = write(tmp_path, f"action: reboot\ntargets: {{}}\noptions:\n  waves: {waves}\n")
    assert load_job_file(path).to_options().waves == expected


@pytest.mark.parametrize(
    "waves", ['"all,5"', "[0, all]", '"five"', "{a: 1}", '"0%,all"', '"150%"', '"x%"']
)
def test_bad_waves(tmp_path: Path, waves: str) -> None:
    path = write(tmp_path, f"action: reboot\ntargets: {{}}\noptions:\n  waves: {waves}\n")
    assert error_of(path).startswith(f"{path}:4: options.waves: ")


@pytest.mark.parametrize(("value", "expected"), [("10", "10"), ("2%", "2%"), ("0", "0")])
def test_max_errors_forms(tmp_path: Path, value: str, expected: str) -> None:
    path = write(tmp_path, f"action: reboot\ntargets: {{}}\noptions:\n  max_errors: {value}\n")
    assert load_job_file(path).to_options().max_errors == expected


@pytest.mark.parametrize("value", ["-1", "150%", "lots", "true"])
def test_bad_max_errors(tmp_path: Path, value: str) -> None:
    path = write(tmp_path, f"action: reboot\ntargets: {{}}\noptions:\n  max_errors: {value}\n")
    assert error_of(path).startswith(f"{path}:4: options.max_errors: ")


def test_tags_as_mapping_or_list(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        action: reboot
        targets:
          tags: {team: finance, tier: "1"}
          exclude_tags: [keep=yes]
        """,
    )
    targets = load_job_file(path).to_targets()
    assert targets.tags == (("team", "finance"), ("tier", "1"))
    assert targets.exclude_tags == (("keep", "yes"),)
    bad = write(tmp_path, "action: reboot\ntargets:\n  tags: [team]\n")
    assert "targets.tags[0]: tag 'team' must be KEY=VALUE" in error_of(bad)


def test_region_string_or_list(tmp_path: Path) -> None:
    one = write(tmp_path, "action: reboot\ntargets: {}\nregion: eu-west-1\n")
    assert load_job_file(one).regions() == ["eu-west-1"]
    bad = write(tmp_path, "action: reboot\ntargets: {}\nregion:\n  - us-east-1\n  - Mars\n")
    assert error_of(bad) == f"{bad}:5: region[1]: 'Mars' is not an AWS region (e.g. us-east-1)"


def test_flags_override_file_options(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "action: reboot\ntargets: {}\noptions: {rate: 1.5, concurrency: 3, waves: [5, all]}\n",
    )
    job = load_job_file(path)
    options = job.to_options({"rate": 4.0, "concurrency": None, "waves": "2,all"})
    assert (options.rate, options.concurrency, options.waves) == (4.0, 3, (2, None))
    assert job.to_options().burst == JobOptions().burst  # untouched fields keep the defaults


def test_maintenance_on_off(tmp_path: Path) -> None:
    path = write(tmp_path, "action: maintenance\nparams: {maintenance: on}\ntargets: {}\n")
    assert load_job_file(path).to_params() == {"maintenance": True}
    path = write(tmp_path, "action: maintenance\nparams: {maintenance: 'off'}\ntargets: {}\n")
    assert load_job_file(path).to_params() == {"maintenance": False}


# -- generated documents -------------------------------------------------------------------------

option_values = st.fixed_dictionaries(
    {},
    optional={
        "rate": st.floats(min_value=0.1, max_value=100, allow_nan=False),
        "burst": st.integers(min_value=1, max_value=50),
        "concurrency": st.integers(min_value=1, max_value=64),
        "max_errors": st.one_of(
            st.integers(min_value=0, max_value=1000),
            st.integers(min_value=0, max_value=100).map(lambda n: f"{n}%"),
        ),
        "waves": st.lists(st.integers(min_value=1, max_value=500), min_size=1, max_size=4).map(
            lambda sizes: [*sizes, "all"]
        ),
        "no_wait": st.booleans(),
        "verify_timeout": st.integers(min_value=1, max_value=7200),
    },
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(options=option_values)
def test_generated_valid_documents_load(tmp_path: Path, options: dict[str, object]) -> None:
    doc = {"action": "reboot", "targets": {"states": ["UNHEALTHY"]}, "options": options}
    path = tmp_path / "gen.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    job = load_job_file(path)
    built = job.to_options()
    if "rate" in options:
        assert built.rate == options["rate"]
    if "max_errors" in options:
        assert built.max_errors == str(options["max_errors"])
    if "waves" in options:
        assert built.waves[-1] is None and len(built.waves) == len(options["waves"])  # type: ignore[arg-type]


bad_option = st.sampled_from(
    [
        ("rate", -1.0),
        ("rate", 0),
        ("burst", 0),
        ("concurrency", -3),
        ("verify_timeout", 0),
        ("max_snapshot_age", -5),
        ("max_errors", "many"),
        ("waves", "all,5"),
        ("no_wait", "perhaps"),
        ("conccurrency", 4),
    ]
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(good=option_values, bad=bad_option, position=st.integers(min_value=0, max_value=8))
def test_generated_invalid_documents_name_the_bad_line(
    tmp_path: Path, good: dict[str, object], bad: tuple[str, object], position: int
) -> None:
    key, value = bad
    items = [(k, v) for k, v in good.items() if k != key]
    items.insert(min(position, len(items)), (key, value))
    doc = {"action": "reboot", "targets": {}, "options": dict(items)}
    text = yaml.safe_dump(doc, sort_keys=False)
    path = tmp_path / "gen.yaml"
    path.write_text(text, encoding="utf-8")
    line = next(
        n for n, row in enumerate(text.splitlines(), 1) if row.strip().startswith(f"{key}:")
    )
    with pytest.raises(JobFileError) as caught:
        load_job_file(path)
    assert str(caught.value).startswith(f"{path}:{line}: options.{key}: ")


def test_jobfile_is_frozen(tmp_path: Path) -> None:
    job = load_job_file(write(tmp_path, "action: reboot\ntargets: {}\n"))
    assert isinstance(job, JobFile)
    with pytest.raises(Exception, match="frozen"):
        job.action = "stop"  # type: ignore[misc]
